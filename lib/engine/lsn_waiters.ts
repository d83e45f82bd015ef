/**
 * Readers waiting for ingest to reach an LSN (Neon's wait_lsn): a read above lastRecordLsn parks
 * here until ingest passes it or its timeout fires with LSN_TIMEOUT.
 */
import { StrataError } from '../errors';
import { formatLsn, type Lsn } from '../lsn';

interface Waiter {
  lsn: Lsn;
  resolve: () => void;
}

export class LsnWaiters {
  private waiters: Waiter[] = [];

  /** Resolves once `current()` reaches `lsn`; LSN_TIMEOUT after timeoutMs. `name` goes into the message. */
  wait(lsn: Lsn, current: () => Lsn, timeoutMs: number, name: string): Promise<void> {
    if (lsn <= current()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new StrataError('LSN_TIMEOUT', `${name}: LSN ${formatLsn(lsn)} not reached within ${timeoutMs} ms (lastRecordLsn ${formatLsn(current())})`));
      }, timeoutMs);
      const waiter: Waiter = { lsn, resolve: () => { clearTimeout(timer); resolve(); } };
      this.waiters.push(waiter);
    });
  }

  /** Wake every waiter at or below `reached`. */
  wake(reached: Lsn): void {
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.lsn <= reached);
    this.waiters = this.waiters.filter((w) => w.lsn > reached);
    for (const w of ready) w.resolve();
  }

  /** Release everyone (on close); each then finds the timeline closed. */
  releaseAll(): void {
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
  }
}
