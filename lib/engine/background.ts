/**
 * The opt-in background scheduler: per timeline it flushes open layers that have waited
 * checkpointTimeoutMs, compacts (L0 first, the timelines with the most L0 layers first, which also
 * creates images), and runs GC every gcPeriodMs. At most `concurrency` timelines are worked on at
 * once; stop() waits for the jobs in flight. Failures are counted and kept, never thrown into the
 * event loop; a timeline whose job failed is skipped for a while (Neon's circuit breaker).
 */
import type { TimelineImpl } from './timeline';

export interface BackgroundOptions {
  /** How often the scheduler looks for work (Neon's compaction_period is 20 s). */
  periodMs: number;
  /** How often each timeline is garbage-collected (Neon's gc_period is 1 h). */
  gcPeriodMs: number;
  /** Flush an open layer whose first record is this old (Neon's checkpoint_timeout is 10 min). */
  checkpointTimeoutMs: number;
  /** Timelines worked on at once. */
  concurrency: number;
}

export interface BackgroundStats {
  running: boolean;
  ticks: number;
  flushes: number;
  compactions: number;
  gcRuns: number;
  failures: number;
  lastError: string | null;
}

/** After a failed job a timeline is left alone for this many periods. */
const BACKOFF_PERIODS = 10;

export class BackgroundScheduler {
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private readonly lastGc = new Map<TimelineImpl, number>();
  private readonly backoffUntil = new Map<TimelineImpl, number>();
  private readonly st: BackgroundStats = { running: false, ticks: 0, flushes: 0, compactions: 0, gcRuns: 0, failures: 0, lastError: null };

  constructor(private readonly timelines: () => TimelineImpl[], private readonly opts: BackgroundOptions) {}

  start(): void {
    if (this.st.running) return;
    this.st.running = true;
    this.schedule();
  }

  /** Stop scheduling and wait for the jobs in flight. */
  async stop(): Promise<void> {
    this.st.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.inFlight;
  }

  stats(): BackgroundStats {
    return { ...this.st };
  }

  /** Run one round now (tests and `strata compact` use it); resolves when the round is done. */
  async runOnce(): Promise<void> {
    await this.inFlight;
    this.inFlight = this.tick();
    await this.inFlight;
  }

  private schedule(): void {
    if (!this.st.running) return;
    this.timer = setTimeout(() => {
      this.inFlight = this.tick().finally(() => this.schedule());
    }, this.opts.periodMs);
    this.timer.unref(); // background work never keeps the process alive on its own
  }

  private async tick(): Promise<void> {
    this.st.ticks++;
    const now = Date.now();
    // L0 compaction first: the timelines with the deepest L0 stacks are the ones reads suffer on.
    const queue = this.timelines()
      .filter((t) => (this.backoffUntil.get(t) ?? 0) <= now)
      .sort((a, b) => b.stats().l0Count - a.stats().l0Count);
    const workers = Array.from({ length: Math.max(1, this.opts.concurrency) }, async () => {
      for (let t = queue.shift(); t !== undefined; t = queue.shift()) await this.work(t, now);
    });
    await Promise.all(workers);
  }

  private async work(t: TimelineImpl, now: number): Promise<void> {
    try {
      const since = t.openLayerSince;
      if (since !== null && now - since >= this.opts.checkpointTimeoutMs) {
        await t.flush();
        this.st.flushes++;
      }
      const report = await t.compact();
      if (report.l0Compacted.length > 0 || report.imageLayersCreated.length > 0) this.st.compactions++;
      if (now - (this.lastGc.get(t) ?? 0) >= this.opts.gcPeriodMs) {
        this.lastGc.set(t, now);
        await t.gc();
        this.st.gcRuns++;
      }
    } catch (e) {
      if ((e as { code?: string }).code === 'CLOSED') return;
      this.st.failures++;
      this.st.lastError = `${t.tenantId}/${t.timelineId}: ${(e as Error).message}`;
      this.backoffUntil.set(t, now + BACKOFF_PERIODS * this.opts.periodMs);
    }
  }
}
