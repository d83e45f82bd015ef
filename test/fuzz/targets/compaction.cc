// libFuzzer target: the native L0 -> L1 compaction (native/compaction.cc CompactDeltaLayers), the
// synchronous merge the addon runs on a libuv worker. Input layout:
//   [u8 target]  output cut size (kTargetStepBytes x (1 + low 5 bits)) and summary codec (top 3)
//   [u8 flags]   bit i: set input i's summary total_blocks to its padded size (as layer_btree
//                does); bit 4 + i: keep input i's block CRCs as given instead of rewriting them
//   then up to kMaxInputs × ([u32 BE length][that many bytes]): the delta layer files, each padded
//   to whole 8 KB blocks (at most kMaxInputBlocks); a length past the end takes the rest.
// Every input must end in success or a StrataError (CORRUPT_LAYER; BAD_ARGUMENT only for an image
// input), a failure must leave no output behind, and every output must open as a layer. When
// every input passes Layer::Verify, the merge must succeed unless two inputs share a (key, LSN),
// and its outputs must verify, cover ascending disjoint key ranges and hold exactly the inputs'
// entries (read back through the B-tree cursor and ReadBlob). Anything else is a bug.
#include <dirent.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "block_io.h"
#include "compaction.h"
#include "disk_btree.h"
#include "errors.h"
#include "fuzz_util.h"
#include "layer_file.h"

namespace {

using namespace strata;

constexpr size_t kMaxInputs = 4;
// Past the merge's 8-block read chunk for both runs (a layer of 10+ value blocks, or of 9+ leaves:
// about 2,000 small entries), so chunk reloads are reached; 192 KiB keeps an execution to
// milliseconds.
constexpr size_t kMaxInputBlocks = 24;
// Small cut sizes so the seeds' few KiB of values split into several outputs.
constexpr uint64_t kTargetStepBytes = 1024;
constexpr size_t kHeaderBytes = 2;
constexpr size_t kLengthPrefixBytes = 4;
constexpr unsigned kCrcFlagShift = 4;
// A leaf value: value-stream offset << 1 | will_init (docs/FORMAT.md).
constexpr uint64_t kWillInitBit = 1;
constexpr unsigned kValueOffsetShift = 1;

[[noreturn]] void Bug(const std::string& what) { fuzz::Bug("compaction", what); }

// Where outputs go: tmpfs when there is one, so the writer's fsync costs nothing. Removed at exit.
class OutputDir {
 public:
  OutputDir() {
    dir_ = fuzz::MakeScratchDir("compaction");
  }
  ~OutputDir() {
    Clear();
    ::rmdir(dir_.c_str());
  }
  std::string prefix() const { return dir_ + "/out-"; }
  // Names of the files left in the directory.
  std::vector<std::string> List() const {
    std::vector<std::string> names;
    DIR* d = ::opendir(dir_.c_str());
    if (d == nullptr) std::abort();
    while (const dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.push_back(e->d_name);
    }
    ::closedir(d);
    return names;
  }
  void Clear() const {
    for (const std::string& n : List()) ::unlink((dir_ + "/" + n).c_str());
  }

 private:
  std::string dir_;
};

struct Split {
  uint64_t target_bytes = 0;
  uint8_t codec = 0;
  size_t inputs = 0;
};

// Cuts the input into layer files (written to `files`), padded and optionally patched as the
// header asks.
Split Parse(const uint8_t* data, size_t size, std::array<fuzz::MemFile, kMaxInputs>& files) {
  static std::vector<uint8_t> buf;
  Split s;
  s.target_bytes = kTargetStepBytes * (1 + (data[0] & 0x1f));
  s.codec = static_cast<uint8_t>((data[0] >> 5) % (kCodecMax + 1));
  const uint8_t flags = data[1];
  size_t at = kHeaderBytes;
  while (s.inputs < kMaxInputs && size - at >= kLengthPrefixBytes) {
    const size_t claimed = LoadBe32(data + at);
    at += kLengthPrefixBytes;
    const size_t len = std::min(claimed, size - at);
    const size_t blocks = std::min(kMaxInputBlocks, (len + kBlockSize - 1) / kBlockSize);
    buf.assign(blocks * kBlockSize, 0);
    // An empty file leaves `buf` with no storage until a first input allocated it: memcpy of 0
    // bytes into a null pointer is still undefined behaviour.
    if (!buf.empty()) std::memcpy(buf.data(), data + at, std::min(len, buf.size()));
    at += len;
    const size_t i = s.inputs++;
    if (blocks > 0 && (flags >> i & 1) != 0) StoreBe32(buf.data() + summary_off::kTotalBlocks, static_cast<uint32_t>(blocks));
    if ((flags >> (kCrcFlagShift + i) & 1) == 0) fuzz::FixBlockCrcs(buf.data(), buf.size());
    files[i].Reset(buf.data(), buf.size());
  }
  return s;
}

uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// A layer's entries as an order-independent digest (the sum of a hash per index key, will_init
// bit and decoded record) and their count, read through the cursor rather than the merge's own
// reader. Call only on a layer that verified.
struct Digest {
  uint64_t sum = 0;
  uint64_t entries = 0;
};
void AddEntries(const Layer& layer, Digest& d) {
  static BlobScratch scratch;
  static ByteArena record;
  std::vector<uint8_t> node(kBlockSize);
  BtreeCursor cursor(layer.file(), layer.geometry(), ReadMode::kDirect, node.data());
  for (bool ok = cursor.SeekFirst(); ok; ok = cursor.Next()) {
    cursor.Detach();
    record.clear();
    const uint64_t value = cursor.value();
    const BlobRef blob = ReadBlob(layer.file(), ReadMode::kDirect, layer.summary().value_bytes, value >> kValueOffsetShift, scratch, record);
    uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a over key ‖ will_init ‖ record
    auto feed = [&h](const uint8_t* p, size_t n) {
      for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
    };
    feed(cursor.key(), kDeltaIndexKeySize);
    const uint8_t will_init = value & kWillInitBit;
    feed(&will_init, 1);
    feed(record.data() + blob.arena_offset, blob.len);
    d.sum += Mix(h);
    ++d.entries;
  }
  cursor.Release();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kHeaderBytes) return 0;
  static std::array<fuzz::MemFile, kMaxInputs> files;
  static OutputDir out;
  static uint32_t next_id = 1;
  const Split split = Parse(data, size, files);

  DeltaCompactionOptions opts;
  opts.output_prefix = out.prefix();
  opts.output_suffix = ".layer";
  opts.target_bytes = split.target_bytes;
  opts.codec = split.codec;
  // The engine passes the union of its inputs' LSN ranges; inputs that do not open get no say
  // (the merge refuses them anyway). None open: any valid range.
  opts.lsn_start = UINT64_MAX - 1;
  opts.lsn_end = 0;
  bool all_verified = true;
  bool any_image = false;
  Digest want;
  for (size_t i = 0; i < split.inputs; ++i) {
    opts.inputs.push_back(files[i].path());
    try {
      const std::unique_ptr<Layer> layer = Layer::Open(files[i].path(), next_id++, nullptr);
      opts.lsn_start = std::min(opts.lsn_start, layer->summary().lsn_start);
      opts.lsn_end = std::max(opts.lsn_end, layer->summary().lsn_end);
      any_image = any_image || layer->is_image();
      layer->Verify();
      if (layer->is_image()) all_verified = false;
      else AddEntries(*layer, want);
    } catch (const StrataError&) {
      all_verified = false;
    }
  }
  if (opts.lsn_start >= opts.lsn_end) {
    opts.lsn_start = 0;
    opts.lsn_end = UINT64_MAX;
  }

  DeltaCompactionResult result;
  try {
    result = CompactDeltaLayers(opts);
  } catch (const StrataError& e) {
    const std::string msg = e.what();
    const bool allowed = e.code() == ErrorCode::kCorruptLayer || (e.code() == ErrorCode::kBadArgument && any_image);
    if (!allowed) Bug(std::string("unexpected ") + ErrorCodeName(e.code()) + ": " + msg);
    if (all_verified && msg.find("inputs overlap") == std::string::npos) Bug("inputs that verify were refused: " + msg);
    if (!out.List().empty()) Bug("a failed compaction left " + out.List()[0] + " behind");
    return 0;
  }
  if (any_image) Bug("an image layer was merged as a delta layer");

  Digest got;
  const uint8_t* prev_end = nullptr;
  for (const CompactionOutput& o : result.outputs) {
    std::unique_ptr<Layer> layer;
    try {
      layer = Layer::Open(o.path, next_id++, nullptr);
    } catch (const StrataError& e) {
      Bug("an output does not open: " + std::string(e.what()));
    }
    const LayerSummary& s = layer->summary();
    if (layer->is_image() || s.codec != opts.codec || s.lsn_start != opts.lsn_start || s.lsn_end != opts.lsn_end) {
      Bug(o.path + ": summary does not match the options");
    }
    if (std::memcmp(s.key_start, o.key_start, kKeySize) != 0 || std::memcmp(s.key_end, o.key_end, kKeySize) != 0) {
      Bug(o.path + ": key range differs from the one reported");
    }
    if (prev_end != nullptr && std::memcmp(prev_end, o.key_start, kKeySize) != 0) Bug(o.path + ": key ranges are not contiguous");
    prev_end = o.key_end;
    if (s.entry_count == 0) Bug(o.path + ": an output holds no entries");
    if (all_verified) {
      try {
        layer->Verify();
        AddEntries(*layer, got);
      } catch (const StrataError& e) {
        Bug("an output of inputs that verify does not: " + std::string(e.what()));
      }
    }
  }
  if (all_verified && (got.entries != want.entries || got.sum != want.sum)) {
    Bug("outputs hold " + std::to_string(got.entries) + " entries, inputs " + std::to_string(want.entries) +
        (got.entries == want.entries ? " (same count, different entries)" : ""));
  }
  if (out.List().size() != result.outputs.size()) Bug("files in the output directory are not the outputs reported");
  out.Clear();
  return 0;
}
