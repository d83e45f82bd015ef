// On-disk layout constants shared by every layer-file reader and writer.
// Mirrors lib/core/format.ts and lib/record.ts; docs/FORMAT.md explains each byte.
#ifndef STRATA_FORMAT_H_
#define STRATA_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace strata {

constexpr size_t kKeySize = 18;
// Leading kind byte of a relation page key (lib/key.ts KEY_KIND_REL_PAGE).
constexpr uint8_t kKeyKindRelPage = 0x00;

constexpr size_t kBlockSize = 8192;
// Each block ends with a big-endian CRC-32 (zlib polynomial) of the bytes before it.
constexpr size_t kBlockCrcSize = 4;
constexpr size_t kBlockPayload = kBlockSize - kBlockCrcSize;

constexpr uint32_t kDeltaMagic = 0x53544c44;  // 'STLD'
constexpr uint32_t kImageMagic = 0x53544c49;  // 'STLI'
constexpr uint16_t kLayerFormatVersion = 1;

constexpr uint8_t kLayerKindDelta = 1;
constexpr uint8_t kLayerKindImage = 2;

// Summary (block 0) field offsets.
namespace summary_off {
constexpr size_t kMagic = 0;            // u32
constexpr size_t kFormatVersion = 4;    // u16
constexpr size_t kLayerKind = 6;        // u8
constexpr size_t kCodec = 7;            // u8
constexpr size_t kKeyStart = 8;         // 18 bytes
constexpr size_t kKeyEnd = 26;          // 18 bytes, exclusive
constexpr size_t kLsnStart = 44;        // u64
constexpr size_t kLsnEnd = 52;          // u64, exclusive
constexpr size_t kValueStartBlk = 60;   // u32 (always 1)
constexpr size_t kValueBlkCount = 64;   // u32
constexpr size_t kValueBytes = 68;      // u64
constexpr size_t kIndexStartBlk = 76;   // u32
constexpr size_t kIndexLeafCount = 80;  // u32
constexpr size_t kIndexRootBlk = 84;    // u32 absolute
constexpr size_t kIndexBlkCount = 88;   // u32
constexpr size_t kIndexHeight = 92;     // u8 (1 = the root is a leaf)
constexpr size_t kIndexKeySize = 93;    // u8
constexpr size_t kReserved = 94;        // u16 zero
constexpr size_t kEntryCount = 96;      // u64
constexpr size_t kTotalBlocks = 104;    // u32
constexpr size_t kRecordFormat = 108;   // u8
constexpr size_t kEnd = 109;            // zero padding from here up to kBlockPayload
}  // namespace summary_off

constexpr uint32_t kValueStartBlk = 1;

constexpr size_t kDeltaIndexKeySize = kKeySize + 8;  // key || lsn (u64 BE)
constexpr size_t kImageIndexKeySize = kKeySize;
constexpr size_t kMaxIndexKeySize = kDeltaIndexKeySize;

// B-tree node: u8 level, u8 reserved, u16 count, keys, then u64 values.
constexpr size_t kBtreeNodeHeader = 4;
constexpr size_t kBtreeValueSize = 8;
constexpr size_t BtreeFanout(size_t key_size) {
  return (kBlockPayload - kBtreeNodeHeader) / (key_size + kBtreeValueSize);
}
// A leaf value: the blob's offset in the value stream << 1 | the record's will_init bit.
constexpr uint64_t kWillInitBit = 1;

// Blob header: u32 BE (codec << 28 | stored length); compressed blobs add u32 BE raw length.
constexpr size_t kBlobHeaderSize = 4;
constexpr size_t kBlobRawLenSize = 4;
constexpr uint32_t kBlobLenMask = 0x0fffffff;
constexpr unsigned kBlobCodecShift = 28;

constexpr uint8_t kCodecNone = 0;
constexpr uint8_t kCodecLz4 = 1;
constexpr uint8_t kCodecZstd = 2;
constexpr uint8_t kCodecMax = kCodecZstd;

// Records (record format version 1).
constexpr size_t kPageSize = 8192;
// Written into every summary; readers accept kOldestRecordFormatVersion..kRecordFormatVersion
// (lib/record.ts says why).
constexpr uint8_t kRecordFormatVersion = 2;
constexpr uint8_t kOldestRecordFormatVersion = 1;
constexpr uint8_t kRecordTagImage = 1;
constexpr uint8_t kRecordTagZero = 2;
constexpr uint8_t kRecordTagPatch = 3;
// A small value under a non-page key: its payload, then zeros (docs/FORMAT.md, "Records").
constexpr uint8_t kRecordTagValue = 5;
constexpr size_t kPatchHeaderSize = 3;
// A stored PostgreSQL record for one block (docs/POSTGRES.md, "Stored record"), redone by native/pg/.
constexpr uint8_t kRecordTagPg = 4;
// Largest serialized record. Strata's own kinds stay within a page (a patch covering the whole page
// is 8195 bytes); a stored PostgreSQL record can in principle reach 24 + 33 x 24 + 65535 bytes plus
// its main data, and is bounded here at 128 KiB, far above any heap or btree record (their block
// data stays within a page, their main data within a few hundred bytes). docs/FORMAT.md says what
// happens to a larger one.
constexpr size_t kMaxRecordSize = 128 * 1024;

constexpr uint8_t kPageStatusOk = 0;
constexpr uint8_t kPageStatusNotFound = 1;

// Big-endian helpers: every on-disk integer is big-endian, whatever the host.
inline uint16_t LoadBe16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t LoadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
inline uint64_t LoadBe64(const uint8_t* p) {
  return (uint64_t{LoadBe32(p)} << 32) | LoadBe32(p + 4);
}
inline void StoreBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void StoreBe32(uint8_t* p, uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
inline void StoreBe64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}

}  // namespace strata

#endif  // STRATA_FORMAT_H_
