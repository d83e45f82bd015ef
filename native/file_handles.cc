#include "file_handles.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace strata {

FileHandles::~FileHandles() {
  for (auto& [id, e] : entries_) {
    if (e.fd >= 0) ::close(e.fd);
  }
}

void FileHandles::CloseEntry(Entry& e) {
  if (e.in_lru) {
    lru_.erase(e.lru_pos);
    e.in_lru = false;
  }
  if (e.fd >= 0) {
    ::close(e.fd);
    e.fd = -1;
    open_--;
  }
}

void FileHandles::EvictOverLimit() {
  while (open_ > max_open_ && !lru_.empty()) {
    const uint32_t victim = lru_.front();
    CloseEntry(entries_.at(victim));
  }
}

void FileHandles::Adopt(uint32_t id, const std::string& path, int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = entries_[id];
  e.path = path;
  e.fd = fd;
  open_++;
  e.lru_pos = lru_.insert(lru_.end(), id);
  e.in_lru = true;
  EvictOverLimit();
}

int OpenLayerForReading(const std::string& path) {
#ifdef O_NOATIME
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOATIME);
  if (fd >= 0 || errno != EPERM) return fd;  // EPERM: not the file's owner
#endif
  return ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
}

int FileHandles::OpenOutOfLru(Entry& e) {
  if (e.fd < 0) {
    const int fd = OpenLayerForReading(e.path);
    if (fd < 0) return -errno;
    e.fd = fd;
    open_++;
  }
  if (e.in_lru) {
    lru_.erase(e.lru_pos);
    e.in_lru = false;
  }
  return 0;
}

int FileHandles::Acquire(uint32_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = entries_.at(id);
  const int err = OpenOutOfLru(e);
  if (err != 0) return err;
  e.pins++;
  EvictOverLimit();
  return e.fd;
}

void FileHandles::Release(uint32_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  if (--e.pins > 0) return;
  if (e.forgotten) {
    CloseEntry(e);
    entries_.erase(it);
    return;
  }
  e.lru_pos = lru_.insert(lru_.end(), id);
  e.in_lru = true;
  EvictOverLimit();
}

int FileHandles::Retain(uint32_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = entries_.at(id);
  if (e.retained) return 0;
  const int err = OpenOutOfLru(e);
  if (err != 0) return err;
  e.retained = true;
  e.pins++;
  return 0;
}

void FileHandles::Forget(uint32_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  if (it->second.retained) {
    it->second.retained = false;
    it->second.pins--;
  }
  if (it->second.pins > 0) {
    it->second.forgotten = true;
    return;
  }
  CloseEntry(it->second);
  entries_.erase(it);
}

size_t FileHandles::open_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_;
}

}  // namespace strata
