// Test-only I/O fault injection for the native core's layer writer and block reads, the twin of
// lib/fault_injection.ts (docs/RELIABILITY.md). Inert unless a test arms it through the addon
// (setFaultInjection): every call site first reads one relaxed atomic flag.
#ifndef STRATA_FAULT_INJECTION_H_
#define STRATA_FAULT_INJECTION_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace strata {
namespace fault {

// The order is lib/core/native.ts's NATIVE_FAULT_OPS.
enum class Op { kLayerWrite = 0, kLayerFsync = 1, kBlockRead = 2 };
constexpr int kOpCount = 3;

extern std::atomic<bool> g_active;

inline bool Active() { return g_active.load(std::memory_order_relaxed); }

// Counts one call of `op`; returns the errno to inject (0: none). For an armed short write,
// *short_bytes is set to how many of `len` bytes to write before failing (else left alone).
int Check(Op op, size_t len, size_t* short_bytes);

// Counts calls from zero; when op_index >= 0 fails call `n` (1-based) of that op with `err`.
void Set(int op_index, uint64_t n, int err, bool short_write);
void Clear();
uint64_t Calls(Op op);

}  // namespace fault
}  // namespace strata

#endif  // STRATA_FAULT_INJECTION_H_
