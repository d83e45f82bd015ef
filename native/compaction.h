// L0 → L1 compaction inside the core (docs/ARCHITECTURE.md, "Compaction"): a streaming k-way merge
// of delta layers in (key, LSN) order into delta layers cut at a target size on key boundaries.
// Values move as stored (never decoded). Runs on whatever thread calls it (the addon: a libuv
// worker); it touches no core state, only the files it is given.
#ifndef STRATA_COMPACTION_H_
#define STRATA_COMPACTION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "format.h"

namespace strata {

struct DeltaCompactionOptions {
  std::vector<std::string> inputs;  // delta layer files; their (key, LSN) entries must not repeat
  // Output i is written, fsynced and closed at output_prefix + i + output_suffix.
  std::string output_prefix;
  std::string output_suffix;
  uint64_t target_bytes = 0;  // cut an output once it holds this many bytes (values + index keys)
  uint8_t codec = 0;          // recorded in each output's summary
  uint64_t lsn_start = 0;
  uint64_t lsn_end = 0;
};

struct CompactionOutput {
  std::string path;
  uint8_t key_start[kKeySize] = {};
  uint8_t key_end[kKeySize] = {};  // exclusive
  uint64_t size_bytes = 0;
};

struct DeltaCompactionResult {
  std::vector<CompactionOutput> outputs;
  // Stored blob bytes plus one index key per entry moved, as the TS twin counts them.
  uint64_t bytes_read = 0;
};

// CORRUPT_LAYER names the input file and block; IO_ERROR names the file; BAD_ARGUMENT for an
// image input. On failure every output written so far is removed.
DeltaCompactionResult CompactDeltaLayers(const DeltaCompactionOptions& opts);

}  // namespace strata

#endif  // STRATA_COMPACTION_H_
