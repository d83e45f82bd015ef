/**
 * Test-only I/O fault injection (docs/RELIABILITY.md): make the N-th call of one kind of file
 * operation fail with EIO or ENOSPC, or write short, so tests can prove every such failure ends in
 * a coded error and an intact repository.
 *
 * Off by default. Every call site guards with `faults.active`, one property read, so the cost when
 * off is nil; nothing outside tests arms it. The operations are counted per kind:
 *   write, fsync        the engine's small files (manifest, repository marker) via fs_util
 *   dirsync, rename, unlink   directory fsyncs, renames into place, layer file removals
 *   read                the TS block reader (TS core reads, and compaction's merge in either core)
 *   native_read         the native core's block reads (native/block_io.cc), in C++, armed through the bridge
 *   layer_write, layer_fsync   the core's layer writer; counted here for the TS core and in C++
 *                       (native/fault_injection.cc) for the native core, armed through the bridge
 * A "short" fault writes half of the requested bytes and then fails with ENOSPC, as a filling disk does.
 */

export const FAULT_OPS = ['write', 'fsync', 'dirsync', 'rename', 'unlink', 'read', 'native_read', 'layer_write', 'layer_fsync'] as const;
export type FaultOp = typeof FAULT_OPS[number];
export type FaultKind = 'EIO' | 'ENOSPC' | 'short';

/** The native core's twin of this module, registered by lib/core/native.ts when the addon loads. */
export interface NativeFaultBridge {
  /** Count layer_write / layer_fsync / native_read calls; fail call `n` (1-based) of `op` when op is given. */
  set(op: FaultOp | null, n: number, errno: number, shortWrite: boolean): void;
  clear(): void;
  counts(): Partial<Record<FaultOp, number>>;
}

interface Armed {
  op: FaultOp;
  n: number;
  kind: FaultKind;
}

/** `active` is the guard every call site reads; true while counting or armed. */
export const faults = { active: false };

const ERRNO = { EIO: 5, ENOSPC: 28 } as const;
const MESSAGES = { EIO: 'i/o error', ENOSPC: 'no space left on device' } as const;
const NATIVE_OPS: ReadonlySet<FaultOp> = new Set(['layer_write', 'layer_fsync', 'native_read']);

let armed: Armed | null = null;
const calls = new Map<FaultOp, number>();
let bridge: NativeFaultBridge | null = null;

export function registerNativeFaultBridge(b: NativeFaultBridge): void {
  bridge = b;
}

/** Start counting calls (from zero) without failing any: the counting run of a sweep. */
export function countFaults(): void {
  calls.clear();
  armed = null;
  faults.active = true;
  bridge?.set(null, 0, 0, false);
}

/** Count from zero and fail the n-th (1-based) call of `op`; later calls of it succeed again. */
export function armFault(op: FaultOp, n: number, kind: FaultKind): void {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`fault call number must be a positive integer: ${n}`);
  countFaults();
  armed = { op, n, kind };
  if (NATIVE_OPS.has(op)) bridge?.set(op, n, kind === 'EIO' ? ERRNO.EIO : ERRNO.ENOSPC, kind === 'short');
}

/** Stop counting and failing. */
export function clearFaults(): void {
  faults.active = false;
  armed = null;
  bridge?.clear();
}

/** Calls of each kind since countFaults/armFault (the native core's layer calls included). */
export function faultCounts(): Record<FaultOp, number> {
  const native = bridge?.counts() ?? {};
  const out = {} as Record<FaultOp, number>;
  for (const op of FAULT_OPS) out[op] = (calls.get(op) ?? 0) + (native[op] ?? 0);
  return out;
}

export interface InjectedFault {
  /** For a short write: how many bytes to write before failing; null to fail without writing. */
  shortBytes: number | null;
  error: NodeJS.ErrnoException;
}

/**
 * Count one call of `op` and return the fault to inject, or null. Callers test `faults.active`
 * first. `len` is the byte count of a write (a short fault writes half of it).
 */
export function faultAt(op: FaultOp, syscall: string, len = 0): InjectedFault | null {
  const n = (calls.get(op) ?? 0) + 1;
  calls.set(op, n);
  if (armed === null || armed.op !== op || armed.n !== n) return null;
  const code = armed.kind === 'EIO' ? 'EIO' : 'ENOSPC';
  // Shaped like Node's own errors (message without the path), so the wrappers must name the path.
  const error = Object.assign(new Error(`${code}: ${MESSAGES[code]}, ${syscall}`), { code, errno: -ERRNO[code], syscall }) as NodeJS.ErrnoException;
  return { shortBytes: armed.kind === 'short' ? Math.floor(len / 2) : null, error };
}

/** Throw the injected fault for a non-write call, if any. */
export function injectFault(op: FaultOp, syscall: string): void {
  const f = faultAt(op, syscall);
  if (f !== null) throw f.error;
}
