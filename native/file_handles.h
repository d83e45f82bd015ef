// A bounded set of open layer-file descriptors shared by every layer of one core: a layer's file
// is opened when a block read needs it and closed again, least recently used first, when more
// than `max_open` are open (Neon's virtual file cache plays this role). A timeline with thousands
// of layers then holds at most max_open descriptors (more only while that many reads run at once:
// a descriptor in use is never closed under a read).
#ifndef STRATA_FILE_HANDLES_H_
#define STRATA_FILE_HANDLES_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

namespace strata {

// Opens a layer file for reading, without access-time updates where the kernel allows it (the
// file's owner): every block read otherwise pays the atime check, ≈ 1.3 % of a reconstruct.
// Returns the descriptor, or -1 with errno set.
int OpenLayerForReading(const std::string& path);

// The default bound (lib/core/core.ts DEFAULT_MAX_OPEN_LAYER_FILES, which the engine passes).
constexpr size_t kDefaultMaxOpenLayerFiles = 256;

class FileHandles {
 public:
  explicit FileHandles(size_t max_open) : max_open_(max_open < 1 ? 1 : max_open) {}
  ~FileHandles();
  FileHandles(const FileHandles&) = delete;
  FileHandles& operator=(const FileHandles&) = delete;

  // Registers file `id` (at `path`) with an already open descriptor, which this now owns.
  void Adopt(uint32_t id, const std::string& path, int fd);
  // A descriptor for `id`, reopened read-only if it was closed, pinned until Release(id). Returns
  // -errno when the reopen fails.
  int Acquire(uint32_t id);
  void Release(uint32_t id);
  // Keeps the descriptor open (reopening it if needed) until Forget: for a layer that is closed
  // while reads still hold it, whose file is about to be deleted and could not be reopened.
  // Returns -errno when the reopen fails, else 0.
  int Retain(uint32_t id);
  // The file is gone for good: close its descriptor now, or at its last Release.
  void Forget(uint32_t id);

  size_t open_count() const;
  size_t max_open() const { return max_open_; }

 private:
  struct Entry {
    std::string path;
    int fd = -1;
    uint32_t pins = 0;
    bool forgotten = false;
    bool retained = false;
    bool in_lru = false;
    std::list<uint32_t>::iterator lru_pos;
  };
  // Opens the entry's file if it is closed and takes it out of the LRU (it is about to be in
  // use); 0, or -errno of a failed open. Caller holds mu_.
  int OpenOutOfLru(Entry& e);
  void CloseEntry(Entry& e);
  void EvictOverLimit();

  const size_t max_open_;
  mutable std::mutex mu_;
  std::unordered_map<uint32_t, Entry> entries_;
  std::list<uint32_t> lru_;  // open, unpinned descriptors, least recently used first
  size_t open_ = 0;
};

// A pinned descriptor, released on destruction.
class FdLease {
 public:
  FdLease(FileHandles* handles, uint32_t id) : handles_(handles), id_(id), fd_(handles->Acquire(id)) {}
  ~FdLease() {
    if (fd_ >= 0) handles_->Release(id_);
  }
  FdLease(const FdLease&) = delete;
  FdLease& operator=(const FdLease&) = delete;
  // The descriptor, or -errno when it could not be reopened.
  int fd() const { return fd_; }

 private:
  FileHandles* handles_;
  uint32_t id_;
  int fd_;
};

}  // namespace strata

#endif  // STRATA_FILE_HANDLES_H_
