// libFuzzer target: the flush's arena walk (native/delta_arena.cc AppendDeltaArena), which the
// addon runs on a libuv worker over arrays the engine hands over (lib/core/delta_arena.ts). Input:
//   [u8 codec]       % 3: the codec the arena's compressed forms are made with and the writer's
//   [u8 keys]        % (kMaxKeys + 1)
//   [u16 BE records] % (kMaxRecords + 1), in arrival order (ordinal = position); none without keys
//   [u8 slab]        slab capacity, kSlabStepBytes x (1 + low 4 bits)
//   [u32 BE lsn]     first record's LSN / kLsnBaseScale
//   per record:      [u8 key][u8 kind][u8 size][u8 fill]; kind kRaw adds [u16 BE len][bytes]
//   [u8 mutations]   % (kMaxMutations + 1)
//   per mutation:    [u8 op][u16 BE index][u8 sel][u32 BE value] (ApplyMutation)
//   [u8 batches]     0: the walk's own batch limits (one batch for arenas this small); otherwise
//                    small ones (BatchLimits), so a walk appends many batches and a malformed
//                    record can sit in any of them
// Missing bytes read as zero, so an input cut short is a well-formed arena. The records make a well-formed arena (Strata records, compressed
// forms made here, chains linked by ordinal); the mutations then break fields the way a faulty
// engine could: ordinals out of range or in cycles, bytes outside slabs, array sizes that
// disagree, compressed forms out of range, keys out of order, LSNs or keys outside the writer's
// range, records past the largest record size.
//
// Oracle: a reference walk written here from the contract decides whether the arena is
// malformed and, if not, the exact index keys, blobs and will_init bits the layer must hold.
// AppendDeltaArena must refuse with BAD_ARGUMENT exactly the malformed arenas; for the others the
// finished layer, read back (summary, B-tree cursor, value stream bytes), must hold exactly those
// entries and blobs back to back, and when every record is well formed and every compressed form
// decodes to its record, must pass Layer::Verify and ReadBlob must return each record.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "block_io.h"
#include "codec.h"
#include "delta_arena.h"
#include "disk_btree.h"
#include "errors.h"
#include "format.h"
#include "fuzz_util.h"
#include "layer_file.h"
#include "pg/redo_record.h"
#include "walredo.h"

namespace {

using namespace strata;

// Small arenas keep an execution to a fraction of a millisecond; a few hundred records still
// span several value blocks and B-tree leaves.
constexpr size_t kMaxKeys = 32;
constexpr size_t kMaxRecords = 300;
constexpr size_t kMaxMutations = 8;
// Record bytes the generator places in slabs; past it records become zero records (1 byte).
constexpr size_t kMaxArenaBytes = 64 * 1024;
constexpr size_t kSlabStepBytes = 1024;
constexpr size_t kMaxRawRecordBytes = 16 * 1024;
// lib/core/format.ts COMPRESS_MIN_BYTES: smaller records are never compressed.
constexpr size_t kCompressMinBytes = 128;
constexpr uint64_t kLsnBaseScale = 1 << 12;  // LSNs up to 2^44: both u32 halves of an entry's u64 vary
constexpr uint64_t kLsnStep = 0x28;
constexpr uint64_t kKeyStride = 977;
// Above kMaxRecordSize plus a mutation's offset and slack, so records around that bound fit.
constexpr size_t kBigSlabBytes = kMaxRecordSize + 8 * 1024;
constexpr size_t kBigOffsetMask = 0xfff;
// Entries read back through ReadBlob per layer, spread over it: each read loads and checksums a
// whole value block, and the value-stream bytes are already compared one by one.
constexpr size_t kReadBlobSamples = 8;
// Layers of at most this many entries also go through Layer::Verify (every block's checksum, the
// B-tree's shape, every blob decoded): on larger ones it would cost most of an execution, and the
// cursor walk and byte comparison already cover what the walk wrote.
constexpr size_t kVerifyMaxEntries = 64;

// Entry layout (delta_arena.h): six 32-bit words.
constexpr size_t kWordSlab = 2;
constexpr size_t kWordOffset = 3;
constexpr size_t kWordLength = 4;
constexpr size_t kWordPrev = 5;
constexpr size_t kEntryWords = kArenaEntryBytes / sizeof(uint32_t);
// Small batch limits: 1-16 entries, 64 B-1 KiB of blobs.
constexpr size_t kSmallBatchEntriesMax = 16;
constexpr size_t kSmallBatchBytesStep = 64;

// Record kinds the generator makes (kind byte, low 3 bits); bits 3-4: gap bytes before the
// record in its slab; bit 5: leave it uncompressed even if it would shrink.
enum RecordKind : uint8_t { kPatchShort, kPatchLong, kZero, kValue, kImage, kRaw, kZeroToo, kPatchRuns };
constexpr uint8_t kKindMask = 7;
constexpr unsigned kGapShift = 3;
constexpr uint8_t kGapMask = 3;
constexpr uint8_t kNoPackBit = 0x20;
constexpr size_t kPatchShortMax = 120;
constexpr size_t kPatchLongStep = 8;
constexpr size_t kValueStep = 32;

// LZ4 / zstd framing used by the hand-made compressed forms (native/codec.cc reads them).
constexpr size_t kLz4MinMatch = 4;
constexpr size_t kLz4NibbleMax = 15;
constexpr uint8_t kLz4LenByteMax = 255;
constexpr uint32_t kZstdMagic = 0xFD2FB528;
constexpr uint8_t kZstdSingleSegmentFcs4 = 0xA0;  // 4-byte content size, no window descriptor
constexpr uint32_t kZstdRaw = 0;
constexpr uint32_t kZstdRle = 1;
constexpr size_t kZstdMinRle = 8;  // shorter runs cost less as raw bytes than as a block
constexpr size_t kZstdMaxBlock = 128 * 1024;

[[noreturn]] void Bug(const std::string& what) { fuzz::Bug("delta_arena", what); }

// Bytes of the fuzz input, read front to back; zeros once it runs out.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  uint8_t U8() { return p_ < end_ ? *p_++ : 0; }
  uint16_t U16() { return static_cast<uint16_t>((U8() << 8) | U8()); }
  uint32_t U32() { return (uint32_t{U16()} << 16) | U16(); }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// ---- compressed forms: runs of a byte become matches (lz4) or RLE blocks (zstd) ----

void PutLz4Length(std::vector<uint8_t>& out, size_t extra) {
  for (; extra >= kLz4LenByteMax; extra -= kLz4LenByteMax) out.push_back(kLz4LenByteMax);
  out.push_back(static_cast<uint8_t>(extra));
}

// One sequence: literals, then (match_len > 0) a match of match_len at offset 1.
void PutLz4Sequence(std::vector<uint8_t>& out, const uint8_t* lit, size_t lit_len, size_t match_len) {
  const size_t m = match_len > 0 ? match_len - kLz4MinMatch : 0;
  out.push_back(static_cast<uint8_t>((std::min(lit_len, kLz4NibbleMax) << 4) | std::min(m, kLz4NibbleMax)));
  if (lit_len >= kLz4NibbleMax) PutLz4Length(out, lit_len - kLz4NibbleMax);
  out.insert(out.end(), lit, lit + lit_len);
  if (match_len == 0) return;
  out.push_back(1);  // offset 1, little-endian
  out.push_back(0);
  if (m >= kLz4NibbleMax) PutLz4Length(out, m - kLz4NibbleMax);
}

// lz4_flex's size-prepended form: u32 LE raw size, then one block.
std::vector<uint8_t> Lz4Runs(const uint8_t* p, size_t n) {
  std::vector<uint8_t> out = {static_cast<uint8_t>(n), static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 24)};
  size_t lit = 0;
  for (size_t i = 0; i < n;) {
    size_t r = 1;
    while (i + r < n && p[i + r] == p[i]) ++r;
    if (r > kLz4MinMatch) {  // p[i] as the last literal, then r - 1 copies of it
      PutLz4Sequence(out, p + lit, i + 1 - lit, r - 1);
      lit = i + r;
    }
    i += r;
  }
  PutLz4Sequence(out, p + lit, n - lit, 0);
  return out;
}

void PutLe32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i, v >>= 8) out.push_back(static_cast<uint8_t>(v));
}

// One zstd frame with its content size, of raw and RLE blocks.
std::vector<uint8_t> ZstdRuns(const uint8_t* p, size_t n) {
  struct Block {
    uint32_t type;
    size_t at, len;
  };
  std::vector<Block> blocks;
  size_t raw = 0;
  for (size_t i = 0; i < n;) {
    size_t r = 1;
    while (i + r < n && r < kZstdMaxBlock && p[i + r] == p[i]) ++r;
    if (r >= kZstdMinRle) {
      if (i > raw) blocks.push_back({kZstdRaw, raw, i - raw});
      blocks.push_back({kZstdRle, i, r});
      raw = i + r;
    }
    i += r;
  }
  if (n > raw) blocks.push_back({kZstdRaw, raw, n - raw});
  std::vector<uint8_t> out;
  PutLe32(out, kZstdMagic);
  out.push_back(kZstdSingleSegmentFcs4);
  PutLe32(out, static_cast<uint32_t>(n));
  for (size_t b = 0; b < blocks.size(); ++b) {
    const uint32_t last = b + 1 == blocks.size() ? 1 : 0;
    const uint32_t header = static_cast<uint32_t>(blocks[b].len << 3) | (blocks[b].type << 1) | last;
    for (int i = 0; i < 3; ++i) out.push_back(static_cast<uint8_t>(header >> (8 * i)));
    if (blocks[b].type == kZstdRle) out.push_back(p[blocks[b].at]);
    else out.insert(out.end(), p + blocks[b].at, p + blocks[b].at + blocks[b].len);
  }
  return out;
}

// ---- the arena ----

struct Arena {
  uint8_t codec = kCodecNone;
  std::vector<uint8_t> keys;
  std::vector<uint8_t> heads;  // i32 per key, native order, as the addon receives an Int32Array's bytes
  std::vector<uint8_t> entries;
  std::vector<std::vector<uint8_t>> slabs;
  std::vector<uint8_t> packed_at;
  std::vector<uint8_t> packed;
  bool big_slab = false;  // the last slab is kBigSlabBytes of zeros

  size_t count() const { return entries.size() / kArenaEntryBytes; }
  uint32_t Word(size_t ord, size_t w) const { return Get32(entries, ord * kArenaEntryBytes + w * sizeof(uint32_t)); }
  void SetWord(size_t ord, size_t w, uint32_t v) { Set32(entries, ord * kArenaEntryBytes + w * sizeof(uint32_t), v); }
  uint64_t Lsn(size_t ord) const {
    uint64_t v;
    std::memcpy(&v, entries.data() + ord * kArenaEntryBytes, sizeof v);
    return v;
  }

  static uint32_t Get32(const std::vector<uint8_t>& v, size_t at) {
    uint32_t x;
    std::memcpy(&x, v.data() + at, sizeof x);
    return x;
  }
  static void Set32(std::vector<uint8_t>& v, size_t at, uint32_t x) { std::memcpy(v.data() + at, &x, sizeof x); }
};

void AppendI32(std::vector<uint8_t>& v, int32_t x) {
  v.resize(v.size() + sizeof x);
  std::memcpy(v.data() + v.size() - sizeof x, &x, sizeof x);
}

// Bytes in runs of (1 + fill % 64): compressible when the runs are long.
void FillRuns(uint8_t* p, size_t n, uint8_t fill) {
  const size_t run = 1 + fill % 64;
  for (size_t j = 0; j < n; ++j) p[j] = static_cast<uint8_t>(fill + (j / run) * 29);
}

std::vector<uint8_t> MakeRecord(Input& in, uint8_t kind, uint8_t size, uint8_t fill) {
  std::vector<uint8_t> rec;
  auto patch = [&](size_t len) {
    rec.assign(kPatchHeaderSize + len, 0);
    rec[0] = kRecordTagPatch;
    StoreBe16(rec.data() + 1, static_cast<uint16_t>((size_t{size} * 37 + fill) % (kPageSize - len + 1)));
    FillRuns(rec.data() + kPatchHeaderSize, len, fill);
  };
  switch (kind & kKindMask) {
    case kPatchShort:
      patch(1 + size % kPatchShortMax);
      break;
    case kPatchLong:
      patch(kPatchLongStep * (1 + size));
      break;
    case kPatchRuns:
      patch(kPatchLongStep * (1 + size));
      std::memset(rec.data() + kPatchHeaderSize, fill, rec.size() - kPatchHeaderSize);
      break;
    case kValue:
      rec.assign(1 + kValueStep * size, 0);
      rec[0] = kRecordTagValue;
      FillRuns(rec.data() + 1, rec.size() - 1, fill);
      break;
    case kImage:
      rec.assign(1 + kPageSize, 0);
      rec[0] = kRecordTagImage;
      FillRuns(rec.data() + 1, kPageSize, fill);
      break;
    case kRaw: {  // any bytes: stored PostgreSQL records in the seeds, garbage otherwise
      rec.resize(in.U16() % (kMaxRawRecordBytes + 1));
      for (uint8_t& b : rec) b = in.U8();
      break;
    }
    default:
      rec.assign(1, kRecordTagZero);
  }
  return rec;
}

Arena Generate(Input& in) {
  Arena a;
  a.codec = static_cast<uint8_t>(in.U8() % (kCodecMax + 1));
  const size_t nkeys = in.U8() % (kMaxKeys + 1);
  const size_t records = in.U16() % (kMaxRecords + 1);
  const size_t nrec = nkeys == 0 ? 0 : records;
  const size_t slab_cap = kSlabStepBytes * (1 + (in.U8() & 0x0f));
  const uint64_t lsn0 = uint64_t{in.U32()} * kLsnBaseScale + 1;
  for (size_t k = 0; k < nkeys; ++k) {
    uint8_t key[kKeySize] = {};
    StoreBe64(key + kKeySize - 8, (k + 1) * kKeyStride);
    a.keys.insert(a.keys.end(), key, key + kKeySize);
  }
  std::vector<int32_t> heads(nkeys, kArenaNoPrevious);
  size_t arena_bytes = 0;
  a.slabs.emplace_back();
  for (size_t ord = 0; ord < nrec; ++ord) {
    const size_t k = in.U8() % nkeys;
    const uint8_t kind = in.U8();
    const uint8_t size = in.U8();
    const uint8_t fill = in.U8();
    std::vector<uint8_t> rec = MakeRecord(in, kind, size, fill);
    if (arena_bytes + rec.size() > kMaxArenaBytes) rec.assign(1, kRecordTagZero);
    arena_bytes += rec.size();
    const size_t gap = (kind >> kGapShift) & kGapMask;
    if (a.slabs.back().size() + gap + rec.size() > slab_cap && !a.slabs.back().empty()) a.slabs.emplace_back();
    std::vector<uint8_t>& slab = a.slabs.back();
    slab.resize(slab.size() + gap, 0xee);
    const size_t off = slab.size();
    slab.insert(slab.end(), rec.begin(), rec.end());

    const uint64_t lsn = lsn0 + ord * kLsnStep;
    a.entries.resize(a.entries.size() + kArenaEntryBytes);
    std::memcpy(a.entries.data() + ord * kArenaEntryBytes, &lsn, sizeof lsn);
    a.SetWord(ord, kWordSlab, static_cast<uint32_t>(a.slabs.size() - 1));
    a.SetWord(ord, kWordOffset, static_cast<uint32_t>(off));
    a.SetWord(ord, kWordLength, static_cast<uint32_t>(rec.size()));
    a.SetWord(ord, kWordPrev, static_cast<uint32_t>(heads[k]));
    heads[k] = static_cast<int32_t>(ord);

    // As packArena: records of kCompressMinBytes or more, kept when smaller by more than the
    // blob's raw-length field.
    int32_t poff = 0;
    int32_t plen = kArenaNotPacked;
    if (a.codec != kCodecNone && rec.size() >= kCompressMinBytes && (kind & kNoPackBit) == 0) {
      const std::vector<uint8_t> c = a.codec == kCodecLz4 ? Lz4Runs(rec.data(), rec.size()) : ZstdRuns(rec.data(), rec.size());
      if (c.size() + kBlobRawLenSize < rec.size()) {
        poff = static_cast<int32_t>(a.packed.size());
        plen = static_cast<int32_t>(c.size());
        a.packed.insert(a.packed.end(), c.begin(), c.end());
      }
    }
    AppendI32(a.packed_at, poff);
    AppendI32(a.packed_at, plen);
  }
  for (int32_t h : heads) AppendI32(a.heads, h);
  return a;
}

// ---- mutations ----

// A 32-bit value for a field now holding `cur`: near it, a bound, or raw.
uint32_t Pick(uint8_t mode, uint32_t v, uint32_t cur, size_t count) {
  switch (mode & 7) {
    case 0: return cur + static_cast<uint32_t>(static_cast<int8_t>(v));
    case 1: return v;
    case 2: return static_cast<uint32_t>(-1);
    case 3: return static_cast<uint32_t>(count);  // the first ordinal past the end
    case 4: return 0x7fffffff;
    case 5: return 0x80000000;
    case 6: return cur ^ (1u << (v % 32));
    default: return v & 0xff;
  }
}

void Resize(std::vector<uint8_t>& v, uint8_t sel) {
  const int delta = static_cast<int8_t>(sel);
  v.resize(delta < 0 && static_cast<size_t>(-delta) > v.size() ? 0 : v.size() + delta, 0);
}

enum MutationOp : uint8_t {
  kEntryWord, kHead, kPackedAt, kKeysSize, kHeadsSize, kEntriesSize, kPackedAtSize, kSlabCut,
  kKeyByte, kPackedByte, kWriterRange, kBigRecord, kMutationOps
};

// One mutation of the arena or of the writer's options (the engine passes the whole key space and
// its layer's LSN range; a narrower range makes records fall outside it).
void ApplyMutation(Input& in, Arena& a, LayerWriterOptions& o) {
  const uint8_t op = in.U8() % kMutationOps;
  const uint16_t index = in.U16();
  const uint8_t sel = in.U8();
  const uint32_t v = in.U32();
  const size_t count = a.count();
  const uint8_t mode = sel >> 5;
  switch (op) {
    case kEntryWord:
      if (count > 0) {
        const size_t ord = index % count;
        const size_t w = (sel & 7) % kEntryWords;
        a.SetWord(ord, w, Pick(mode, v, a.Word(ord, w), count));
      }
      break;
    case kHead:
      if (a.heads.size() >= sizeof(int32_t)) {
        const size_t at = (index % (a.heads.size() / sizeof(int32_t))) * sizeof(int32_t);
        Arena::Set32(a.heads, at, Pick(mode, v, Arena::Get32(a.heads, at), count));
      }
      break;
    case kPackedAt:
      if (a.packed_at.size() >= sizeof(int32_t)) {
        const size_t at = (index % (a.packed_at.size() / sizeof(int32_t))) * sizeof(int32_t);
        Arena::Set32(a.packed_at, at, Pick(mode, v, Arena::Get32(a.packed_at, at), a.packed.size()));
      }
      break;
    case kKeysSize: Resize(a.keys, sel); break;
    case kHeadsSize: Resize(a.heads, sel); break;
    case kEntriesSize: Resize(a.entries, sel); break;
    case kPackedAtSize: Resize(a.packed_at, sel); break;
    case kSlabCut:
      if ((sel & 1) != 0 && !a.slabs.empty()) {
        a.slabs.pop_back();
        a.big_slab = false;
      } else if (!a.slabs.empty()) {
        std::vector<uint8_t>& s = a.slabs[index % a.slabs.size()];
        s.resize(s.size() - v % (s.size() + 1));
      }
      break;
    case kKeyByte:
      if (!a.keys.empty()) a.keys[index % a.keys.size()] ^= static_cast<uint8_t>(v | 1);
      break;
    case kPackedByte:
      if (!a.packed.empty()) a.packed[index % a.packed.size()] ^= static_cast<uint8_t>(v | 1);
      break;
    case kWriterRange:
      switch (sel & 3) {
        case 0: o.codec = static_cast<uint8_t>(v % (kCodecMax + 1)); break;
        case 1: if (count > 0) o.lsn_start = a.Lsn(index % count) + (mode & 1); break;
        case 2: if (count > 0) o.lsn_end = a.Lsn(index % count) + (mode & 1); break;
        default: {
          const size_t j = index % (a.keys.size() / kKeySize + 1);
          if (j < a.keys.size() / kKeySize) std::memcpy(o.key_end, a.keys.data() + j * kKeySize, kKeySize);
        }
      }
      break;
    case kBigRecord:  // a record around the largest record size, in a slab of zeros
      if (count > 0) {
        if (!a.big_slab) {
          a.slabs.emplace_back(kBigSlabBytes, 0);
          a.big_slab = true;
        }
        const size_t ord = index % count;
        a.SetWord(ord, kWordSlab, static_cast<uint32_t>(a.slabs.size() - 1));
        a.SetWord(ord, kWordOffset, v & kBigOffsetMask);
        a.SetWord(ord, kWordLength, static_cast<uint32_t>(kMaxRecordSize + static_cast<int8_t>(sel)));
      }
      break;
  }
  // A writer range that is empty would fail in the constructor, not in the walk: keep it valid.
  if (o.lsn_start >= o.lsn_end) o.lsn_end = o.lsn_start + 1;
  if (std::memcmp(o.key_start, o.key_end, kKeySize) >= 0) std::memset(o.key_end, 0xff, kKeySize);
}

// ---- the reference walk ----

struct Want {
  bool ok = true;
  std::string why;         // the first malformation found
  bool decodable = true;   // every record well formed and every compressed form its record's
  std::vector<uint8_t> index_keys;
  std::vector<uint8_t> blobs;  // back to back, as the value stream must hold them
  std::vector<size_t> blob_ends;
  std::vector<uint8_t> will_init;
  std::vector<RecordView> records;
};

Want Reference(const Arena& a, const LayerWriterOptions& o) {
  static Decompressor decompressor;
  static std::vector<uint8_t> decoded;
  Want w;
  auto refuse = [&w](const std::string& why) {
    w.ok = false;
    w.why = why;
    return w;
  };
  if (a.entries.size() % kArenaEntryBytes != 0) return refuse("entries not whole");
  const size_t n = a.count();
  if (a.heads.size() % sizeof(int32_t) != 0) return refuse("heads not whole");
  const size_t nkeys = a.heads.size() / sizeof(int32_t);
  if (a.keys.size() != nkeys * kKeySize) return refuse("keys and heads disagree");
  if (a.packed_at.size() != n * 2 * sizeof(int32_t)) return refuse("packedAt size");
  std::vector<int64_t> chain;
  for (size_t k = 0; k < nkeys; ++k) {
    chain.clear();
    for (int64_t ord = static_cast<int32_t>(Arena::Get32(a.heads, k * sizeof(int32_t))); ord != kArenaNoPrevious;
         ord = static_cast<int32_t>(a.Word(static_cast<size_t>(ord), kWordPrev))) {
      if (ord < 0 || static_cast<size_t>(ord) >= n) return refuse("key " + std::to_string(k) + ": ordinal out of range");
      if (!chain.empty() && ord >= chain.back()) return refuse("key " + std::to_string(k) + ": chain not getting older");
      chain.push_back(ord);
    }
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      const size_t ord = static_cast<size_t>(*it);
      const uint32_t slab = a.Word(ord, kWordSlab);
      const uint64_t off = a.Word(ord, kWordOffset);
      const uint32_t len = a.Word(ord, kWordLength);
      if (slab >= a.slabs.size() || len == 0 || off + len > a.slabs[slab].size()) return refuse("record " + std::to_string(ord) + ": outside its slab");
      const uint8_t* rec = a.slabs[slab].data() + off;
      if (rec[0] == kRecordTagPg && !pg::StoredRecordWillInitFits(rec, len)) return refuse("record " + std::to_string(ord) + ": PostgreSQL record too short");
      if (len > kMaxRecordSize) return refuse("record " + std::to_string(ord) + ": longer than the largest record");
      uint8_t ik[kDeltaIndexKeySize];
      std::memcpy(ik, a.keys.data() + k * kKeySize, kKeySize);
      StoreBe64(ik + kKeySize, a.Lsn(ord));
      if (!w.index_keys.empty() && std::memcmp(w.index_keys.data() + w.index_keys.size() - kDeltaIndexKeySize, ik, kDeltaIndexKeySize) >= 0) {
        return refuse("record " + std::to_string(ord) + ": index key not above the previous one");
      }
      if (std::memcmp(ik, o.key_start, kKeySize) < 0 || std::memcmp(ik, o.key_end, kKeySize) >= 0) return refuse("key outside the writer's range");
      if (a.Lsn(ord) < o.lsn_start || a.Lsn(ord) >= o.lsn_end) return refuse("LSN outside the writer's range");
      w.index_keys.insert(w.index_keys.end(), ik, ik + kDeltaIndexKeySize);

      const int32_t poff = static_cast<int32_t>(Arena::Get32(a.packed_at, ord * 2 * sizeof(int32_t)));
      const int32_t plen = static_cast<int32_t>(Arena::Get32(a.packed_at, (ord * 2 + 1) * sizeof(int32_t)));
      uint8_t header[kBlobHeaderSize + kBlobRawLenSize];
      if (plen == kArenaNotPacked) {
        StoreBe32(header, len);
        w.blobs.insert(w.blobs.end(), header, header + kBlobHeaderSize);
        w.blobs.insert(w.blobs.end(), rec, rec + len);
      } else {
        // A compressed form under the codec that compresses nothing has no blob encoding.
        if (o.codec == kCodecNone || plen < 0 || poff < 0 || uint64_t(poff) + uint64_t(plen) > a.packed.size() ||
            uint64_t(plen) + kBlobRawLenSize >= len) {
          return refuse("record " + std::to_string(ord) + ": compressed form out of range");
        }
        StoreBe32(header, (uint32_t{o.codec} << kBlobCodecShift) | static_cast<uint32_t>(plen));
        StoreBe32(header + kBlobHeaderSize, len);
        w.blobs.insert(w.blobs.end(), header, header + sizeof header);
        const uint8_t* form = a.packed.data() + poff;
        w.blobs.insert(w.blobs.end(), form, form + plen);
        decoded.resize(len);
        w.decodable = w.decodable && decompressor.Decompress(o.codec, form, static_cast<size_t>(plen), decoded.data(), len) == nullptr &&
                      std::memcmp(decoded.data(), rec, len) == 0;
      }
      w.decodable = w.decodable && CheckSerializedRecord(rec, len) == nullptr;
      w.blob_ends.push_back(w.blobs.size());
      w.will_init.push_back(RecordWillInit(rec) ? 1 : 0);
      w.records.push_back(RecordView{rec, len});
    }
  }
  return w;
}

// ---- running and checking ----

// The arena's arrays in exactly-sized heap blocks (null when empty, as a typed array may hand
// over), so ASan reports a read one byte past any of them.
struct ExactCopies {
  std::vector<std::unique_ptr<uint8_t[]>> blocks;
  ByteSpan Copy(const std::vector<uint8_t>& v) {
    if (v.empty()) return ByteSpan{nullptr, 0};
    blocks.emplace_back(new uint8_t[v.size()]);
    std::memcpy(blocks.back().get(), v.data(), v.size());
    return ByteSpan{blocks.back().get(), v.size()};
  }
};

// The layer's file: on tmpfs when there is one, so the writer's fsync costs nothing. Removed at exit.
class OutputFile {
 public:
  OutputFile() {
    dir_ = fuzz::MakeScratchDir("delta-arena");
    path_ = dir_ + "/arena.layer";
  }
  ~OutputFile() {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }
  void Read(std::vector<uint8_t>& bytes) const {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) Bug("the finished layer cannot be opened for reading");
    struct stat st;
    if (::fstat(fd, &st) != 0) std::abort();
    bytes.resize(static_cast<size_t>(st.st_size));
    if (::pread(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) std::abort();
    ::close(fd);
  }

 private:
  std::string dir_;
  std::string path_;
};

// Byte `off` of the value stream in the file's bytes (value blocks from kValueStartBlk, each
// holding kBlockPayload bytes before its CRC).
uint8_t ValueByte(const std::vector<uint8_t>& file, uint64_t off) {
  const uint64_t at = (kValueStartBlk + off / kBlockPayload) * kBlockSize + off % kBlockPayload;
  if (at >= file.size()) Bug("a blob runs past the end of the file");
  return file[at];
}

void CheckLayer(const OutputFile& out, uint64_t size, const Want& want, const LayerWriterOptions& o) {
  static uint32_t next_id = 1;
  static BlobScratch scratch;
  static ByteArena record;
  static std::vector<uint8_t> file;
  static std::vector<uint8_t> node(kBlockSize);
  out.Read(file);
  if (file.size() != size) Bug("Finish reported " + std::to_string(size) + " bytes, the file holds " + std::to_string(file.size()));
  std::unique_ptr<Layer> layer;
  try {
    layer = Layer::Open(out.path(), next_id++, nullptr);
  } catch (const StrataError& e) {
    Bug("the finished layer does not open: " + std::string(e.what()));
  }
  const LayerSummary& s = layer->summary();
  const size_t n = want.will_init.size();
  if (layer->is_image() || s.codec != o.codec || s.lsn_start != o.lsn_start || s.lsn_end != o.lsn_end) Bug("summary does not match the writer's options");
  if (s.entry_count != n) Bug("layer holds " + std::to_string(s.entry_count) + " entries, the arena " + std::to_string(n));
  if (s.value_bytes != want.blobs.size()) Bug("value stream of " + std::to_string(s.value_bytes) + " bytes, blobs of " + std::to_string(want.blobs.size()));
  if (want.decodable && n <= kVerifyMaxEntries) {
    try {
      layer->Verify();
    } catch (const StrataError& e) {
      Bug("a layer of well-formed records does not verify: " + std::string(e.what()));
    }
  }
  const size_t sample_step = n / kReadBlobSamples + 1;
  BtreeCursor cursor(layer->file(), layer->geometry(), ReadMode::kDirect, node.data());
  size_t i = 0;
  uint64_t blob_start = 0;
  for (bool more = cursor.SeekFirst(); more; more = cursor.Next(), ++i) {
    cursor.Detach();
    if (i >= n) Bug("the index holds more entries than the arena");
    const std::string at = "entry " + std::to_string(i) + ": ";
    if (std::memcmp(cursor.key(), want.index_keys.data() + i * kDeltaIndexKeySize, kDeltaIndexKeySize) != 0) Bug(at + "index key differs");
    const uint64_t value = cursor.value();
    if ((value & kWillInitBit) != want.will_init[i]) Bug(at + "will_init differs");
    if (value >> 1 != blob_start) Bug(at + "blob not right after the previous one");
    for (uint64_t b = blob_start; b < want.blob_ends[i]; ++b) {
      if (ValueByte(file, b) != want.blobs[b]) Bug(at + "blob byte " + std::to_string(b - blob_start) + " differs");
    }
    if (want.decodable && (i % sample_step == 0 || i + 1 == n)) {
      record.clear();
      const BlobRef blob = ReadBlob(layer->file(), ReadMode::kDirect, s.value_bytes, blob_start, scratch, record);
      scratch.ref.Release();
      if (blob.len != want.records[i].len || std::memcmp(record.data() + blob.arena_offset, want.records[i].data, blob.len) != 0) Bug(at + "record read back differs");
    }
    blob_start = want.blob_ends[i];
  }
  cursor.Release();
  if (i != n) Bug("the index holds " + std::to_string(i) + " entries, the arena " + std::to_string(n));
}

// The batch limits the input's last byte selects (0: the walk's defaults).
ArenaBatchLimits BatchLimits(uint8_t sel) {
  ArenaBatchLimits limits;
  if (sel == 0) return limits;
  limits.entries = 1 + sel % kSmallBatchEntriesMax;
  limits.bytes = kSmallBatchBytesStep * (1 + (sel >> 4));
  return limits;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static OutputFile out;
  Input in(data, size);
  Arena arena = Generate(in);
  LayerWriterOptions opts;
  opts.kind = kLayerKindDelta;
  opts.codec = arena.codec;
  std::memset(opts.key_end, 0xff, kKeySize);
  opts.lsn_start = 1;
  opts.lsn_end = UINT64_MAX;
  const size_t mutations = in.U8() % (kMaxMutations + 1);
  for (size_t m = 0; m < mutations; ++m) ApplyMutation(in, arena, opts);
  const ArenaBatchLimits limits = BatchLimits(in.U8());
  const Want want = Reference(arena, opts);

  ExactCopies copies;
  DeltaArenaView view;
  view.keys = copies.Copy(arena.keys);
  view.heads = copies.Copy(arena.heads);
  view.entries = copies.Copy(arena.entries);
  for (const std::vector<uint8_t>& s : arena.slabs) view.slabs.push_back(copies.Copy(s));
  view.packed_at = copies.Copy(arena.packed_at);
  view.packed = copies.Copy(arena.packed);

  LayerWriter writer(out.path(), opts);
  try {
    AppendDeltaArena(writer, opts.codec, view, limits);
  } catch (const StrataError& e) {
    if (e.code() != ErrorCode::kBadArgument) Bug(std::string("unexpected ") + ErrorCodeName(e.code()) + ": " + e.what());
    if (want.ok) Bug(std::string("a well-formed arena was refused: ") + e.what());
    writer.Abort();
    return 0;
  }
  if (!want.ok) Bug("a malformed arena was written (" + want.why + ")");
  uint64_t written = 0;
  try {
    written = writer.Finish();
  } catch (const StrataError& e) {
    Bug(std::string("Finish failed: ") + e.what());
  }
  CheckLayer(out, written, want, opts);
  return 0;
}
