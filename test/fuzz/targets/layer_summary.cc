// libFuzzer target: the layer summary block parser (DecodeSummary, native/layer_file.cc). The input
// is block 0's payload. A summary that parses must survive EncodeSummary → DecodeSummary unchanged.
#include <cstring>
#include <vector>

#include "layer_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata;
  std::vector<uint8_t> block(kBlockSize, 0);
  std::memcpy(block.data(), data, std::min(size, kBlockPayload));
  LayerSummary s;
  if (!DecodeSummary(block.data(), &s).empty()) return 0;
  std::vector<uint8_t> again(kBlockSize, 0), third(kBlockSize, 0);
  EncodeSummary(s, again.data());
  LayerSummary t;
  if (!DecodeSummary(again.data(), &t).empty()) __builtin_trap();
  EncodeSummary(t, third.data());
  if (std::memcmp(again.data(), third.data(), kBlockPayload) != 0) __builtin_trap();
  return 0;
}
