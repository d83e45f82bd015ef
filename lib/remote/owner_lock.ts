/**
 * A cross-process lock file naming its owner, for the local object store's per-key writes
 * (local_fs_storage.ts). The file is made complete beside the lock and then hard-linked into place
 * (link(2) fails when the name exists), so nobody ever reads a half-written lock. An owner is its
 * pid plus the process start time from /proc (a reused pid is not the owner) and a random token.
 * A lock whose owner is gone (SIGKILL while holding it) is stale: it is renamed aside — only one of
 * several racing takers can win that rename — and one that finds it moved a live lock puts it
 * back. The same takeover as the repository's writer lock (engine/repo_lock.ts), which is
 * synchronous and single-shot where this one waits.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { processStartTicks } from '../fs_util';
import { parseJsonObject } from '../json_object';

export interface LockOwner {
  pid: number;
  /** Start time of the process in clock ticks since boot (/proc/<pid>/stat field 22), or null. */
  startTicks: number | null;
  token: string;
}

/** This process, as lock files and temp-file names record it (start ticks tell a reused pid apart). */
export const SELF: Omit<LockOwner, 'token'> = { pid: process.pid, startTicks: processStartTicks(process.pid) };


/** Whether the process `pid` (started at `startTicks` when known) still runs. */
export function processAlive(pid: number, startTicks: number | null): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const ticks = processStartTicks(pid);
  return startTicks === null || ticks === null || ticks === startTicks;
}

function readOwner(file: string): LockOwner | null {
  try {
    const o = parseJsonObject(fs.readFileSync(file, 'utf8')) as Partial<LockOwner>;
    if (typeof o.pid !== 'number' || typeof o.token !== 'string') return null;
    return { pid: o.pid, startTicks: typeof o.startTicks === 'number' ? o.startTicks : null, token: o.token };
  } catch {
    return null;
  }
}

export type TryLockResult = { held: true; release: () => void } | { held: false; owner: LockOwner | null };

/**
 * One attempt at `file`: held, or not with the live owner (null when it vanished meanwhile).
 * A stale lock found on the way is moved aside, and the attempt reports not held so the caller
 * simply tries again.
 */
export function tryLock(file: string): TryLockResult {
  const me: LockOwner = { ...SELF, token: crypto.randomBytes(12).toString('hex') };
  const candidate = `${file}.${me.pid}-${me.startTicks ?? 'x'}-${me.token}.tmp`;
  fs.writeFileSync(candidate, `${JSON.stringify(me)}\n`, { mode: 0o644 });
  try {
    fs.linkSync(candidate, file);
    return {
      held: true,
      release: () => {
        const o = readOwner(file);
        if (o !== null && o.token === me.token) fs.rmSync(file, { force: true });
      },
    };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    fs.rmSync(candidate, { force: true });
  }
  const owner = readOwner(file);
  if (owner !== null && processAlive(owner.pid, owner.startTicks)) return { held: false, owner };
  if (owner !== null || fs.existsSync(file)) takeOverStale(file, owner);
  return { held: false, owner: null };
}

/** Move a stale lock aside; if what was moved turns out to be a live lock, put it back. */
function takeOverStale(file: string, stale: LockOwner | null): void {
  const aside = `${file}.stale-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    fs.renameSync(file, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // someone else moved it
    throw e;
  }
  const moved = readOwner(aside);
  try {
    if (moved !== null && (stale === null || moved.token !== stale.token) && processAlive(moved.pid, moved.startTicks)) {
      try {
        fs.linkSync(aside, file);
      } catch (e) {
        // EEXIST: a third process took the lock meanwhile; the one we moved lost it (see the header).
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
  } finally {
    fs.rmSync(aside, { force: true });
  }
}
