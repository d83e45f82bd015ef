#include "fault_injection.h"

#include <mutex>

namespace strata {
namespace fault {

std::atomic<bool> g_active{false};

namespace {

// Layer writers and reads may run on libuv workers (finishAsync, getPagesAsync); a mutex keeps the
// counters exact for a test that arms them, and costs nothing when inactive (never taken).
std::mutex g_mu;
uint64_t g_calls[kOpCount] = {};
int g_armed_op = -1;
uint64_t g_armed_n = 0;
int g_armed_err = 0;
bool g_armed_short = false;

}  // namespace

int Check(Op op, size_t len, size_t* short_bytes) {
  std::lock_guard<std::mutex> lock(g_mu);
  const int i = static_cast<int>(op);
  const uint64_t n = ++g_calls[i];
  if (g_armed_op != i || g_armed_n != n) return 0;
  if (g_armed_short) *short_bytes = len / 2;
  return g_armed_err;
}

void Set(int op_index, uint64_t n, int err, bool short_write) {
  std::lock_guard<std::mutex> lock(g_mu);
  for (uint64_t& c : g_calls) c = 0;
  g_armed_op = op_index;
  g_armed_n = n;
  g_armed_err = err;
  g_armed_short = short_write;
  g_active.store(true, std::memory_order_relaxed);
}

void Clear() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_active.store(false, std::memory_order_relaxed);
  g_armed_op = -1;
}

uint64_t Calls(Op op) {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_calls[static_cast<int>(op)];
}

}  // namespace fault
}  // namespace strata
