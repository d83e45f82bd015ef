#include "background_thread.h"

#include <exception>
#include <memory>
#include <system_error>
#include <thread>

#ifdef __linux__
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace strata {
namespace {

#ifdef __linux__
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
#ifdef __linux__
  if (Companion* companion = ThisThreadsCompanion()) {
    companion->Run(work);
    return;
  }
#endif
  work();
}

}  // namespace strata
