/**
 * Bad API input, as a seeded random property (docs/RELIABILITY.md): every public Repository and
 * Timeline method, called with wrong types, out-of-range numbers, empty and huge buffers, and on
 * closed repositories and timelines, either succeeds or throws (or rejects with) a StrataError
 * with one of the stable codes; never a TypeError, RangeError or crash. An ingest batch with one
 * bad record anywhere in it is rejected whole: lastRecordLsn and every page stay as they were.
 * STRATA_BAD_INPUT_CASES raises the number of random calls (default below).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { Repository, type Timeline, type WalRecord } from '../lib';
import { describeEachCore } from './helpers/cores';
import { Rng } from './helpers/random';
import { outcome as refusal } from './helpers/bad_input';

const CASES = Number(process.env.STRATA_BAD_INPUT_CASES ?? 400);
/** A long campaign (test:faults) gets more time than the default 120 s. */
const TIMEOUT_MS = Math.max(120_000, CASES * 100);
const BATCH_CASES = Number(process.env.STRATA_BAD_INPUT_CASES ?? 400) / 4;
const PAGE_SIZE = 8192;
const PAGES = 16;
const HUGE_BYTES = 4 * 1024 * 1024;

/** Values of every wrong shape; the generator also mixes in valid ones so deeper checks are reached. */
const WEIRD: readonly unknown[] = [
  undefined, null, true, 0, -1, 1.5, NaN, Infinity, -Infinity, 2 ** 32, 2 ** 53, Number.MAX_VALUE,
  -1n, 0n, 2n ** 64n, 2n ** 64n - 1n, '', 'x', 'a/../b', '\0', 'é'.repeat(300), Symbol('s'), () => 1,
  {}, [], [1, 2], { lsn: 1n }, new Date(0), Buffer.alloc(0), Buffer.alloc(PAGE_SIZE - 1), Buffer.alloc(PAGE_SIZE + 1),
  new Uint16Array(4096), new ArrayBuffer(8), Object.create(null) as unknown,
];

/** Never a valid u32 / u8 key field. */
const BAD_KEY_FIELDS: readonly unknown[] = [undefined, null, -1, 1.5, NaN, Infinity, 2 ** 32, '1', 1n, {}, [], true];

function key(blockNum: number): { spcOid: number; dbOid: number; relNumber: number; forkNum: number; blockNum: number } {
  return { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum };
}

/** Strings are valid (relative) paths: a weird directory must not create one in the working directory. */
function notAString(v: unknown): unknown {
  return typeof v === 'string' ? 42 : v;
}

function weird(rng: Rng): unknown {
  if (rng.chance(0.05)) return Buffer.alloc(HUGE_BYTES, 1);
  return rng.pick(WEIRD);
}

/** A value that is usually wrong: a weird one, or a plausible one with one field broken. */
function badKey(rng: Rng): unknown {
  if (rng.chance(0.4)) return weird(rng);
  const k: Record<string, unknown> = { ...key(rng.int(0, PAGES)) };
  const field = rng.pick(['spcOid', 'dbOid', 'relNumber', 'forkNum', 'blockNum']);
  if (rng.chance(0.2)) delete k[field];
  else k[field] = rng.pick(BAD_KEY_FIELDS);
  return k;
}

function badLsn(rng: Rng, tl: Timeline): unknown {
  return rng.chance(0.3) ? tl.lastRecordLsn + BigInt(rng.int(1, 5)) : weird(rng);
}

function validRecord(lsn: bigint, rng: Rng): WalRecord {
  const k = key(rng.int(0, PAGES));
  if (rng.chance(0.5)) return { lsn, key: k, kind: 'image', page: Buffer.alloc(PAGE_SIZE, rng.int(0, 256)) };
  return { lsn, key: k, kind: 'patch', offset: rng.int(0, PAGE_SIZE - 16), data: Buffer.alloc(16, rng.int(0, 256)) };
}

/** A record with one thing wrong with it. */
function badRecord(lsn: bigint, rng: Rng): unknown {
  const r: Record<string, unknown> = { ...validRecord(lsn, rng) };
  switch (rng.int(0, 7)) {
    case 0: return weird(rng);
    case 1: r.lsn = weird(rng); break;
    case 2: r.key = badKey(rng); break;
    case 3: r.kind = rng.pick(['', 'IMAGE', 'delete', 7, null]); break;
    case 4: r.kind = 'image'; r.page = rng.pick([Buffer.alloc(0), Buffer.alloc(PAGE_SIZE - 1), Buffer.alloc(HUGE_BYTES), 'page', null]); break;
    case 5: r.kind = 'patch'; r.offset = rng.pick([-1, PAGE_SIZE, PAGE_SIZE - 1, 1.5, NaN, '0']); r.data = Buffer.alloc(2); break;
    default: r.kind = 'patch'; r.offset = 0; r.data = rng.pick([Buffer.alloc(PAGE_SIZE + 1), 'data', null, [1, 2]]); break;
  }
  return r;
}

/** The code a call was refused with, or null (helpers/bad_input.ts outcome checks it is a listed StrataError). */
async function outcome(what: string, fn: () => unknown): Promise<string | null> {
  return (await refusal(what, fn))?.code ?? null;
}

/** Every page at lastRecordLsn, concatenated (a missing page as one marker byte); compared with equals(), which is fast. */
async function snapshot(tl: Timeline): Promise<Buffer> {
  const out: Buffer[] = [];
  for (let b = 0; b < PAGES; b++) out.push(await tl.getPage(key(b), tl.lastRecordLsn).catch(() => Buffer.of(0xee)));
  return Buffer.concat(out);
}

function describe(v: unknown): string {
  if (typeof v !== 'object' || v === null) return String(v);
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array || (typeof x === 'object' && x !== null && (x as { type?: string }).type === 'Buffer') ? '<bytes>' : x));
}

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

describeEachCore('bad API input (%s core)', (impl) => {
  async function fresh(): Promise<{ repo: Repository; tl: Timeline; dir: string }> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-badinput-${impl}-`));
    roots.push(dir);
    const repo = await Repository.open(dir, { implementation: impl, pageCacheBytes: 1024 * 1024 });
    const tl = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
    const rng = new Rng(5);
    const batch: WalRecord[] = [];
    for (let b = 0; b < PAGES; b++) batch.push({ lsn: BigInt(0x10 * (b + 1)), key: key(b), kind: 'image', page: Buffer.alloc(PAGE_SIZE, rng.int(1, 256)) });
    tl.ingest(batch);
    await tl.flush();
    return { repo, tl, dir };
  }

  it(`${CASES} random calls with wrong arguments: StrataError with a stable code, never anything else`, async () => {
    const { repo, tl, dir } = await fresh();
    const rng = new Rng(impl === 'native' ? 41 : 43);
    const calls: Array<[string, (t: Timeline, r: Repository) => unknown]> = [
      ['ingest', (t) => t.ingest(weird(rng) as WalRecord[])],
      ['getPage', (t) => t.getPage(badKey(rng) as never, badLsn(rng, t) as bigint, { timeoutMs: rng.pick([0, -1, NaN, 'x', 1]) as number })],
      ['getPages', (t) => t.getPages(rng.chance(0.5) ? (weird(rng) as never) : [badKey(rng) as never], badLsn(rng, t) as bigint, { timeoutMs: 1 })],
      ['readPage', (t) => t.readPage(badKey(rng) as never, rng.chance(0.5) ? t.lastRecordLsn : (badLsn(rng, t) as bigint), weird(rng) as Uint8Array, weird(rng) as number)],
      ['readPages', (t) => t.readPages([key(0), badKey(rng) as never], t.lastRecordLsn, weird(rng) as Uint8Array)],
      ['createImageLayer', (t) => t.createImageLayer(badLsn(rng, t) as bigint)],
      ['compact', (t) => t.compact(weird(rng) as never)],
      ['gc', (t) => t.gc({ horizon: weird(rng) as bigint })],
      ['createTimeline', (_t, r) => r.createTimeline({ tenantId: weird(rng) as string, timelineId: weird(rng) as string, ancestorTimelineId: rng.chance(0.5) ? 'main' : (weird(rng) as string), ancestorLsn: weird(rng) as bigint })],
      ['getTimeline', (_t, r) => r.getTimeline(weird(rng) as string, weird(rng) as string)],
      ['listTimelines', (_t, r) => r.listTimelines(weird(rng) as string)],
      ['deleteTimeline', (_t, r) => r.deleteTimeline(weird(rng) as string, weird(rng) as string)],
      ['Repository.open', () => Repository.open(rng.chance(0.3) ? (notAString(weird(rng)) as string) : dir, { implementation: impl, pageCacheBytes: weird(rng) as number, checkpointDistance: weird(rng) as number })],
    ];
    const lastBefore = tl.lastRecordLsn;
    const pagesBefore = await snapshot(tl);
    const codes = new Map<string, number>();
    let threw = 0;
    for (let i = 0; i < CASES; i++) {
      const [name, call] = rng.pick(calls);
      const code = await outcome(`case ${i} ${name}`, () => call(tl, repo));
      if (code !== null) {
        threw++;
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
    }
    // Almost every call is wrong, so almost every call must have been refused.
    expect(threw).toBeGreaterThan(CASES * 0.8);
    expect(codes.get('BAD_ARGUMENT') ?? 0).toBeGreaterThan(0);
    // Nothing wrong got in.
    expect(tl.lastRecordLsn).toBe(lastBefore);
    expect((await snapshot(tl)).equals(pagesBefore)).toBe(true);
    await repo.close();
  }, TIMEOUT_MS);

  it(`${BATCH_CASES} ingest batches with one bad record: rejected whole, state unchanged`, async () => {
    const { repo, tl } = await fresh();
    const rng = new Rng(impl === 'native' ? 53 : 59);
    for (let i = 0; i < BATCH_CASES; i++) {
      const before = tl.lastRecordLsn;
      const pages = await snapshot(tl);
      const n = rng.int(1, 8);
      const batch: unknown[] = [];
      for (let j = 0; j < n; j++) batch.push(validRecord(before + BigInt(0x10 * (j + 1)), rng));
      const badAt = rng.int(0, n);
      // Half the time the bad record is an LSN that goes backwards inside an otherwise good batch.
      batch[badAt] = rng.chance(0.2) ? { ...(batch[badAt] as WalRecord), lsn: before } : badRecord(before + BigInt(0x10 * (badAt + 1)), rng);
      const code = await outcome(`batch ${i}`, () => tl.ingest(batch as WalRecord[]));
      expect(code, `batch ${i} accepted: record ${badAt} ${describe(batch[badAt])}`).not.toBeNull();
      expect(tl.lastRecordLsn, `batch ${i}: ${code}`).toBe(before);
      expect((await snapshot(tl)).equals(pages), `batch ${i}: ${code}`).toBe(true);
      // A good batch still goes in afterwards.
      tl.ingest([validRecord(before + 0x10n, rng)]);
    }
    await repo.close();
  }, TIMEOUT_MS);

  it('every method of a closed timeline and repository: CLOSED', async () => {
    const { repo, tl } = await fresh();
    await repo.close();
    const lsn = 0x10n;
    const into = Buffer.alloc(PAGE_SIZE);
    const onTimeline: Array<[string, () => unknown]> = [
      ['ingest', () => tl.ingest([{ lsn: 0x1000n, key: key(0), kind: 'zero' }])],
      ['getPage', () => tl.getPage(key(0), lsn)],
      ['getPages', () => tl.getPages([key(0)], lsn)],
      ['readPage', () => tl.readPage(key(0), lsn, into)],
      ['readPages', () => tl.readPages([key(0)], lsn, into)],
      ['flush', () => tl.flush()],
      ['createImageLayer', () => tl.createImageLayer(lsn)],
      ['compact', () => tl.compact()],
      ['gc', () => tl.gc()],
      ['layers', () => tl.layers()],
    ];
    const onRepo: Array<[string, () => unknown]> = [
      ['createTimeline', () => repo.createTimeline({ tenantId: 't1', timelineId: 'other' })],
      ['getTimeline', () => repo.getTimeline('t1', 'main')],
      ['listTimelines', () => repo.listTimelines('t1')],
      ['listTenants', () => repo.listTenants()],
      ['deleteTimeline', () => repo.deleteTimeline('t1', 'main')],
      ['runBackgroundOnce', () => repo.runBackgroundOnce()],
    ];
    for (const [name, call] of [...onTimeline, ...onRepo]) {
      expect(await outcome(name, call), name).toBe('CLOSED');
    }
    // close twice is harmless
    await expect(repo.close()).resolves.toBeUndefined();
  });
});
