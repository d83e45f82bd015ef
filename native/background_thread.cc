#include "background_thread.h"

#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#ifdef __linux__
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace strata {
namespace {

#ifdef __linux__
// One caller thread's companion: takes one piece of work at a time (its caller waits for it).
class Companion {
 public:
  Companion() : thread_([this] { Loop(); }) {}

  ~Companion() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  Companion(const Companion&) = delete;
  Companion& operator=(const Companion&) = delete;

  void Run(const std::function<void()>& work) {
    std::unique_lock<std::mutex> lock(mu_);
    work_ = &work;
    failure_ = nullptr;
    done_ = false;
    wake_.notify_all();
    finished_.wait(lock, [this] { return done_; });
    if (failure_) std::rethrow_exception(failure_);
  }

 private:
  void Loop() {
    pthread_setname_np(pthread_self(), kBackgroundThreadName);
    // Best effort: at the caller's priority the work computes the same bytes.
    setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), kBackgroundNice);
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      wake_.wait(lock, [this] { return stopping_ || work_ != nullptr; });
      if (work_ == nullptr) return;  // stopping with nothing to do
      const std::function<void()>* work = work_;
      lock.unlock();
      std::exception_ptr failure;
      try {
        (*work)();
      } catch (...) {
        failure = std::current_exception();
      }
      lock.lock();
      work_ = nullptr;
      failure_ = failure;
      done_ = true;
      finished_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable finished_;
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
