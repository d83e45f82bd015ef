/**
 * Bad input to the PostgreSQL calls, as a seeded random property (docs/RELIABILITY.md, "Bad API
 * input"): importPgDatadir, ingestPgWal, exportPgDatadir, getRelSize, listRelations,
 * lsnForTimestamp and followPostgres, called with wrong types, bad LSNs, missing / nonexistent /
 * non-directory paths, garbage and truncated WAL, and on closed timelines, either succeed or throw
 * (reject with) a StrataError with a stable code; never a TypeError or crash. A refused call leaves
 * lastRecordLsn and the pages as they were and no export directory behind. The recorded WAL of the
 * 'plain' fixture (test/helpers/pg_fixture.ts) is the good input; no server runs here.
 * STRATA_BAD_INPUT_CASES raises the number of random calls.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { type Lsn, Repository, type Timeline } from '../../lib';
import { IMPLEMENTATIONS } from '../helpers/cores';
import { badInputCases, CodeTally, outcome, unrefusedCases, weird, WEIRD } from '../helpers/bad_input';
import { pgAvailability } from '../helpers/pg_cluster';
import { getPgFixture, type PgFixture } from '../helpers/pg_fixture';
import { Rng } from '../helpers/random';

const pg = pgAvailability();
const skipNote = pg.ok ? '' : ` — skipped: ${pg.reason}`;
const CASES = badInputCases(150, 0.05);
const WAL_CASES = badInputCases(30, 0.01);
const TIMEOUT_MS = Math.max(180_000, CASES * 500);
const SEGMENT_BYTES = 16 * 2 ** 20;
/** A short wait for LSNs past the end: a refusal, not a 30 s wait. */
const SHORT_WAIT_MS = 1;
/** Relation forks whose first pages make up the "nothing changed" snapshot. */
const SNAPSHOT_RELS = 12;

const EXPORT_BAD_LSNS = [...WEIRD.filter((v) => typeof v !== 'bigint'), 0n, 1n, -1n, 2n ** 64n];
const NOT_OBJECTS = WEIRD.filter((v) => v === null || (v !== undefined && typeof v !== 'object') || Array.isArray(v));
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

function tmp(tag: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `strata-pgbad-${tag}-`));
  dirs.push(d);
  return d;
}

/** `bytes` WAL bytes from `from` on, read out of the fixture's segment files. */
function walBytes(fx: PgFixture, from: Lsn, bytes: number): Buffer {
  const out: Buffer[] = [];
  let at = from;
  let left = bytes;
  while (left > 0) {
    const segno = Number(at / BigInt(SEGMENT_BYTES));
    const off = Number(at % BigInt(SEGMENT_BYTES));
    const name = fs.readdirSync(fx.walDir).find((f) => parseInt(f.slice(8, 16), 16) * 256 + parseInt(f.slice(16, 24), 16) === segno && /^[0-9A-F]{24}$/.test(f));
    if (name === undefined) break;
    const seg = fs.readFileSync(path.join(fx.walDir, name));
    const n = Math.min(left, SEGMENT_BYTES - off);
    out.push(seg.subarray(off, off + n));
    left -= n;
    at += BigInt(n);
  }
  return Buffer.concat(out);
}

async function* chunks(buf: Buffer, rng: Rng): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < buf.length;) {
    const n = rng.int(1, 64 * 1024);
    yield buf.subarray(i, i + n);
    i += n;
  }
}

/** First page of some relation forks plus the relation list, at lastRecordLsn. */
async function snapshot(tl: Timeline): Promise<string> {
  const rels = await tl.listRelations(tl.lastRecordLsn);
  const parts: string[] = [JSON.stringify(rels.map((r) => [r.spcOid, r.dbOid, r.relNumber, r.forkNum, r.nblocks]))];
  for (const r of rels.filter((x) => x.nblocks > 0 && x.forkNum === 0).slice(0, SNAPSHOT_RELS)) {
    const p = await tl.getPage({ spcOid: r.spcOid, dbOid: r.dbOid, relNumber: r.relNumber, forkNum: 0, blockNum: 0 }, tl.lastRecordLsn);
    parts.push(p.toString('base64'));
  }
  return parts.join('|');
}

describe.each(IMPLEMENTATIONS)('bad input to the PostgreSQL calls (%s core)', (impl) => {
  test.skipIf(!pg.ok)(`${CASES} random calls with wrong arguments: a coded StrataError, nothing changed${skipNote}`, async () => {
    const fx = await getPgFixture('plain');
    const work = tmp('work');
    const aFile = path.join(work, 'a-file');
    fs.writeFileSync(aFile, 'not a directory');
    const nonEmpty = path.join(work, 'non-empty');
    fs.mkdirSync(nonEmpty);
    fs.writeFileSync(path.join(nonEmpty, 'x'), 'x');
    const emptyDir = path.join(work, 'empty');
    fs.mkdirSync(emptyDir);
    const missing = path.join(work, 'missing', 'deeper');
    const paths = [aFile, nonEmpty, emptyDir, missing, fx.walDir, path.join(fx.baseDir, 'global'), path.join(fx.baseDir, 'PG_VERSION')];

    const repo = await Repository.open(tmp('repo'), { implementation: impl });
    const tl = await repo.createTimeline({ tenantId: 'pg', timelineId: 'main' });
    await tl.importPgDatadir(fx.baseDir);
    const plain = await repo.createTimeline({ tenantId: 'pg', timelineId: 'plain' });
    const before = tl.lastRecordLsn;
    const pagesBefore = await snapshot(tl);
    const rng = new Rng(impl === 'native' ? 71 : 73);
    const badLsn = (): unknown => (rng.chance(0.3) ? tl.lastRecordLsn + BigInt(rng.int(1, 1 << 20)) : weird(rng));
    /** For ingest's endLsn every LSN above lastRecordLsn is valid (and would store WAL): wrong types only. */
    const badEndLsn = (): unknown => rng.pick(WEIRD.filter((v) => v !== undefined && typeof v !== 'bigint'));
    // A weird string is a valid relative path: kept inside `work`, never the working directory.
    const inWork = (v: unknown): unknown => (typeof v === 'string' && v !== '' && !v.includes('\0') ? path.join(work, 'rel', v) : v);
    const anyPath = (): unknown => (rng.chance(0.6) ? rng.pick(paths) : inWork(weird(rng)));
    const relTag = (): unknown => {
      if (rng.chance(0.3)) return weird(rng);
      const r: Record<string, unknown> = { spcOid: 1663, dbOid: 5, relNumber: 1259, forkNum: 0 };
      r[rng.pick(['spcOid', 'dbOid', 'relNumber', 'forkNum'])] = rng.pick([...WEIRD, 4, 99]);
      return r;
    };
    const exportDir = (): { dir: unknown; fresh: string | null } => {
      const fresh = path.join(work, `export-${rng.int(0, 1e9)}`);
      return rng.chance(0.5) ? { dir: fresh, fresh } : { dir: anyPath(), fresh: null };
    };
    let exportCall = 0;
    const calls: Array<[string, () => unknown]> = [
      ['importPgDatadir (imported timeline)', () => tl.importPgDatadir(anyPath() as string)],
      ['importPgDatadir (new timeline)', async () => {
        const t = await repo.createTimeline({ tenantId: 'pg', timelineId: `imp${rng.int(0, 1e9)}` });
        return t.importPgDatadir(anyPath() as string);
      }],
      // endLsn = lastRecordLsn: a source that turns out good stores nothing new.
      ['ingestPgWal source', () => tl.ingestPgWal(anyPath() as string, { endLsn: tl.lastRecordLsn })],
      // Options that are not an object (an object without fields would be valid: ingest everything).
      ['ingestPgWal opts', () => tl.ingestPgWal(fx.walDir, rng.chance(0.2) ? (rng.pick(NOT_OBJECTS) as never) : { startLsn: badLsn() as Lsn, endLsn: (rng.chance(0.5) ? badEndLsn() : tl.lastRecordLsn) as Lsn, timeline: weird(rng) as number })],
      ['ingestPgWal (plain timeline)', () => plain.ingestPgWal(fx.walDir)],
      ['exportPgDatadir', async () => {
        // Never a whole good export (slow): the LSN is bad, or the directory, or onProgress.
        const { dir, fresh } = exportDir();
        const which = exportCall++ % 3;
        // An LSN above lastRecordLsn is waited for (60 s, like getPage): only LSNs below the import or of the wrong type.
        const opts = which === 0 || fresh === null
          ? (rng.chance(0.2) ? weird(rng) : { lsn: rng.chance(0.5) && fresh === null ? tl.lastRecordLsn : rng.pick(EXPORT_BAD_LSNS) })
          : { lsn: tl.lastRecordLsn, onProgress: rng.pick(WEIRD.filter((v) => v !== undefined && v !== null && typeof v !== 'function')) };
        try {
          return await tl.exportPgDatadir(dir as string, opts as never);
        } finally {
          // A refused export leaves no directory behind.
          if (fresh !== null) expect(fs.existsSync(fresh), `export into ${fresh}`).toBe(false);
        }
      }],
      ['exportPgDatadir (plain timeline)', () => plain.exportPgDatadir(path.join(work, 'never'), { lsn: 1n })],
      ['getRelSize', () => tl.getRelSize(relTag() as never, rng.chance(0.5) ? tl.lastRecordLsn : (badLsn() as Lsn), { timeoutMs: rng.chance(0.5) ? SHORT_WAIT_MS : (weird(rng) as number) })],
      ['listRelations', () => tl.listRelations(rng.chance(0.3) ? tl.lastRecordLsn : (weird(rng) as Lsn), rng.chance(0.3) ? (weird(rng) as never) : { dbOid: weird(rng) as number })],
      ['lsnForTimestamp', () => tl.lsnForTimestamp(weird(rng) as Date)],
      ['followPostgres timeline', () => repo.followPostgres(weird(rng) as Timeline, { connectionString: 'host=127.0.0.1 port=1' })],
      ['followPostgres options', () => repo.followPostgres(tl, rng.chance(0.2) ? (weird(rng) as never) : {
        connectionString: rng.chance(0.3) ? (weird(rng) as string) : 'host=127.0.0.1 port=1',
        slotName: rng.chance(0.5) ? (weird(rng) as string) : 'Bad-Slot',
        startLsn: badLsn() as Lsn,
        flushIntervalMs: weird(rng) as number,
      })],
    ];
    const cwdBefore = fs.readdirSync(process.cwd()).sort();
    const tally = new CodeTally();
    for (let i = 0; i < CASES; i++) {
      const [name, call] = rng.pick(calls);
      const e = await outcome(`case ${i} ${name}`, call);
      tally.add(e);
      if (e === null && name.startsWith('followPostgres')) throw new Error(`case ${i}: followPostgres accepted bad options`);
    }
    expect(tally.refused).toBeGreaterThan(CASES * 0.8);
    expect(tally.codes.get('BAD_ARGUMENT') ?? 0).toBeGreaterThan(0);
    expect(tl.lastRecordLsn).toBe(before);
    expect(await snapshot(tl)).toBe(pagesBefore);
    expect(fs.readdirSync(process.cwd()).sort(), 'nothing written into the working directory').toEqual(cwdBefore);
    await repo.close();
  }, TIMEOUT_MS);

  test.skipIf(!pg.ok)(`${WAL_CASES} garbage and truncated WAL streams: refused or ended, never half a record; the real WAL then goes in${skipNote}`, async () => {
    const fx = await getPgFixture('plain');
    const repo = await Repository.open(tmp('wal'), { implementation: impl });
    const tl = await repo.createTimeline({ tenantId: 'pg', timelineId: 'main' });
    await tl.importPgDatadir(fx.baseDir);
    const start = tl.lastRecordLsn;
    const real = walBytes(fx, start, 256 * 1024);
    const pagesBefore = await snapshot(tl);
    const rng = new Rng(impl === 'native' ? 83 : 89);
    const tally = new CodeTally();
    for (let i = 0; i < WAL_CASES; i++) {
      let buf: Buffer;
      switch (rng.int(0, 4)) {
        case 0: buf = rng.bytes(rng.int(0, 64 * 1024)); break;
        case 1: buf = Buffer.alloc(rng.int(0, 64 * 1024)); break;
        case 2: {
          // The first record's header broken.
          buf = Buffer.from(real);
          buf[rng.int(0, 24)] ^= 1 << rng.int(0, 8);
          break;
        }
        default: buf = real.subarray(0, rng.int(0, 24)); break;
      }
      const e = await outcome(`WAL case ${i}`, () => tl.ingestPgWal(chunks(buf, rng), { startLsn: start }));
      tally.add(e);
      expect(tl.lastRecordLsn, `WAL case ${i}: ${e?.message ?? 'accepted'}`).toBe(start);
    }
    expect(await snapshot(tl)).toBe(pagesBefore);
    // A stream cut anywhere stores whole records only: what it stored is a prefix the rest continues.
    const cut = rng.int(1, real.length);
    await outcome('truncated WAL', () => tl.ingestPgWal(chunks(real.subarray(0, cut), rng), { startLsn: start }));
    const mid = tl.lastRecordLsn;
    expect(mid).toBeGreaterThanOrEqual(start);
    expect(mid).toBeLessThanOrEqual(start + BigInt(cut));
    const end = start + BigInt(real.length);
    const rest = await tl.ingestPgWal(chunks(real.subarray(Number(mid - start)), rng), { startLsn: mid });
    expect(rest).toBeDefined();
    // The same WAL in one go on a second timeline ends at the same LSN.
    const again = await repo.createTimeline({ tenantId: 'pg', timelineId: 'again' });
    await again.importPgDatadir(fx.baseDir);
    await again.ingestPgWal(chunks(real, rng), { startLsn: start });
    expect(tl.lastRecordLsn).toBe(again.lastRecordLsn);
    expect(tl.lastRecordLsn).toBeLessThanOrEqual(end);
    expect(await snapshot(tl)).toBe(await snapshot(again));
    await repo.close();
  }, TIMEOUT_MS);

  test.skipIf(!pg.ok)(`the cases that failed before the fix: each BAD_ARGUMENT naming what was wrong${skipNote}`, async () => {
    const fx = await getPgFixture('plain');
    const repo = await Repository.open(tmp('fixed'), { implementation: impl });
    const tl = await repo.createTimeline({ tenantId: 'pg', timelineId: 'main' });
    await tl.importPgDatadir(fx.baseDir);
    const fresh = await repo.createTimeline({ tenantId: 'pg', timelineId: 'fresh' });
    const lsn = tl.lastRecordLsn;
    const out = path.join(tmp('fixed-export'), 'out');
    const rel = { spcOid: 1664, dbOid: 0, relNumber: 1262, forkNum: 0 };
    // Each was a TypeError (a template literal or JSON.stringify of a symbol or bigint, a property
    // of null, a private field of a non-Timeline, path.resolve of a number) or went on unchecked.
    const cases: Array<[string, () => unknown, RegExp]> = [
      ['getRelSize forkNum symbol', () => tl.getRelSize({ ...rel, forkNum: Symbol('f') as unknown as number }, lsn), /forkNum/],
      ['getRelSize spcOid 1n', () => tl.getRelSize({ ...rel, spcOid: 1n as unknown as number }, lsn), /spcOid/],
      ["getRelSize timeoutMs 'x'", () => tl.getRelSize(rel, lsn, { timeoutMs: 'x' as unknown as number }), /timeoutMs/],
      ['listRelations options null', () => tl.listRelations(lsn, null as never), /options/],
      ['listRelations dbOid symbol', () => tl.listRelations(lsn, { dbOid: Symbol('d') as unknown as number }), /dbOid/],
      ['lsnForTimestamp symbol', () => tl.lsnForTimestamp(Symbol('t') as unknown as Date), /time/],
      ['exportPgDatadir dir 1n', () => tl.exportPgDatadir(1n as unknown as string, { lsn }), /directory/],
      ["exportPgDatadir onProgress 'x'", () => tl.exportPgDatadir(out, { lsn, onProgress: 'x' as never }), /onProgress/],
      ['ingestPgWal options null', () => tl.ingestPgWal(fx.walDir, null as never), /options/],
      ["ingestPgWal timeline 'x'", () => tl.ingestPgWal(fx.walDir, { timeline: 'x' as unknown as number }), /timeline/],
      ['ingestPgWal source 42', () => tl.ingestPgWal(42 as unknown as string), /WAL source/],
      ['importPgDatadir 42', () => fresh.importPgDatadir(42 as unknown as string), /data directory/],
      ["importPgDatadir ''", () => fresh.importPgDatadir(''), /data directory/],
      ['followPostgres timeline null', () => repo.followPostgres(null as unknown as Timeline, { connectionString: 'host=127.0.0.1 port=1' }), /Timeline/],
      ['followPostgres slotName 1n', () => repo.followPostgres(tl, { connectionString: 'host=127.0.0.1 port=1', slotName: 1n as unknown as string }), /slotName/],
      ['followPostgres flushIntervalMs symbol', () => repo.followPostgres(tl, { connectionString: 'host=127.0.0.1 port=1', flushIntervalMs: Symbol('m') as unknown as number }), /flushIntervalMs/],
    ];
    expect(await unrefusedCases(cases)).toEqual([]);
    expect(fs.existsSync(out)).toBe(false);
    expect(tl.lastRecordLsn).toBe(lsn);
    expect(fresh.lastRecordLsn).toBe(fresh.startLsn);
    await repo.close();
  }, TIMEOUT_MS);

  test.skipIf(!pg.ok)(`every PostgreSQL call on a closed timeline and repository: CLOSED${skipNote}`, async () => {
    const fx = await getPgFixture('plain');
    const repo = await Repository.open(tmp('closed'), { implementation: impl });
    const tl = await repo.createTimeline({ tenantId: 'pg', timelineId: 'main' });
    await tl.importPgDatadir(fx.baseDir);
    const fresh = await repo.createTimeline({ tenantId: 'pg', timelineId: 'fresh' });
    const lsn = tl.lastRecordLsn;
    await repo.close();
    const exportDir = path.join(tmp('closed-export'), 'out');
    const calls: Array<[string, () => unknown]> = [
      ['importPgDatadir', () => fresh.importPgDatadir(fx.baseDir)],
      ['ingestPgWal', () => tl.ingestPgWal(fx.walDir)],
      ['exportPgDatadir', () => tl.exportPgDatadir(exportDir, { lsn })],
      ['getRelSize', () => tl.getRelSize({ spcOid: 1664, dbOid: 0, relNumber: 1262, forkNum: 0 }, lsn)],
      ['listRelations', () => tl.listRelations(lsn)],
      ['lsnForTimestamp', () => tl.lsnForTimestamp(new Date())],
      ['followPostgres', () => repo.followPostgres(tl, { connectionString: 'host=127.0.0.1 port=1' })],
    ];
    for (const [name, call] of calls) expect((await outcome(name, call))?.code, name).toBe('CLOSED');
    expect(fs.existsSync(exportDir)).toBe(false);
  }, TIMEOUT_MS);
});
