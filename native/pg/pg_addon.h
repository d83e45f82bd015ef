// N-API surface of the PostgreSQL parts of the core (native/pg/); called from addon.cc's module init.
#ifndef STRATA_PG_PG_ADDON_H_
#define STRATA_PG_PG_ADDON_H_

#include <napi.h>

namespace strata {
namespace pg {

// Adds PgWalDecoder and the pg test hooks (pgCrc32c, pgPglzDecompress) to the module's exports.
void InitPg(Napi::Env env, Napi::Object exports);

}  // namespace pg
}  // namespace strata

#endif  // STRATA_PG_PG_ADDON_H_
