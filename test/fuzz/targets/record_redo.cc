// libFuzzer target: the serialized-record decoder and the redo engine (native/walredo.cc:
// CheckSerializedRecord, RecordWillInit, ApplyRecords, and through tag 4 the PostgreSQL redo).
// Input: [u8 n][n × u16 BE record length][records…]; lengths past the input are cut to what is
// left. Every record is checked; the ones that pass form a chain newest first (input order), cut
// after the first page-initializing one as the read path does, and are applied to a page. A bad
// record is a fault text; a chain that cannot be redone is a fault text or a StrataError.
#include <cstring>
#include <vector>

#include "errors.h"
#include "format.h"
#include "walredo.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata;
  constexpr size_t kMaxRecords = 16;
  if (size < 1) return 0;
  const size_t n = std::min<size_t>(data[0], kMaxRecords);
  size_t pos = 1 + 2 * n;
  if (pos > size) return 0;
  // Each record in its own exactly-sized buffer, so ASan sees a read past its end.
  std::vector<std::vector<uint8_t>> records;
  for (size_t i = 0; i < n; ++i) {
    const size_t want = (size_t{data[1 + 2 * i]} << 8) | data[2 + 2 * i];
    const size_t len = std::min(want, size - pos);
    records.emplace_back(data + pos, data + pos + len);
    pos += len;
  }
  std::vector<RecordView> chain;
  for (const std::vector<uint8_t>& r : records) {
    if (CheckSerializedRecord(r.data(), r.size()) != nullptr) continue;
    chain.push_back(RecordView{r.data(), r.size()});
    if (RecordWillInit(r.data())) break;
  }
  std::vector<uint8_t> page(kPageSize, 0);
  try {
    ApplyRecords(chain.data(), chain.size(), page.data());
  } catch (const StrataError& e) {
    if (e.code() != ErrorCode::kWalUnsupported && e.code() != ErrorCode::kRedoFailed) __builtin_trap();
  }
  return 0;
}
