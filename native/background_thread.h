// Background work at a lower priority. On two vCPUs the event loop's thread, woken by a timer or
// an I/O completion, waits for a CPU whenever flush, compaction and image creation hold both; the
// TS core's workers run at nice 10 for that reason (lib/core/worker_thread.ts). libuv's pool is
// the host's and an unprivileged thread can lower its priority but never raise it again, so a
// pool thread that takes background work hands it to a companion thread of its own, started once
// at the lower priority, and waits for it: the pool's concurrency and the promise's path stay as
// they were, and only the thread that computes changes.
//
// Nice alone did not keep the event loop's wakeups prompt (on EEVDF it sets a share of the CPU,
// not how soon a woken thread runs), so background work also computes in a lane of slots shared by
// the whole process: at most that many pieces compute at once, the companions' and the
// compression worker's chunks alike (lib/core/compress_worker.ts enters the lane through the
// addon). The JS layer sets one slot fewer than the CPUs (at least one) when it loads the addon,
// so a CPU is free when the loop wakes. A call's inputs are still taken when it is made, on the
// JS thread; only its computing waits, on the pool thread (docs/ARCHITECTURE.md, "The background
// lane").
#ifndef STRATA_BACKGROUND_THREAD_H_
#define STRATA_BACKGROUND_THREAD_H_

#include <functional>

namespace strata {

// Nice value of a companion thread (Linux), as CORE_WORKER_NICE in lib/core/worker_thread.ts.
constexpr int kBackgroundNice = 10;
// The companion threads' name (/proc/self/task/*/comm), so a test or an operator can find them.
constexpr const char* kBackgroundThreadName = "strata-bg";

// Runs `work` on the calling thread's companion, holding a slot of the background lane, and returns
// when it has finished, rethrowing what it threw. Where there is no companion (not Linux, or the
// thread could not start) it runs here, in the lane all the same.
void RunAtBackgroundPriority(const std::function<void()>& work);

// Sets the lane's slots (>= 1): raising them admits waiting work at once; lowering them takes
// effect as slots are given back. Starts most_busy over from the slots held now. Returns the
// previous count.
int SetBackgroundThreads(int slots);

// The lane's slots, the slots held now, and the most held at once since the count was last set.
struct BackgroundLaneStats {
  int slots;
  int busy;
  int most_busy;
};
BackgroundLaneStats GetBackgroundLaneStats();

// For a thread that computes background work itself (the compression worker): blocks until a slot
// is free and takes it. LeaveBackgroundLane gives it back; false, changing nothing, when no slot is
// held. Every Enter has exactly one Leave.
void EnterBackgroundLane();
bool LeaveBackgroundLane();

}  // namespace strata

#endif  // STRATA_BACKGROUND_THREAD_H_
