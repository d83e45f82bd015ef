// Registers the PostgreSQL functions on the addon's exports (called from addon.cc's Init).
#ifndef STRATA_PG_PG_ADDON_H_
#define STRATA_PG_PG_ADDON_H_

#include <napi.h>

namespace strata {
namespace pg {

void InitPg(Napi::Env env, Napi::Object exports);

}  // namespace pg
}  // namespace strata

#endif  // STRATA_PG_PG_ADDON_H_
