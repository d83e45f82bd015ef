// Shared pieces of Strata's libFuzzer targets (built by scripts/fuzz.js, linked with the core's
// C++ sources, no N-API): a small deterministic PRNG seeded from the input, an in-memory file
// with a path (memfd) for the readers that open files, and block checksum fixing so mutated
// layer blocks get past the CRC check and reach the parsers behind it.
#ifndef STRATA_FUZZ_UTIL_H_
#define STRATA_FUZZ_UTIL_H_

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "crc32.h"
#include "format.h"

namespace strata {
namespace fuzz {

// splitmix64: deterministic for a given input, so a crash reproduces from its file.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi].
  uint64_t Range(uint64_t lo, uint64_t hi) { return lo + Next() % (hi - lo + 1); }

 private:
  uint64_t s_;
};

// A wrong result the target found: prints it and traps, so libFuzzer keeps the input as a crash.
[[noreturn]] inline void Bug(const char* target, const std::string& what) {
  std::fprintf(stderr, "%s fuzz: %s\n", target, what.c_str());
  std::fflush(stderr);
  __builtin_trap();
}

// A new directory for a target's output files, named for the target: on tmpfs when there is one,
// so the writers' fsyncs cost nothing. The caller removes it.
inline std::string MakeScratchDir(const char* target) {
  std::string tmpl = std::string(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") + "/strata-fuzz-" + target + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) std::abort();
  return tmpl;
}

// A file in memory with a path (/proc/self/fd/N) that open(2) accepts; closed on destruction.
// A target keeps one for the whole run and Reset()s it per input: creating and closing a memfd
// for every input cost more than the parsing of small inputs.
class MemFile {
 public:
  MemFile() {
    fd_ = memfd_create("strata-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) std::abort();
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  MemFile(const uint8_t* data, size_t len) : MemFile() { Reset(data, len); }
  ~MemFile() { ::close(fd_); }
  // Makes the file exactly `data` (descriptors opened on the path see the new contents).
  void Reset(const uint8_t* data, size_t len) {
    if (::ftruncate(fd_, static_cast<off_t>(len)) != 0) std::abort();
    size_t done = 0;
    while (done < len) {
      const ssize_t n = ::pwrite(fd_, data + done, len - done, static_cast<off_t>(done));
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
  }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  const std::string& path() const { return path_; }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// Rewrites the CRC trailer of every 8 KB block in `blocks` (len a multiple of kBlockSize).
inline void FixBlockCrcs(uint8_t* blocks, size_t len) {
  for (size_t off = 0; off + kBlockSize <= len; off += kBlockSize) {
    StoreBe32(blocks + off + kBlockPayload, Crc32(blocks + off, kBlockPayload));
  }
}

}  // namespace fuzz
}  // namespace strata

#endif  // STRATA_FUZZ_UTIL_H_
