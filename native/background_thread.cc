#include "background_thread.h"

#include <exception>
#include <memory>
#include <system_error>
#include <thread>

#ifndef _WIN32
#include <pthread.h>
#else
#include <condition_variable>
#include <mutex>
#endif

#ifdef __linux__
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace strata {
namespace {

#ifndef _WIN32
// pthread's mutex and condition variable rather than std::'s, and prctl rather than
// pthread_setname_np: the prebuilt addon must load on glibc 2.33 / libstdc++ 3.4.29
// (scripts/build-prebuild.js checks), and this toolchain's std::condition_variable::wait and
// pthread_setname_np carry newer symbol versions.
class Lock {
 public:
  explicit Lock(pthread_mutex_t* mu) : mu_(mu) { pthread_mutex_lock(mu_); }
  ~Lock() { pthread_mutex_unlock(mu_); }
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

 private:
  pthread_mutex_t* mu_;
};

// The process's background lane: a counting semaphore that remembers its busiest moment.
class Lane {
 public:
  void Enter() {
    Lock lock(&mu_);
    while (busy_ >= slots_) pthread_cond_wait(&freed_, &mu_);
    busy_++;
    if (busy_ > most_busy_) most_busy_ = busy_;
  }

  bool Leave() {
    Lock lock(&mu_);
    if (busy_ == 0) return false;
    busy_--;
    pthread_cond_signal(&freed_);
    return true;
  }

  int SetSlots(int slots) {
    Lock lock(&mu_);
    const int previous = slots_;
    slots_ = slots;
    most_busy_ = busy_;
    pthread_cond_broadcast(&freed_);
    return previous;
  }

  BackgroundLaneStats Stats() {
    Lock lock(&mu_);
    return BackgroundLaneStats{slots_, busy_, most_busy_};
  }

 private:
  pthread_mutex_t mu_ = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t freed_ = PTHREAD_COND_INITIALIZER;
  int slots_ = 1;
  int busy_ = 0;
  int most_busy_ = 0;
};
#else
class Lane {
 public:
  void Enter() {
    std::unique_lock<std::mutex> lock(mu_);
    freed_.wait(lock, [this] { return busy_ < slots_; });
    busy_++;
    if (busy_ > most_busy_) most_busy_ = busy_;
  }

  bool Leave() {
    std::lock_guard<std::mutex> lock(mu_);
    if (busy_ == 0) return false;
    busy_--;
    freed_.notify_one();
    return true;
  }

  int SetSlots(int slots) {
    std::lock_guard<std::mutex> lock(mu_);
    const int previous = slots_;
    slots_ = slots;
    most_busy_ = busy_;
    freed_.notify_all();
    return previous;
  }

  BackgroundLaneStats Stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return BackgroundLaneStats{slots_, busy_, most_busy_};
  }

 private:
  std::mutex mu_;
  std::condition_variable freed_;
  int slots_ = 1;
  int busy_ = 0;
  int most_busy_ = 0;
};
#endif

// Never destroyed: pool threads and the compression worker may still use it while the process exits.
Lane& TheLane() {
  static Lane* lane = new Lane();
  return *lane;
}

// Holds one slot of the lane for its lifetime.
class LaneSlot {
 public:
  LaneSlot() { TheLane().Enter(); }
  ~LaneSlot() { TheLane().Leave(); }
  LaneSlot(const LaneSlot&) = delete;
  LaneSlot& operator=(const LaneSlot&) = delete;
};

#ifdef __linux__

// One caller thread's companion: takes one piece of work at a time (its caller waits for it).
class Companion {
 public:
  Companion() : thread_([this] { Loop(); }) {}

  ~Companion() {
    {
      Lock lock(&mu_);
      stopping_ = true;
      pthread_cond_broadcast(&wake_);
    }
    thread_.join();
    pthread_cond_destroy(&finished_);
    pthread_cond_destroy(&wake_);
    pthread_mutex_destroy(&mu_);
  }

  Companion(const Companion&) = delete;
  Companion& operator=(const Companion&) = delete;

  void Run(const std::function<void()>& work) {
    std::exception_ptr failure;
    {
      Lock lock(&mu_);
      work_ = &work;
      failure_ = nullptr;
      done_ = false;
      pthread_cond_broadcast(&wake_);
      while (!done_) pthread_cond_wait(&finished_, &mu_);
      failure = failure_;
    }
    if (failure) std::rethrow_exception(failure);
  }

 private:
  void Loop() {
    prctl(PR_SET_NAME, kBackgroundThreadName, 0, 0, 0);
    // Best effort: at the caller's priority the work computes the same bytes.
    setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), kBackgroundNice);
    for (;;) {
      const std::function<void()>* work = nullptr;
      {
        Lock lock(&mu_);
        while (!stopping_ && work_ == nullptr) pthread_cond_wait(&wake_, &mu_);
        if (work_ == nullptr) return;  // stopping with nothing to do
        work = work_;
      }
      std::exception_ptr failure;
      try {
        (*work)();
      } catch (...) {
        failure = std::current_exception();
      }
      Lock lock(&mu_);
      work_ = nullptr;
      failure_ = failure;
      done_ = true;
      pthread_cond_broadcast(&finished_);
    }
  }

  pthread_mutex_t mu_ = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t wake_ = PTHREAD_COND_INITIALIZER;
  pthread_cond_t finished_ = PTHREAD_COND_INITIALIZER;
  const std::function<void()>* work_ = nullptr;
  std::exception_ptr failure_;
  bool done_ = false;
  bool stopping_ = false;
  std::thread thread_;  // last: started once the fields it reads exist
};

// The calling thread's companion, started on first use; null once starting one has failed.
Companion* ThisThreadsCompanion() {
  thread_local bool tried = false;
  thread_local std::unique_ptr<Companion> companion;
  if (!tried) {
    tried = true;
    try {
      companion = std::make_unique<Companion>();
    } catch (const std::system_error&) {
      // no thread to be had: the work runs on the caller, at its priority
    }
  }
  return companion.get();
}
#endif

}  // namespace

void RunAtBackgroundPriority(const std::function<void()>& work) {
  LaneSlot slot;
#ifdef __linux__
  if (Companion* companion = ThisThreadsCompanion()) {
    companion->Run(work);
    return;
  }
#endif
  work();
}

int SetBackgroundThreads(int slots) { return TheLane().SetSlots(slots); }

BackgroundLaneStats GetBackgroundLaneStats() { return TheLane().Stats(); }

void EnterBackgroundLane() { TheLane().Enter(); }

bool LeaveBackgroundLane() { return TheLane().Leave(); }

}  // namespace strata
