// libFuzzer target: the read plan parser and GetPage@LSN walk (native/reconstruct.cc GetPages;
// layout in docs/FORMAT.md, "Read plan"). Input: the plan. Layer maps 1 and 2 exist: map 1 is
// empty, map 2 holds the layer file named by STRATA_FUZZ_LAYER (scripts/fuzz.js passes a seed
// layer) so segments reach the layer search and the records read from it. A malformed plan is
// BAD_ARGUMENT before any output; a plan that parses is walked with exactly-sized outputs (and,
// for plans of many requests, with mismatched ones, which must also be BAD_ARGUMENT).
#include <cstdlib>
#include <memory>
#include <vector>

#include "errors.h"
#include "format.h"
#include "layer_map.h"
#include "page_cache.h"
#include "reconstruct.h"

namespace {

const strata::LayerMapTable& Maps() {
  static const strata::LayerMapTable maps = [] {
    strata::LayerMapTable m;
    m[1] = std::make_shared<const strata::LayerMap>();
    static strata::PageCache cache(64 * strata::kBlockSize);
    std::vector<std::shared_ptr<const strata::Layer>> layers;
    if (const char* file = std::getenv("STRATA_FUZZ_LAYER")) layers.push_back(strata::Layer::Open(file, 1, &cache));
    m[2] = std::make_shared<const strata::LayerMap>(std::move(layers));
    return m;
  }();
  return maps;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata;
  constexpr uint32_t kMaxPages = 16;
  if (size < 4) return 0;
  std::vector<uint8_t> plan(data, data + size);  // exactly sized: ASan sees reads past its end
  const uint32_t count = LoadBe32(plan.data());
  // Outputs sized for the count the plan claims when small; a large count gets none, which the
  // core must refuse (after validating the plan) without writing.
  const uint32_t pages = count <= kMaxPages ? count : 0;
  std::vector<uint8_t> out(size_t{pages} * kPageSize), status(pages);
  std::vector<uint32_t> counts(size_t{pages} * kCountsPerRequest);
  static ReadScratch scratch;
  try {
    GetPages(Maps(), ByteSpan{plan.data(), plan.size()}, ByteSpan{out.data(), out.size()},
             ByteSpan{status.data(), status.size()}, CountSpan{counts.data(), counts.size()}, scratch);
  } catch (const StrataError& e) {
    const ErrorCode c = e.code();
    if (c != ErrorCode::kBadArgument && c != ErrorCode::kCorruptLayer && c != ErrorCode::kWalUnsupported &&
        c != ErrorCode::kRedoFailed) {
      __builtin_trap();
    }
  }
  return 0;
}
