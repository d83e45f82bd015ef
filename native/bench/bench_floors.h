// Machine floors for the benchmark harness (bench/, docs/PERFORMANCE.md): the cheapest possible
// version of each step a GetPage@LSN takes, measured in the same process and run as the engine so
// that every performance claim can be a ratio against them. Not part of the engine: nothing in
// lib/ calls these, and they touch none of the core's state. Built as a separate addon,
// strata_bench.node (binding.gyp's bench target, scripts/build-bench.js), never shipped.
#ifndef STRATA_BENCH_FLOORS_H_
#define STRATA_BENCH_FLOORS_H_

#include <napi.h>

namespace strata {

// The `benchFloors` export object:
//   new PageStore(pages, seed)              pattern-filled 8 KB pages in native memory
//     .copyInto(id, buf)                    N-API call copying one page into a caller buffer
//     .copyBatch(ids: Uint32Array, out)     one call copying ids.length pages into `out`
//     .memcpyRun(copies, ringPages, seed)   ns for `copies` random-page memcpys into a ring of
//                                           distinct destinations, no N-API in the loop
//   decompressRun(codec, payloads, offsets: Uint32Array, rawLen, iterations)
//                                           ns to decompress `iterations` payloads round-robin
//                                           with the core's own Decompressor (native/codec.cc)
Napi::Object BenchFloors(Napi::Env env);

}  // namespace strata

#endif  // STRATA_BENCH_FLOORS_H_
