/**
 * LSN ↔ time (lib/pg/lsn_time.ts, docs/POSTGRES.md "LSN ↔ time") on synthetic WAL
 * (test/pg/wal_builder.ts) ingested into real timelines on both cores, without PostgreSQL: the
 * last-commit value ingest keeps (commits and commit-prepared only, a running maximum carried across
 * ingest calls), every kind lsnForTimestamp answers and its LSN, a commit stamped exactly `at`,
 * timestamps out of WAL order, lookups on a branch that read the ancestor's value, branching with
 * ancestorTimestamp and its errors, the GC cutoff as the lower bound, a timeline without the value,
 * parseTimeArg, and `strata lsn-at` (the built binary).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { formatLsn, isStrataError, Repository, type Timeline } from '../../lib';
import { parseTimeArg } from '../../lib/cli/util';
import type { ImplementationName } from '../../lib/core/core';
import type { ControlState } from '../../lib/pg/control_state';
import { formatPgTimestamp, lastCommitAt } from '../../lib/pg/lsn_time';
import { unixMsToPgMicros } from '../../lib/pg/replication_protocol';
import { timelineImpl } from '../../lib/timeline';
import { IMPLEMENTATIONS } from '../helpers/cores';
import { buildWal, type RecordSpec, SEGMENT } from './wal_builder';
import { bareImportedTimeline } from '../helpers/pg_timeline';

const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'strata.js');
const RM_XLOG = 0;
const RM_XACT = 1;
const XLOG_NEXTOID = 0x30;
const XACT_COMMIT = 0x00;
const XACT_ABORT = 0x20;
const XACT_HAS_INFO = 0x80;
const XACT_COMMIT_PREPARED = 0x30;
const XACT_ABORT_PREPARED = 0x40;
const XINFO_HAS_TWOPHASE = 0x10;
/** buildWal starts at 16 MiB: the synthetic "import" sits there, as a real one sits at its checkpoint's end. */
const IMPORT_LSN = BigInt(SEGMENT);
/** Commit times are seconds after this moment. */
const BASE_MS = Date.UTC(2026, 11, 1, 10, 0, 0);

const dirs: string[] = [];
const repos: Repository[] = [];
afterAll(async () => {
  for (const r of repos) await r.close().catch(() => undefined);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function at(seconds: number): Date {
  return new Date(BASE_MS + seconds * 1000);
}

function xactTime(seconds: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(unixMsToPgMicros(BASE_MS + seconds * 1000), 0);
  return b;
}

function commit(xid: number, seconds: number): RecordSpec {
  return { rmid: RM_XACT, info: XACT_COMMIT, xid, main: xactTime(seconds) };
}

function abort(xid: number, seconds: number): RecordSpec {
  return { rmid: RM_XACT, info: XACT_ABORT, xid, main: xactTime(seconds) };
}

/** COMMIT PREPARED / ROLLBACK PREPARED: xact_time, xinfo with HAS_TWOPHASE, the prepared xid. */
function endPrepared(op: number, xid: number, seconds: number): RecordSpec {
  const tail = Buffer.alloc(8);
  tail.writeUInt32LE(XINFO_HAS_TWOPHASE, 0);
  tail.writeUInt32LE(xid, 4);
  return { rmid: RM_XACT, info: op | XACT_HAS_INFO, xid: 0, main: Buffer.concat([xactTime(seconds), tail]) };
}

function nextOid(oid: number): RecordSpec {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(oid, 0);
  return { rmid: RM_XLOG, info: XLOG_NEXTOID, main: b };
}

const CONTROL: ControlState = {
  nextXid: 1000n, nextOid: 20000, nextMulti: 1, nextMultiOffset: 1, oldestXid: 700, oldestXidDb: 1, oldestMulti: 1,
  oldestMultiDb: 1, oldestClogXid: null, multiTruncation: null, oldestActiveXid: 0, oldestCommitTsXid: 0, newestCommitTsXid: 0,
  timeline: 1, prevTimeline: 1, fullPageWrites: true, walLevel: 1, maxConnections: 100, maxWorkerProcesses: 8, maxWalSenders: 10,
  maxPreparedXacts: 4, maxLocksPerXact: 64, trackCommitTimestamp: false,
};

async function openRepo(impl: ImplementationName): Promise<Repository> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-lsntime-${impl}-`));
  dirs.push(dir);
  const repo = await Repository.open(dir, { implementation: impl });
  repos.push(repo);
  return repo;
}

/**
 * A PostgreSQL timeline as an import leaves it, minus the relations: the `pg` manifest extension and
 * the cluster and control state values at IMPORT_LSN (what ingest reads when it starts).
 */
function pgTimeline(repo: Repository, timelineId: string): Promise<Timeline> {
  return bareImportedTimeline(repo, timelineId, IMPORT_LSN, CONTROL);
}

/** Ingest WAL built from `specs` (from IMPORT_LSN; records the timeline already has are skipped); returns each record's end LSN. */
async function ingest(tl: Timeline, specs: RecordSpec[]): Promise<bigint[]> {
  const w = buildWal(specs, { startLsn: IMPORT_LSN });
  async function* source(): AsyncGenerator<Uint8Array> {
    yield w.bytes;
  }
  await tl.ingestPgWal(source(), { startLsn: w.startLsn });
  return w.records.map((r) => r.end);
}

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    if (isStrataError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a StrataError');
}

describe.each(IMPLEMENTATIONS)('lsnForTimestamp (%s core)', (impl) => {
  test('each kind and its LSN: nodata before any commit, past / present / future; a commit stamped exactly `at` is visible; aborts do not count', async () => {
    const repo = await openRepo(impl);
    const tl = await pgTimeline(repo, 'main');
    expect(await tl.lsnForTimestamp(at(10))).toEqual({ kind: 'nodata', lsn: IMPORT_LSN });
    const ends = await ingest(tl, [nextOid(30_000), commit(100, 10), abort(101, 50), commit(102, 20), nextOid(40_000), commit(103, 30), nextOid(50_000)]);
    const [, c100, , c102, , c103, last] = ends;
    expect(tl.lastRecordLsn).toBe(last);
    // The stored value: the running maximum and the latest commit's end LSN.
    expect(await lastCommitAt(timelineImpl(tl), last)).toEqual({ maxTime: unixMsToPgMicros(at(30).getTime()), lsn: c103 });
    expect(await lastCommitAt(timelineImpl(tl), c100 - 1n)).toBeNull();

    expect(await tl.lsnForTimestamp(at(5))).toEqual({ kind: 'past', lsn: IMPORT_LSN });
    expect(await tl.lsnForTimestamp(new Date(at(10).getTime() - 1))).toEqual({ kind: 'past', lsn: IMPORT_LSN });
    expect(await tl.lsnForTimestamp(at(10))).toEqual({ kind: 'present', lsn: c100 });
    // The abort stamped 50 s between them changes nothing.
    expect(await tl.lsnForTimestamp(at(15))).toEqual({ kind: 'present', lsn: c100 });
    expect(await tl.lsnForTimestamp(at(20))).toEqual({ kind: 'present', lsn: c102 });
    expect(await tl.lsnForTimestamp(new Date(at(30).getTime() - 1))).toEqual({ kind: 'present', lsn: c102 });
    // At or after the latest commit: more WAL could still commit before `at`.
    expect(await tl.lsnForTimestamp(at(30))).toEqual({ kind: 'future', lsn: last });
    expect(await tl.lsnForTimestamp(at(3600))).toEqual({ kind: 'future', lsn: last });
  });

  test('timestamps out of WAL order: the value keeps the maximum, and a later-stamped commit hides the earlier-stamped ones after it', async () => {
    const repo = await openRepo(impl);
    const tl = await pgTimeline(repo, 'main');
    const [c1, c2, c3, c4] = await ingest(tl, [commit(100, 10), commit(101, 30), commit(102, 20), commit(103, 40)]);
    expect(await lastCommitAt(timelineImpl(tl), c3)).toEqual({ maxTime: unixMsToPgMicros(at(30).getTime()), lsn: c3 });
    // c3 (20 s) follows c2 (30 s): no LSN shows c1 and c3 without c2, so 25 s gets c1 alone.
    expect(await tl.lsnForTimestamp(at(25))).toEqual({ kind: 'present', lsn: c1 });
    expect(await tl.lsnForTimestamp(at(30))).toEqual({ kind: 'present', lsn: c3 });
    expect(await tl.lsnForTimestamp(at(35))).toEqual({ kind: 'present', lsn: c3 });
    expect(await tl.lsnForTimestamp(at(40))).toEqual({ kind: 'future', lsn: c4 });
    expect(c2).toBeLessThan(c3);
  });

  test('the maximum carries across ingest calls (read back from the timeline when ingest starts)', async () => {
    const repo = await openRepo(impl);
    const tl = await pgTimeline(repo, 'main');
    const first = [commit(100, 30)];
    const [c1] = await ingest(tl, first);
    const [, c2] = await ingest(tl, [...first, commit(101, 20)]);
    expect(await lastCommitAt(timelineImpl(tl), c2)).toEqual({ maxTime: unixMsToPgMicros(at(30).getTime()), lsn: c2 });
    expect(await tl.lsnForTimestamp(at(25))).toEqual({ kind: 'past', lsn: IMPORT_LSN });
    expect(await tl.lsnForTimestamp(at(30))).toEqual({ kind: 'future', lsn: c2 });
    expect(c1).toBeLessThan(c2);
  });

  test('COMMIT PREPARED counts with its own xact_time; ROLLBACK PREPARED does not', async () => {
    const repo = await openRepo(impl);
    const tl = await pgTimeline(repo, 'main');
    const [c1, cp, , c3] = await ingest(tl, [
      commit(100, 10), endPrepared(XACT_COMMIT_PREPARED, 90, 20), endPrepared(XACT_ABORT_PREPARED, 91, 45), commit(101, 30),
    ]);
    expect(await tl.lsnForTimestamp(at(15))).toEqual({ kind: 'present', lsn: c1 });
    expect(await tl.lsnForTimestamp(at(20))).toEqual({ kind: 'present', lsn: cp });
    expect(await tl.lsnForTimestamp(at(29))).toEqual({ kind: 'present', lsn: cp });
    expect(await tl.lsnForTimestamp(at(40))).toEqual({ kind: 'future', lsn: c3 });
  });

  test('a timeline without the value (no commit ingested, as after an import by an older Strata) is nodata, and ingest then starts the value', async () => {
    const repo = await openRepo(impl);
    const tl = await pgTimeline(repo, 'main');
    const ends = await ingest(tl, [nextOid(30_000), nextOid(40_000)]);
    expect(await lastCommitAt(timelineImpl(tl), tl.lastRecordLsn)).toBeNull();
    expect(await tl.lsnForTimestamp(at(0))).toEqual({ kind: 'nodata', lsn: IMPORT_LSN });
    const [, , c1] = await ingest(tl, [nextOid(30_000), nextOid(40_000), commit(100, 10)]);
    expect(await tl.lsnForTimestamp(at(5))).toEqual({ kind: 'past', lsn: IMPORT_LSN });
    expect(await tl.lsnForTimestamp(at(10))).toEqual({ kind: 'future', lsn: c1 });
    expect(ends[1]).toBeLessThan(c1);
  });

  test('branches: ancestorTimestamp branches at the present LSN; the branch reads the ancestor\'s value and searches only its own LSNs', async () => {
    const repo = await openRepo(impl);
    const main = await pgTimeline(repo, 'main');
    const prefix = [commit(100, 10), commit(101, 20)];
    const [c1, c2, c3, c4] = await ingest(main, [...prefix, commit(102, 30), commit(103, 40)]);
    const b = await repo.createTimeline({ tenantId: 't', timelineId: 'b', ancestorTimelineId: 'main', ancestorTimestamp: at(25) });
    expect(b.ancestorLsn).toBe(c2);
    // Nothing ingested on the branch yet: its value is the ancestor's at the branch point.
    expect(await b.lsnForTimestamp(at(25))).toEqual({ kind: 'future', lsn: c2 });
    expect(await b.lsnForTimestamp(at(15))).toEqual({ kind: 'past', lsn: c2 });
    // The branch's own WAL: same prefix, then other commits.
    const [, , b3, b4] = await ingest(b, [...prefix, commit(200, 50), commit(201, 60)]);
    expect(await b.lsnForTimestamp(at(45))).toEqual({ kind: 'present', lsn: c2 });
    expect(await b.lsnForTimestamp(at(55))).toEqual({ kind: 'present', lsn: b3 });
    expect(await b.lsnForTimestamp(at(60))).toEqual({ kind: 'future', lsn: b4 });
    expect(await lastCommitAt(timelineImpl(b), b3 - 1n)).toEqual({ maxTime: unixMsToPgMicros(at(20).getTime()), lsn: c2 });
    // The ancestor is untouched by the branch.
    expect(await main.lsnForTimestamp(at(35))).toEqual({ kind: 'present', lsn: c3 });
    expect(await main.lsnForTimestamp(at(55))).toEqual({ kind: 'future', lsn: c4 });
    // A branch of the branch, as of a time on the branch's own commits.
    const bb = await repo.createTimeline({ tenantId: 't', timelineId: 'bb', ancestorTimelineId: 'b', ancestorTimestamp: at(55) });
    expect(bb.ancestorLsn).toBe(b3);
    expect(c1).toBeLessThan(c2);
  });

  test('ancestorTimestamp: a time outside the commits is BAD_ARGUMENT naming the kind and the commit-time range; bad combinations are refused', async () => {
    const repo = await openRepo(impl);
    const main = await pgTimeline(repo, 'main');
    const create = (id: string, extra: { ancestorTimestamp?: Date; ancestorLsn?: bigint }): Promise<Timeline> =>
      repo.createTimeline({ tenantId: 't', timelineId: id, ancestorTimelineId: 'main', ...extra });
    const empty = await codeOf(create('e', { ancestorTimestamp: at(10) }));
    expect(empty.code).toBe('BAD_ARGUMENT');
    expect(empty.message).toMatch(/'nodata'.*no commit records/);
    await ingest(main, [commit(100, 10), commit(101, 40)]);
    const past = await codeOf(create('p', { ancestorTimestamp: at(5) }));
    expect(past.code).toBe('BAD_ARGUMENT');
    expect(past.message).toContain(`ancestorTimestamp ${formatPgTimestamp(unixMsToPgMicros(at(5).getTime()))} is 'past'`);
    expect(past.message).toContain('2026-12-01T10:00:10.000000Z .. 2026-12-01T10:00:40.000000Z');
    const future = await codeOf(create('f', { ancestorTimestamp: at(40) }));
    expect(future.message).toMatch(/is 'future'.*latest commit/);
    expect((await codeOf(create('x', { ancestorTimestamp: at(20), ancestorLsn: IMPORT_LSN }))).message).toMatch(/exclude each other/);
    expect((await codeOf(create('y', { ancestorTimestamp: new Date(Number.NaN) }))).code).toBe('BAD_ARGUMENT');
    expect((await codeOf(repo.createTimeline({ tenantId: 't', timelineId: 'z', ancestorTimestamp: at(20) }))).message).toMatch(/without ancestorTimelineId/);
    expect(repo.listTimelines('t').map((t) => t.timelineId)).toEqual(['main']);
    // Not a PostgreSQL timeline; not a Date.
    const plain = await repo.createTimeline({ tenantId: 't', timelineId: 'plain' });
    expect((await codeOf(plain.lsnForTimestamp(at(0)))).message).toMatch(/needs a PostgreSQL timeline/);
    expect((await codeOf(main.lsnForTimestamp('2026-12-01' as unknown as Date))).code).toBe('BAD_ARGUMENT');
  });

  test('the GC cutoff bounds the search: below it is past, a commit below it answers with the cutoff', async () => {
    const repo = await openRepo(impl);
    const tl = await pgTimeline(repo, 'main');
    const specs = [commit(100, 10), commit(101, 20), commit(102, 30), commit(103, 40), commit(104, 50), commit(105, 60)];
    const [, , c3, c4, , c6] = await ingest(tl, specs);
    await tl.flush();
    const cutoff = c3 + 8n;
    const r = await tl.gc({ horizon: c6 - cutoff });
    expect(r.cutoffLsn).toBe(cutoff);
    expect(tl.gcCutoffLsn).toBe(cutoff);
    expect(await tl.lsnForTimestamp(at(15))).toEqual({ kind: 'past', lsn: cutoff });
    expect(await tl.lsnForTimestamp(at(35))).toEqual({ kind: 'present', lsn: cutoff });
    expect(await tl.lsnForTimestamp(at(45))).toEqual({ kind: 'present', lsn: c4 });
    expect((await codeOf(repo.createTimeline({ tenantId: 't', timelineId: 'old', ancestorTimelineId: 'main', ancestorTimestamp: at(25) }))).message)
      .toContain('2026-12-01T10:00:30.000000Z .. 2026-12-01T10:01:00.000000Z');
  });
});

describe('parseTimeArg', () => {
  test('ISO-8601 with a zone, psql\'s form too; fractions below a millisecond are truncated', () => {
    expect(parseTimeArg('2026-12-01T10:30:00Z').toISOString()).toBe('2026-12-01T10:30:00.000Z');
    expect(parseTimeArg('2026-12-01t10:30z').toISOString()).toBe('2026-12-01T10:30:00.000Z');
    expect(parseTimeArg('2026-12-01 10:30:37.123456+00').toISOString()).toBe('2026-12-01T10:30:37.123Z');
    expect(parseTimeArg('2026-12-01T11:30:00.5+01:00').toISOString()).toBe('2026-12-01T10:30:00.500Z');
    expect(parseTimeArg('2026-12-01T05:00:00-0530').toISOString()).toBe('2026-12-01T10:30:00.000Z');
    expect(parseTimeArg('2024-02-29T00:00:00Z').toISOString()).toBe('2024-02-29T00:00:00.000Z');
  });

  test('no zone, impossible dates and free text are BAD_ARGUMENT', () => {
    const reasons: Record<string, RegExp> = {
      '2026-12-01T10:30:00': /no zone/,
      '2026-12-01': /no zone/,
      '2026-02-29T00:00:00Z': /has no day 29/,
      '2026-13-01T00:00:00Z': /out of range/,
      '2026-12-01T24:00:00Z': /out of range/,
      '2026-12-01T10:00:00+16:00': /zone \+16:00 is out of range/,
      'yesterday': /not ISO-8601/,
      '12/01/2026 10:00 UTC': /not ISO-8601/,
      '1764585000': /not ISO-8601/,
      '': /not ISO-8601/,
    };
    for (const [text, why] of Object.entries(reasons)) {
      let err: unknown = null;
      try {
        parseTimeArg(text);
      } catch (e) {
        err = e;
      }
      expect(isStrataError(err, 'BAD_ARGUMENT'), text).toBe(true);
      expect((err as Error).message, text).toMatch(why);
    }
  });
});

describe('strata lsn-at (the built binary)', () => {
  test('prints the kind and LSN (--json too); a garbage time exits 3', async () => {
    const repo = await openRepo('ts');
    const tl = await pgTimeline(repo, 'main');
    const [c1, , last] = await ingest(tl, [commit(100, 10), commit(101, 20), nextOid(30_000)]);
    const dir = repo.dir;
    await repo.close();
    const run = (args: string[]): { status: number | null; stdout: string; stderr: string } => {
      const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8' });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const present = run(['lsn-at', dir, 't', 'main', '2026-12-01T10:00:15Z']);
    expect(present.status, present.stderr).toBe(0);
    expect(present.stdout).toBe(`present ${formatLsn(c1)}\n`);
    const future = run(['lsn-at', dir, 't', 'main', '2026-12-01 11:00:20+01', '--json']);
    expect(future.status, future.stderr).toBe(0);
    expect(JSON.parse(future.stdout)).toEqual({ tenantId: 't', timelineId: 'main', time: '2026-12-01T10:00:20.000Z', kind: 'future', lsn: formatLsn(last) });
    const past = run(['lsn-at', dir, 't', 'main', '2026-12-01T09:00:00Z']);
    expect(past.stdout).toBe(`past ${formatLsn(IMPORT_LSN)}\n`);
    const garbage = run(['lsn-at', dir, 't', 'main', 'next tuesday', '--json']);
    expect(garbage.status).toBe(3);
    expect(JSON.parse(garbage.stdout)).toMatchObject({ error: { code: 'BAD_ARGUMENT', exitCode: 3 } });
    expect(run(['lsn-at', dir, 't', 'main']).status).toBe(2);
  });
});
