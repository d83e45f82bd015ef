/**
 * Issue 15, item 7's fault tests, on both backends (a local directory; S3 against the real radosgw
 * of test/helpers/s3_server.ts, skipped with the reason when it cannot run here):
 *
 * - **SIGKILL during upload and during deletion.** A child (fixtures/remote_crash_child.js) runs the
 *   crash workload — ingest, flush, compact, GC — with remote storage, and is killed at a seeded
 *   step of its upload queue (before or after a layer put, an index put or a deletion; frozen there,
 *   or a random moment after it, often inside the call). After each kill: every index in storage
 *   names only layers that exist there with the size it says (an index is never ahead of its
 *   layers); the reopened repository (same remote) has every page an oracle says at its durable
 *   LSN; its upload queue resumes, `remoteConsistentLsn` reaches `diskConsistentLsn`, and the
 *   leftovers — layers uploaded that no index names, deletions queued when the kill came — are
 *   deleted. At the end a second directory attaches the tenant and reads every page back.
 *   `STRATA_REMOTE_KILLS` kills per backend (3 in npm test; `npm run test:remote:crash` runs 25).
 * - **S3 stopped mid-run**: radosgw killed (connections refused) or frozen with SIGSTOP (requests
 *   hang until the client's timeout) while two timelines ingest and flush: ingest, flushes and
 *   reads of local layers go on, uploads back off, the remote's circuit breaker opens (stats and
 *   metrics); radosgw back: the queues drain, `remoteConsistentLsn` catches up; 0 pages lost.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isStrataError, type PageKey, Repository, type Timeline, type WalRecord } from '../../lib';
import { CircuitBreaker } from '../../lib/engine/circuit_breaker';
import { decodeIndex, INDEX_NAME, layerKey, splitGeneration, tenantPrefix, timelinePrefix } from '../../lib/engine/remote_layout';
import { openRemoteStorage } from '../../lib/remote/open_remote_storage';
import type { RemoteStorage } from '../../lib/remote/remote_storage';
import { Oracle } from '../helpers/oracle';
import { Rng } from '../helpers/random';
import { type RemoteLocation, useRemoteTestEnv } from '../helpers/remote';
import { type KeySpace, randomBatch, randomPage } from '../helpers/workload';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const workload = require('../fixtures/crash_workload.js') as {
  recordAt(i: number): WalRecord;
  recordsUpTo(lsn: bigint): number;
  PAGES: number;
  GC_HORIZON: bigint;
};

const env = useRemoteTestEnv('rfault');
const KILLS_PER_BACKEND = Number(process.env.STRATA_REMOTE_KILLS ?? 3);
const CHILD = path.join(__dirname, '..', 'fixtures', 'remote_crash_child.js');
const TENANT = 't1';
/** The kill points: each step of the upload queue, before and after its storage call. */
const STEPS = ['layer-put', 'layer-put-done', 'index-put', 'index-put-done', 'delete', 'delete-done'] as const;
/** A child that never reaches its step is killed anyway after this (the kill then lands at random). */
const STEP_WAIT_MS = 60_000;
/** Waiting for a queue to drain after a restart or an outage. */
const DRAIN_TIMEOUT_MS = 60_000;

interface KillPlan {
  step: (typeof STEPS)[number];
  count: number;
  how: 'freeze' | 'race';
}

interface KillResult {
  durable: bigint;
  /** Whether the child reached its step (else the fallback kill landed at random). */
  atStep: boolean;
}

function runAndKill(dir: string, loc: RemoteLocation, plan: KillPlan, rng: Rng): Promise<KillResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, plan.step, String(plan.count), plan.how], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, STRATA_TEST_REMOTE: JSON.stringify(loc) },
    });
    let durable = 0n;
    let atStep = false;
    let stderr = '';
    let out = '';
    const fallback = setTimeout(() => child.kill('SIGKILL'), STEP_WAIT_MS);
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const lines = out.split('\n');
      out = lines.pop() ?? '';
      for (const line of lines) {
        const m = /^durable (\d+)$/.exec(line);
        if (m) durable = BigInt(m[1]);
        if (line === `at ${plan.step}` && !atStep) {
          atStep = true;
          clearTimeout(fallback);
          if (plan.how === 'freeze') child.kill('SIGKILL');
          else setTimeout(() => child.kill('SIGKILL'), rng.int(0, 8));
        }
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(fallback);
      if (signal === 'SIGKILL') resolve({ durable, atStep });
      else reject(new Error(`child exited ${code}: ${stderr}`));
    });
  });
}

function pageKey(b: number): PageKey {
  return { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: b };
}

/** What the deterministic workload wrote to block `b` as of `lsn`, or null before its first image. */
function expectedPage(b: number, lsn: bigint): Buffer | null {
  const page = Buffer.alloc(8192);
  let seen = false;
  for (let i = b; i < workload.recordsUpTo(lsn); i += workload.PAGES) {
    const r = workload.recordAt(i);
    seen = true;
    if (r.kind === 'image') page.set(r.page);
    else if (r.kind === 'patch') page.set(r.data, r.offset);
  }
  return seen ? page : null;
}

/** Every page at the given LSNs against the workload; returns the pages compared. */
async function checkPages(tl: Timeline, lsns: readonly bigint[]): Promise<number> {
  let pages = 0;
  for (const lsn of lsns) {
    for (let b = 0; b < workload.PAGES; b++) {
      const want = expectedPage(b, lsn);
      if (want === null) {
        await expect(tl.getPage(pageKey(b), lsn)).rejects.toMatchObject({ code: 'PAGE_NOT_FOUND' });
        continue;
      }
      const got = await tl.getPage(pageKey(b), lsn);
      if (!got.equals(want)) throw new Error(`block ${b} at ${lsn} differs from what the workload wrote`);
      pages++;
    }
  }
  return pages;
}

interface ListingCheck {
  indexes: number;
  /** Layer objects of `generation` that its index does not name. */
  unreferenced: string[];
}

/**
 * The index is never ahead of its layers: every layer any index names exists in storage with the
 * size the index gives.
 */
async function checkListing(st: RemoteStorage, timelineId: string, generation: number): Promise<ListingCheck> {
  const prefix = timelinePrefix(TENANT, timelineId);
  const objects = await st.list(prefix);
  const sizes = new Map(objects.map((o) => [o.key, o.size]));
  const named = new Set<string>();
  let indexes = 0;
  for (const o of objects) {
    if (splitGeneration(o.key.slice(prefix.length))?.name !== INDEX_NAME) continue;
    indexes++;
    const idx = decodeIndex(o.key, await st.get(o.key));
    for (const l of idx.manifest.layers) {
      const lk = layerKey(TENANT, timelineId, l.fileName, idx.layerGenerations.get(l.fileName) as number);
      named.add(lk);
      expect(sizes.get(lk), `${o.key} names ${lk}`).toBe(l.sizeBytes);
    }
  }
  const unreferenced = objects.map((o) => o.key).filter((k) => {
    const p = splitGeneration(k.slice(prefix.length));
    return p !== null && p.name !== INDEX_NAME && p.generation === generation && !named.has(k);
  });
  return { indexes, unreferenced };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = DRAIN_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** syncRemote until it resolves: right after an outage a probe may still fail once or twice. */
async function syncEventually(tl: Timeline): Promise<void> {
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  for (;;) {
    try {
      await tl.syncRemote();
      return;
    } catch (e) {
      if (!isStrataError(e, 'REMOTE_ERROR') || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe.each(env.backends.map((b) => [b.title, b] as const))('remote faults: %s', (_title, b) => {
  const test = it.skipIf(!b.available);

  test(`SIGKILL during upload and deletion, ${KILLS_PER_BACKEND} times: index never ahead of its layers, nothing lost, queue resumes, leftovers collected`, async () => {
    const loc = env.freshLocation(b.kind);
    const dir = env.tmpDir('kill');
    const rng = new Rng(b.kind === 's3' ? 1501 : 1502);
    const st = await openRemoteStorage(loc.config, loc.options);
    let lastDurable = 0n;
    let pages = 0;
    let atSteps = 0;
    let leftoversCollected = 0;
    const plans: string[] = [];
    try {
      for (let k = 0; k < KILLS_PER_BACKEND; k++) {
        // Every step in turn (a seeded count and manner), so even 3 kills cover puts and deletes.
        const plan: KillPlan = { step: STEPS[(k * 2 + rng.int(0, 2)) % STEPS.length], count: rng.int(1, 6), how: rng.pick(['freeze', 'race'] as const) };
        const r = await runAndKill(dir, loc, plan, rng);
        plans.push(`${plan.step}#${plan.count}/${plan.how}${r.atStep ? '' : ' (not reached)'}`);
        if (r.atStep) atSteps++;
        if (r.durable > lastDurable) lastDurable = r.durable;

        // What the kill left: no index ahead of its layers.
        const left = await checkListing(st, 'main', 1);
        expect(left.indexes).toBeLessThanOrEqual(1);

        const repo = await Repository.open(dir, { remote: loc.config, remoteStorageOptions: loc.options, remoteRetry: { baseMs: 20, maxMs: 500 } });
        try {
          const tl = repo.getTimeline(TENANT, 'main');
          expect(tl.diskConsistentLsn).toBeGreaterThanOrEqual(lastDurable);
          const lsn = tl.diskConsistentLsn;
          pages += await checkPages(tl, [lsn, (tl.gcCutoffLsn + lsn) / 2n, tl.gcCutoffLsn]);
          // The queue resumes: the index catches up with what is durable locally...
          await tl.syncRemote();
          expect(tl.remoteConsistentLsn).toBe(lsn);
          // ...and the leftovers go: layers uploaded before the kill that no index names, deletions queued.
          await until('the deletion queue to drain', () => tl.stats().remote!.deletionsQueued === 0);
          const after = await checkListing(st, 'main', 1);
          expect(after.indexes).toBe(1);
          expect(after.unreferenced).toEqual([]);
          leftoversCollected += left.unreferenced.length;
          expect(tl.stats().remote!.failures).toBe(0);
        } finally {
          await repo.close();
        }
      }
      expect(lastDurable).toBeGreaterThan(0n);
      // Every kill landed at its step (the fallback kill after STEP_WAIT_MS would mean the queue stalled).
      expect(atSteps).toBe(KILLS_PER_BACKEND);

      // The remote copy alone: a second directory attaches and reads every page back.
      const other = await Repository.open(env.tmpDir('kill-attach'), { remote: loc.config, remoteStorageOptions: loc.options });
      try {
        expect((await other.attachTenant(TENANT)).generation).toBe(2);
        const tl = other.getTimeline(TENANT, 'main');
        pages += await checkPages(tl, [tl.lastRecordLsn, tl.gcCutoffLsn]);
      } finally {
        await other.close();
      }
      console.log(`remote kills (${b.kind}): ${KILLS_PER_BACKEND} kills [${plans.join(', ')}], ${pages} pages checked, 0 lost; ${leftoversCollected} leftover objects collected`);
    } finally {
      await st.close();
    }
  }, 60_000 + KILLS_PER_BACKEND * 75_000);
});

// ---- S3 stopped mid-run --------------------------------------------------------------------------

const KEYSPACE: KeySpace = { rels: 2, blocks: 10 };
const OUTAGE_RETRY = { baseMs: 20, maxMs: 300, failSyncAfterAttempts: 3, breakerFailures: 4, breakerCooldownMs: 700 };

function allKeys(): PageKey[] {
  const keys: PageKey[] = [];
  for (let r = 0; r < KEYSPACE.rels; r++) {
    for (let blk = 0; blk < KEYSPACE.blocks; blk++) keys.push({ spcOid: 1663, dbOid: 5, relNumber: 16384 + r, forkNum: 0, blockNum: blk });
  }
  return keys;
}

/** Every page at every LSN a record of the timelines carries, against the oracle. */
async function checkAgainstOracle(repo: Repository, oracle: Oracle, lsns: ReadonlyMap<string, bigint[]>): Promise<number> {
  let pages = 0;
  for (const [id, list] of lsns) {
    const tl = repo.getTimeline(TENANT, id);
    for (const lsn of list) {
      const got = await tl.getPages(allKeys(), lsn);
      allKeys().forEach((k, i) => {
        const want = oracle.getPage(id, k, lsn);
        if (want === null || !got[i].equals(want)) throw new Error(`${id}: page ${JSON.stringify(k)} at ${lsn} differs from the oracle`);
      });
      pages += got.length;
    }
  }
  return pages;
}

describe(`remote faults: S3 stopped mid-run${env.s3.ok ? '' : ` — skipped: ${env.s3.reason}`}`, () => {
  const test = it.skipIf(!env.s3.ok);

  test.each(['killed', 'frozen'] as const)('radosgw %s while two timelines ingest: ingest and reads go on, the breaker opens; back: the queues drain, 0 pages lost', async (how) => {
    const srv = env.server();
    // Short timeouts: a frozen gateway accepts connections (the kernel does) but never answers.
    const loc = env.freshLocation('s3', { connectTimeoutMs: 1000, idleTimeoutMs: 1500 });
    const repo = await Repository.open(env.tmpDir('outage'), { remote: loc.config, remoteStorageOptions: loc.options, remoteRetry: OUTAGE_RETRY });
    const oracle = new Oracle();
    const lsns = new Map<string, bigint[]>([['main', []], ['br', []]]);
    const rng = new Rng(how === 'killed' ? 71 : 72);
    let down = false;
    let pages = 0;
    const restore = async (): Promise<void> => {
      if (how === 'killed') await srv.startGateway();
      else srv.resumeGateway();
      down = false;
    };
    try {
      const main = await repo.createTimeline({ tenantId: TENANT, timelineId: 'main' });
      oracle.createTimeline('main');
      const init: WalRecord[] = allKeys().map((key, i) => ({ lsn: BigInt(0x100 + i * 8), key, kind: 'image', page: randomPage(rng) }));
      main.ingest(init);
      oracle.ingest('main', init);
      await main.flush();
      const br = await repo.createTimeline({ tenantId: TENANT, timelineId: 'br', ancestorTimelineId: 'main' });
      oracle.createTimeline('br', 'main', br.ancestorLsn);
      const tls = [main, br];
      for (const tl of tls) await tl.syncRemote();
      const ingest = (tl: Timeline): void => {
        const records = randomBatch(rng, KEYSPACE, tl.lastRecordLsn, 20);
        tl.ingest(records);
        oracle.ingest(tl.timelineId, records);
        lsns.get(tl.timelineId)!.push(...records.map((r) => r.lsn));
      };

      if (how === 'killed') await srv.stopGateway();
      else srv.pauseGateway();
      down = true;
      // Ingest, flush, compact and read the local layers until the breaker has opened (and then some).
      let rounds = 0;
      let openSeen = false;
      await until('the circuit breaker to open', async () => {
        for (const tl of tls) {
          ingest(tl);
          await tl.flush();
        }
        if (++rounds % 4 === 0) await main.compact({ force: true });
        pages += await checkAgainstOracle(repo, oracle, new Map([...lsns].map(([id, l]) => [id, l.slice(-20)])));
        openSeen ||= main.stats().remote!.breakerState !== 'closed';
        return openSeen && rounds >= 6;
      });
      for (const tl of tls) {
        const r = tl.stats().remote!;
        expect(r.breakerOpens).toBeGreaterThanOrEqual(1);
        expect(r.queuedObjects).toBeGreaterThan(0);
        expect(tl.remoteConsistentLsn as bigint).toBeLessThan(tl.diskConsistentLsn);
      }
      expect(main.stats().remote!.failures + br.stats().remote!.failures).toBeGreaterThanOrEqual(OUTAGE_RETRY.breakerFailures);
      expect(repo.metricsText()).toMatch(/^strata_remote_breaker_opens_total\{tenant_id="t1",timeline_id="main"\} [1-9]/m);
      // While storage is down a sync is told so (by the breaker's verdict or its own failures).
      await expect(main.syncRemote()).rejects.toMatchObject({ code: 'REMOTE_ERROR' });

      await restore();
      for (const tl of tls) await syncEventually(tl);
      for (const tl of tls) {
        expect(tl.remoteConsistentLsn).toBe(tl.diskConsistentLsn);
        expect(tl.stats().remote).toMatchObject({ queuedObjects: 0, breakerState: 'closed' });
      }
      expect(repo.metricsText()).toMatch(/^strata_remote_breaker_open\{tenant_id="t1",timeline_id="main"\} 0$/m);
      const st = await openRemoteStorage(loc.config, loc.options);
      try {
        for (const id of ['main', 'br']) expect((await checkListing(st, id, 1)).indexes).toBe(1);
        expect((await st.list(tenantPrefix(TENANT))).length).toBeGreaterThan(2);
      } finally {
        await st.close();
      }
    } finally {
      if (down) await restore();
      await repo.close();
    }
    // The remote copy alone has every page at every LSN.
    const other = await Repository.open(env.tmpDir('outage-attach'), { remote: loc.config, remoteStorageOptions: loc.options });
    try {
      await other.attachTenant(TENANT);
      const checked = await checkAgainstOracle(other, oracle, lsns);
      expect(checked).toBeGreaterThan(0);
      pages += checked;
    } finally {
      await other.close();
    }
    console.log(`S3 outage (radosgw ${how}): ${pages} pages checked, 0 lost`);
  }, 180_000);
});

// ---- the breaker alone -----------------------------------------------------------------------------

describe('circuit breaker', () => {
  it('opens after N unanswered calls in a row, lets one probe through after the cooldown, closes on an answer', () => {
    let now = 1000;
    const b = new CircuitBreaker(3, 500, () => now);
    const down = new Error('ECONNREFUSED');
    expect(b.admit()).toEqual({ waitMs: 0, probe: false });
    b.failed(false, down);
    b.failed(false, down);
    b.answered(false); // an answer in between starts the count over
    b.failed(false, down);
    b.failed(false, down);
    expect(b.state).toBe('closed');
    b.failed(false, down);
    expect(b).toMatchObject({ state: 'open', opens: 1, downVerdicts: 1, lastError: down });
    expect(b.admit()).toEqual({ waitMs: 500, probe: false });
    now += 499;
    expect(b.admit().waitMs).toBe(1);
    now += 1;
    expect(b.admit()).toEqual({ waitMs: 0, probe: true });
    expect(b.state).toBe('half-open');
    // One probe at a time; the others wait for it.
    expect(b.admit().waitMs).toBeGreaterThan(0);
    b.failed(true, down);
    expect(b).toMatchObject({ state: 'open', opens: 2, downVerdicts: 2 });
    now += 500;
    expect(b.admit().probe).toBe(true);
    // A probe that failed on our side (a local file error) passes the turn on, without a verdict.
    b.abandoned(true);
    expect(b).toMatchObject({ state: 'half-open', opens: 2 });
    expect(b.admit().probe).toBe(true);
    b.answered(true);
    expect(b.state).toBe('closed');
    expect(b.admit()).toEqual({ waitMs: 0, probe: false });
  });
});
