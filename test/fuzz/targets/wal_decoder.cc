// libFuzzer target: the PostgreSQL WAL decoder (native/pg/xlogreader.cc) fed arbitrary bytes.
//
// The first input byte picks a mode. Raw (even): the rest is a WAL stream, its start LSN taken
// from the first page header's xlp_pageaddr when that is plausible, so real WAL pages decode.
// Framed (odd): the rest is a list of record bodies ([u16 LE length][rmid][info][body]) that the
// harness lays out as WAL with valid page headers, xl_prev links and CRCs, so mutations reach the
// block/data header parser and the image decompressors instead of stopping at the CRC.
// Either stream is decoded twice: fed at once, and fed in random chunks with random batch sizes.
// Both must give the same entries, state and error (else __builtin_trap), and the entries must
// walk consistently (lengths add up, the count matches).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "errors.h"
#include "fuzz_util.h"
#include "pg/crc32c.h"
#include "pg/xlogreader.h"

namespace strata {
namespace {

using pg::DecodeResult;
using pg::DecodeState;
using pg::DecoderOptions;
using pg::WalDecoder;

constexpr uint64_t kPage = pg::kWalPageSize;
constexpr uint64_t kDefaultStart = pg::kWalSegmentSize;  // 0/1000000, where initdb's WAL begins
constexpr uint32_t kHugeBatch = 1u << 30;
// Framed inputs make at most this many records: more adds time per input, not coverage.
constexpr size_t kMaxFramedRecords = 64;

struct Outcome {
  std::vector<uint8_t> entries;
  uint64_t count = 0;
  uint64_t next_lsn = 0;
  int state = -1;  // DecodeState, or -1 after an error
  std::string error;
  bool operator==(const Outcome& o) const {
    return entries == o.entries && count == o.count && next_lsn == o.next_lsn && state == o.state && error == o.error;
  }
};

void Put32(std::vector<uint8_t>& v, size_t at, uint32_t x) {
  for (int i = 0; i < 4; ++i) v[at + i] = static_cast<uint8_t>(x >> (8 * i));
}
void Put64(std::vector<uint8_t>& v, size_t at, uint64_t x) {
  for (int i = 0; i < 8; ++i) v[at + i] = static_cast<uint8_t>(x >> (8 * i));
}

// Lays record bodies out as WAL from a segment start (see the file comment).
std::vector<uint8_t> Frame(const uint8_t* p, size_t n, uint64_t start) {
  std::vector<uint8_t> wal;
  uint64_t pos = start;
  uint64_t prev = 0;
  auto page_header = [&](uint32_t rem_len) {
    const bool seg_start = pos % pg::kWalSegmentSize == 0;
    const size_t size = seg_start ? pg::kLongPageHeaderSize : pg::kShortPageHeaderSize;
    const size_t at = wal.size();
    wal.resize(at + size, 0);
    wal[at] = 0x10;
    wal[at + 1] = 0xD1;
    wal[at + 2] = static_cast<uint8_t>((seg_start ? 2 : 0) | (rem_len > 0 ? 1 : 0));
    wal[at + 4] = 1;  // timeline 1
    Put64(wal, at + 8, pos);
    Put32(wal, at + 16, rem_len);
    if (seg_start) {
      Put64(wal, at + 24, 7300000000000000001ull);
      Put32(wal, at + 32, static_cast<uint32_t>(pg::kWalSegmentSize));
      Put32(wal, at + 36, pg::kWalPageSize);
    }
    pos += size;
  };
  size_t i = 0;
  size_t records = 0;
  while (i + 4 <= n && records++ < kMaxFramedRecords) {
    const size_t body_len = std::min<size_t>(p[i] | (p[i + 1] << 8), n - i - 4);
    std::vector<uint8_t> rec(pg::kRecordHeaderSize + body_len, 0);
    Put32(rec, 0, static_cast<uint32_t>(rec.size()));
    Put64(rec, 8, prev);
    rec[16] = p[i + 3];
    rec[17] = p[i + 2];
    std::memcpy(rec.data() + pg::kRecordHeaderSize, p + i + 4, body_len);
    uint32_t crc = pg::Crc32cUpdate(pg::kCrc32cInit, rec.data() + pg::kRecordHeaderSize, body_len);
    Put32(rec, 20, pg::Crc32cFinish(pg::Crc32cUpdate(crc, rec.data(), 20)));
    i += 4 + body_len;
    if (pos % kPage == 0) page_header(0);
    prev = pos;
    for (size_t done = 0; done < rec.size();) {
      if (pos % kPage == 0) page_header(static_cast<uint32_t>(rec.size() - done));
      const size_t chunk = std::min<size_t>(rec.size() - done, kPage - pos % kPage);
      wal.insert(wal.end(), rec.begin() + static_cast<std::ptrdiff_t>(done), rec.begin() + static_cast<std::ptrdiff_t>(done + chunk));
      done += chunk;
      pos += chunk;
    }
    const size_t pad = (8 - pos % 8) % 8;
    wal.resize(wal.size() + pad, 0);
    pos += pad;
  }
  return wal;
}

// Fills `o` (reused across inputs: its entries buffer keeps its capacity, so a run does not
// allocate and page-fault in megabytes of fresh memory for every input).
void Run(const std::vector<uint8_t>& wal, const DecoderOptions& opts, fuzz::Rng* rng, Outcome& o) {
  o.entries.clear();
  o.count = 0;
  o.next_lsn = 0;
  o.state = -1;
  o.error.clear();
  try {
    WalDecoder d(opts);
    DecodeResult r;
    auto drain = [&]() {
      do {
        const uint32_t batch = rng == nullptr ? kHugeBatch : static_cast<uint32_t>(rng->Range(1, 8));
        r = d.Decode(batch, &o.entries);
        o.count += r.count;
        o.next_lsn = r.next_lsn;
        o.state = static_cast<int>(r.state);
      } while (r.state == DecodeState::kFull);
    };
    size_t at = 0;
    while (at < wal.size() && o.state != static_cast<int>(DecodeState::kEnd)) {
      const size_t n = rng == nullptr ? wal.size() : std::min<size_t>(wal.size() - at, rng->Range(1, rng->Range(0, 3) == 0 ? 9000 : 64));
      d.Feed(wal.data() + at, n);
      at += n;
      drain();
    }
    if (o.state != static_cast<int>(DecodeState::kEnd)) {
      d.Finish();
      drain();
    }
  } catch (const StrataError& e) {
    o.state = -1;
    o.next_lsn = 0;  // a batch that threw reported none; only the error is compared
    o.error = std::string(ErrorCodeName(e.code())) + ": " + e.what();
  }
}

// Every entry's length field fits and the entries fill the buffer exactly.
void CheckEntries(const Outcome& o) {
  size_t at = 0;
  uint64_t n = 0;
  while (at < o.entries.size()) {
    if (o.entries.size() - at < pg::kEntryHeaderSize) __builtin_trap();
    const uint8_t* e = o.entries.data() + at;
    const uint32_t len = e[0] | (e[1] << 8) | (e[2] << 16) | (static_cast<uint32_t>(e[3]) << 24);
    const size_t blocks = e[38];
    if (len < pg::kEntryHeaderSize + blocks * pg::kEntryBlockSize || len > o.entries.size() - at) __builtin_trap();
    at += len;
    ++n;
  }
  if (n != o.count) __builtin_trap();
}

}  // namespace
}  // namespace strata

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata;
  if (size < 4) return 0;
  const uint8_t mode = data[0];
  const uint64_t seed = data[1] | (data[2] << 8) | (static_cast<uint64_t>(data[3]) << 16);
  const uint8_t* body = data + 4;
  const size_t body_len = size - 4;
  pg::DecoderOptions opts;
  std::vector<uint8_t> wal;
  if ((mode & 1) == 0) {
    wal.assign(body, body + body_len);
    uint64_t addr = 0;
    if (body_len >= 16) for (int i = 7; i >= 0; --i) addr = (addr << 8) | body[8 + i];
    opts.start_lsn = (addr % kPage == 0 && addr < (uint64_t{1} << 52)) ? addr : kDefaultStart;
  } else {
    opts.start_lsn = kDefaultStart;
    wal = Frame(body, body_len, opts.start_lsn);
    // test/fuzz/make_seeds.js turns framed seeds into raw-mode seeds through this.
    if (const char* dump = std::getenv("STRATA_FUZZ_DUMP_WAL")) {
      if (FILE* f = std::fopen(dump, "wb")) {
        std::fwrite(wal.data(), 1, wal.size(), f);
        std::fclose(f);
      }
    }
  }
  if ((mode & 2) != 0) opts.end_lsn = opts.start_lsn + (seed % (wal.size() + 64));
  if ((mode & 4) != 0) opts.timeline = 1;
  if ((mode & 8) != 0) opts.system_id = 7300000000000000001ull;
  static Outcome whole;
  static Outcome chunked;
  Run(wal, opts, nullptr, whole);
  fuzz::Rng rng(seed);
  Run(wal, opts, &rng, chunked);
  if (!(whole == chunked)) {
    std::fprintf(stderr, "fed whole: %llu entries (%zu bytes), next %llx, state %d, error '%s'\n"
                         "chunked:   %llu entries (%zu bytes), next %llx, state %d, error '%s'\n",
                 static_cast<unsigned long long>(whole.count), whole.entries.size(), static_cast<unsigned long long>(whole.next_lsn),
                 whole.state, whole.error.c_str(), static_cast<unsigned long long>(chunked.count), chunked.entries.size(),
                 static_cast<unsigned long long>(chunked.next_lsn), chunked.state, chunked.error.c_str());
    __builtin_trap();
  }
  CheckEntries(whole);
  return 0;
}
