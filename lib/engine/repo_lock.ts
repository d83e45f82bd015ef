/**
 * One writer per repository directory. A writer holds `strata.lock`, created exclusively and
 * naming its process (pid, the process start time from /proc so a reused pid is not mistaken for
 * the owner, and a random token) and the directory (device and inode, so a copy of a live
 * repository is not locked by the original's writer). A lock whose owner is gone (killed with
 * SIGKILL, say) or that was copied from elsewhere is stale and is taken over; PostgreSQL's
 * postmaster.pid works the same way. Read-only opens take no lock.
 *
 * Takeover is made safe against two processes taking over the same stale lock at once: the stale
 * file is renamed away (only one rename can win), and a taker that finds it renamed a live lock
 * instead puts it back and reports REPOSITORY_LOCKED.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StrataError } from '../errors';
import { parseJsonObject } from '../json_object';
import { fsyncDir, processStartTicks } from '../fs_util';

export const LOCK_FILE = 'strata.lock';
/** Attempts before giving up when other processes keep racing for a stale lock. */
const MAX_LOCK_ATTEMPTS = 5;

interface LockOwner {
  pid: number;
  /** Start time of the process in clock ticks since boot (/proc/<pid>/stat field 22), or null. */
  startTicks: number | null;
  token: string;
  /** `dev:ino` of the repository directory the lock was taken in. */
  dir: string;
}

export class RepositoryLock {
  private constructor(private readonly file: string, private readonly token: string) {}

  /** Take the writer lock of `dir`, or fail with REPOSITORY_LOCKED naming the live owner. */
  static acquire(dir: string): RepositoryLock {
    const file = path.join(dir, LOCK_FILE);
    const here = directoryId(dir);
    const me: LockOwner = { pid: process.pid, startTicks: processStartTicks(process.pid), token: crypto.randomBytes(12).toString('hex'), dir: here };
    for (let attempt = 0; attempt < MAX_LOCK_ATTEMPTS; attempt++) {
      if (tryCreate(file, me)) {
        fsyncDir(dir);
        return new RepositoryLock(file, me.token);
      }
      const owner = readOwner(file);
      if (owner !== null && holds(owner, here)) throw lockedError(dir, owner);
      if (owner !== null || fs.existsSync(file)) takeOverStale(dir, file, owner, here);
    }
    throw new StrataError('REPOSITORY_LOCKED', `${dir}: could not take ${LOCK_FILE}: other processes keep taking it over`);
  }

  /** Remove the lock file if it is still ours. */
  release(): void {
    const owner = readOwner(this.file);
    if (owner !== null && owner.token === this.token) fs.rmSync(this.file, { force: true });
  }
}

function tryCreate(file: string, me: LockOwner): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx', 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new StrataError('IO_ERROR', `${file}: cannot create the lock file: ${(e as Error).message}`, { cause: e });
  }
  try {
    fs.writeSync(fd, JSON.stringify(me) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

/** The owner a lock file names, or null when it is unreadable or half-written (a crash while creating it). */
function readOwner(file: string): LockOwner | null {
  try {
    const o = parseJsonObject(fs.readFileSync(file, 'utf8')) as Partial<LockOwner>;
    if (typeof o.pid !== 'number' || typeof o.token !== 'string') return null;
    return { pid: o.pid, startTicks: typeof o.startTicks === 'number' ? o.startTicks : null, token: o.token, dir: typeof o.dir === 'string' ? o.dir : '' };
  } catch {
    return null;
  }
}

/** The lock is held: taken in this very directory by a process that still runs. */
function holds(owner: LockOwner, here: string): boolean {
  return owner.dir === here && isAlive(owner);
}

function isAlive(owner: LockOwner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (e) {
    // EPERM: the process exists but belongs to someone else; it still holds the lock.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const ticks = processStartTicks(owner.pid);
  return owner.startTicks === null || ticks === null || ticks === owner.startTicks;
}

/** Move a stale lock aside; if what was moved turns out to be a live lock, put it back. */
function takeOverStale(dir: string, file: string, stale: LockOwner | null, here: string): void {
  const aside = `${file}.stale-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    fs.renameSync(file, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // someone else moved it: retry
    throw new StrataError('IO_ERROR', `${file}: cannot remove a stale lock: ${(e as Error).message}`, { cause: e });
  }
  const moved = readOwner(aside);
  if (moved !== null && (stale === null || moved.token !== stale.token) && holds(moved, here)) {
    try {
      fs.linkSync(aside, file);
    } finally {
      fs.rmSync(aside, { force: true });
    }
    throw lockedError(dir, moved);
  }
  fs.rmSync(aside, { force: true });
}

function lockedError(dir: string, owner: LockOwner): StrataError {
  return new StrataError('REPOSITORY_LOCKED', `${dir} is open for writing by process ${owner.pid} (${LOCK_FILE}); ` +
    'close it there first, or open with { readOnly: true } to inspect it');
}

function directoryId(dir: string): string {
  const st = fs.statSync(dir, { bigint: true });
  return `${st.dev}:${st.ino}`;
}

