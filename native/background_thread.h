// Background work at a lower priority. On two vCPUs the event loop's thread, woken by a timer or
// an I/O completion, waits for a CPU whenever flush, compaction and image creation hold both; the
// TS core's workers run at nice 10 for that reason (lib/core/worker_thread.ts). libuv's pool is
// the host's and an unprivileged thread can lower its priority but never raise it again, so a
// pool thread that takes background work hands it to a companion thread of its own, started once
// at the lower priority, and waits for it: the pool's concurrency and the promise's path stay as
// they were, and only the thread that computes changes.
#ifndef STRATA_BACKGROUND_THREAD_H_
#define STRATA_BACKGROUND_THREAD_H_

#include <functional>

namespace strata {

// Nice value of a companion thread (Linux), as CORE_WORKER_NICE in lib/core/worker_thread.ts.
constexpr int kBackgroundNice = 10;
// The companion threads' name (/proc/self/task/*/comm), so a test or an operator can find them.
constexpr const char* kBackgroundThreadName = "strata-bg";

// Runs `work` on the calling thread's companion and returns when it has finished, rethrowing what
// it threw. Where there is no companion (not Linux, or the thread could not start) it runs here.
void RunAtBackgroundPriority(const std::function<void()>& work);

}  // namespace strata

#endif  // STRATA_BACKGROUND_THREAD_H_
