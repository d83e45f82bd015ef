/**
 * Proves the real-PostgreSQL test infrastructure of issue 14 (test/helpers/pg_*.ts; docs/POSTGRES.md,
 * "Oracle tests: how they run"): a throw-away cluster starts, answers and leaves no process behind;
 * every fixture variant builds with the files and LSNs it should; PostgreSQL's masks hide exactly
 * what they should on real pages (negative controls); the comparer reports final/ equal to itself
 * and base/ different from it. Skipped, with the reason, where PostgreSQL 15 cannot run.
 */
import * as fs from 'fs';
import * as path from 'path';
import { beforeAll, describe, expect, test } from 'vitest';
import { formatLsn } from '../../lib/lsn';
import type { PgFixture } from '../helpers/pg_fixture';
import { FIXTURE_VARIANTS, fixtureDiskBytes, getPgFixture, walRecordEnd } from '../helpers/pg_fixture';
import { PgCluster, pgAvailability, readControlData } from '../helpers/pg_cluster';
import type { PgRelation } from '../helpers/pg_cluster';
import {
  compareWithDataDir,
  dataDirPageSource,
  dataDirRelations,
  dataDirSizeSource,
  formatCompareReport,
  MAIN_FORKNUM,
  VISIBILITYMAP_FORKNUM,
} from '../helpers/pg_compare';
import {
  BLCKSZ,
  btreeMask,
  classifyPageHeuristic,
  heapMask,
  LP_DEAD,
  LP_NORMAL,
  readPageHeader,
} from '../helpers/pg_mask';

const pg = pgAvailability();
const skipNote = pg.ok ? '' : ` — skipped: ${pg.reason}`;
/** Building a fixture takes ≈ 10–30 s here; waiting for a concurrent build of the same one as long. */
const FIXTURE_TIMEOUT_MS = 10 * 60 * 1000;
const SEG = 16 * 1024 * 1024;

describe('walRecordEnd (end LSN of a WAL record from its start and length)', () => {
  test('inside one page, MAXALIGNed', () => {
    expect(walRecordEnd(0x151ad40n, 114, SEG)).toBe(0x151adb8n); // measured: pg_waldump's end of WAL
  });
  test('crossing a page boundary skips the 24-byte short header', () => {
    expect(walRecordEnd(0x1001ff0n, 100, SEG)).toBe(0x1001ff0n + 100n + 24n + 4n);
  });
  test('crossing into a new segment skips the 40-byte long header', () => {
    expect(walRecordEnd(0x1fffff8n, 16, SEG)).toBe(0x2000000n + 40n + 8n);
  });
  test('a record ending exactly on a page boundary ends there', () => {
    expect(walRecordEnd(0x1001fe0n, 32, SEG)).toBe(0x1002000n);
  });
});

describe('PgCluster', () => {
  test.skipIf(!pg.ok)(
    `a throw-away cluster starts, answers, reports its state and leaves no process${skipNote}`,
    async () => {
      const c = await PgCluster.create({ dataChecksums: true });
      try {
        await c.start();
        expect(c.port).toBeGreaterThan(0);
        expect(await c.sql('postgres', "SELECT 1 + 1, NULL::int, 'a' || 'b'")).toEqual([['2', null, 'ab']]);
        expect(await c.sql('postgres', 'SELECT 1 WHERE false')).toEqual([]);
        const dbs = await c.databases();
        expect(dbs.map((d) => d.name).sort()).toEqual(['postgres', 'template0', 'template1']);
        expect(dbs.find((d) => d.name === 'template0')?.allowConnections).toBe(false);

        const rels = await c.relations('postgres');
        const pgClass = rels.find((r) => r.relname === 'pg_class');
        // A mapped catalog: pg_class.relfilenode is 0, pg_relation_filenode() resolves it.
        expect(pgClass).toMatchObject({ am: 'heap', relkind: 'r', shared: false, spcOid: 1663 });
        expect(pgClass?.relNumber).toBeGreaterThan(0);
        expect(fs.existsSync(path.join(c.dataDir, pgClass?.path ?? 'x'))).toBe(true);
        const pgDatabase = rels.find((r) => r.relname === 'pg_database');
        expect(pgDatabase).toMatchObject({ shared: true, dbOid: 0, spcOid: 1664 });
        expect(rels.find((r) => r.relname === 'pg_class_oid_index')?.am).toBe('btree');

        const before = await c.currentWalInsertLsn();
        await c.exec('postgres', 'CREATE TABLE x (a int); INSERT INTO x SELECT generate_series(1, 1000);');
        expect(await c.currentWalInsertLsn()).toBeGreaterThan(before);
        await c.checkpoint();
        const running = await c.controlData();
        expect(running.state).toBe('in production');
        expect(running.dataChecksumVersion).toBe(1);
        expect(running.walSegmentSize).toBe(SEG);
        expect(await c.pgbench(['-i', '-s', '1', '-q', 'postgres'])).toMatch(/done/);

        const pid = Number(fs.readFileSync(path.join(c.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
        await c.stop('fast');
        const stopped = await c.controlData();
        expect(stopped.state).toBe('shut down');
        expect(stopped.redoLsn).toBe(stopped.checkpointLsn); // a shutdown checkpoint
        expect(processRunning(pid)).toBe(false); // the postmaster is gone

        await c.start(); // restarts on a (possibly new) free port
        expect(await c.sql('postgres', 'SELECT count(*) FROM x')).toEqual([['1000']]);
      } finally {
        await c.destroy();
      }
      expect(fs.existsSync(c.rootDir)).toBe(false);
    },
    120_000,
  );
});

/** Whether a process exists and is not a zombie (a container's init may not reap the postmaster). */
function processRunning(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Pages of one relation's main fork in final/, read directly. */
function readRelPage(fx: PgFixture, rel: PgRelation, blkno: number): Buffer {
  const fd = fs.openSync(path.join(fx.finalDir, rel.path), 'r');
  try {
    const b = Buffer.alloc(BLCKSZ);
    expect(fs.readSync(fd, b, 0, BLCKSZ, blkno * BLCKSZ)).toBe(BLCKSZ);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

function rel(fx: PgFixture, relname: string, dbName = 'postgres'): PgRelation {
  const r = fx.relations.find((x) => x.relname === relname && x.dbName === dbName);
  if (!r) throw new Error(`no relation ${relname} in ${dbName}`);
  return r;
}

function lineCount(page: Buffer): number {
  return (readPageHeader(page).lower - 24) / 4;
}

function lp(page: Buffer, off: number): { pos: number; off: number; flags: number; len: number } {
  const pos = 24 + (off - 1) * 4;
  const v = page.readUInt32LE(pos);
  return { pos, off: v & 0x7fff, flags: (v >>> 15) & 3, len: v >>> 17 };
}

/** First page (from block 1) whose line pointers 1 and 2 are both LP_NORMAL and that has free space. */
function findPage(fx: PgFixture, r: PgRelation, ok: (p: Buffer) => boolean): { page: Buffer; blkno: number } {
  const blocks = fs.statSync(path.join(fx.finalDir, r.path)).size / BLCKSZ;
  for (let b = 1; b < blocks; b++) {
    const page = readRelPage(fx, r, b);
    if (lineCount(page) >= 2 && lp(page, 1).flags === LP_NORMAL && lp(page, 2).flags === LP_NORMAL && ok(page))
      return { page, blkno: b };
  }
  throw new Error(`no suitable page in ${r.relname}`);
}

describe('fixture "plain"', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    if (pg.ok) fx = await getPgFixture('plain');
  }, FIXTURE_TIMEOUT_MS);

  test.skipIf(!pg.ok)(`has base/, wal/, final/ and consistent LSNs${skipNote}`, async () => {
    for (const d of [fx.baseDir, fx.finalDir]) expect(fs.existsSync(path.join(d, 'global', 'pg_control'))).toBe(true);
    const baseCtl = await readControlData(fx.baseDir);
    const finalCtl = await readControlData(fx.finalDir);
    expect(baseCtl.state).toBe('shut down');
    expect(finalCtl.state).toBe('shut down');
    expect(baseCtl.checkpointLsn).toBe(fx.base.checkpointLsn);
    expect(finalCtl.checkpointLsn).toBe(fx.final.checkpointLsn);
    expect(baseCtl.systemIdentifier).toBe(fx.systemIdentifier);
    expect(fx.base.redoLsn).toBe(fx.base.checkpointLsn);
    expect(fx.final.redoLsn).toBe(fx.final.checkpointLsn);
    // The end of each checkpoint record: after its start by at least its length, MAXALIGNed.
    for (const c of [fx.base, fx.final]) {
      expect(c.checkpointEndLsn - c.checkpointLsn).toBeGreaterThanOrEqual(BigInt(c.checkpointRecordLength));
      expect(c.checkpointEndLsn % 8n).toBe(0n);
    }
    expect(fx.final.checkpointLsn).toBeGreaterThan(fx.base.checkpointEndLsn);
    expect(fx.finalEndLsn).toBe(fx.final.checkpointEndLsn);
    expect(fx.walBytes).toBe(Number(fx.finalEndLsn - fx.base.checkpointEndLsn));
    // Every page of final/ is as of the end LSN, and the workload wrote pages after the base.
    expect(fx.maxPageLsn.lsn).toBeLessThanOrEqual(fx.finalEndLsn);
    expect(fx.maxPageLsn.lsn).toBeGreaterThan(fx.base.checkpointEndLsn);
    // wal/ holds every segment from the base checkpoint's to the final one's.
    const segName = (lsn: bigint): string => {
      const seg = lsn / BigInt(fx.walSegmentSize);
      return `${'00000001'}${(seg / 256n).toString(16).toUpperCase().padStart(8, '0')}${(seg % 256n).toString(16).toUpperCase().padStart(8, '0')}`;
    };
    const have = new Set(fs.readdirSync(fx.walDir));
    for (let lsn = fx.base.checkpointLsn; lsn < fx.finalEndLsn; lsn += BigInt(fx.walSegmentSize)) {
      expect(have.has(segName(lsn))).toBe(true);
    }
    expect(have.has(segName(fx.finalEndLsn - 1n))).toBe(true);
    expect(fx.walFiles).toEqual([...have].sort());
  });

  test.skipIf(!pg.ok)(`lists the relations and databases the workload made, with their AM and files${skipNote}`, () => {
    expect(fx.settings.wal_compression).toBe('off');
    expect(fx.dataChecksums).toBe(false);
    const names = fx.databases.map((d) => d.name);
    expect(names).toEqual(expect.arrayContaining(['postgres', 'template0', 'template1', 'db_wal_log', 'db_file_copy']));
    expect(rel(fx, 'pgbench_accounts')).toMatchObject({ am: 'heap', relkind: 'r', relpersistence: 'p' });
    expect(rel(fx, 'pgbench_accounts_pkey')).toMatchObject({ am: 'btree', relkind: 'i' });
    expect(rel(fx, 'seq_a')).toMatchObject({ am: '', relkind: 'S' });
    expect(rel(fx, 'unlogged_t').relpersistence).toBe('u');
    expect(rel(fx, 'w', 'db_wal_log').am).toBe('heap');
    expect(rel(fx, 'w', 'db_file_copy').am).toBe('heap');
    expect(fx.relations.some((r) => r.relname === 'drop_me')).toBe(false);
    const toastOfToasty = fx.relations.filter((r) => r.relkind === 't' && r.dbName === 'postgres');
    expect(toastOfToasty.length).toBeGreaterThan(0);
    // Every permanent relation's main fork exists in final/ where the catalog says.
    for (const r of fx.relations.filter((x) => x.relpersistence === 'p')) {
      expect(fs.existsSync(path.join(fx.finalDir, r.path)), r.path).toBe(true);
    }
    const disk = fixtureDiskBytes(fx);
    console.log(
      `fixture plain: built in ${fx.timings.total} s (${JSON.stringify(fx.timings)}); WAL ${(fx.walBytes / 1e6).toFixed(1)} MB ` +
        `from ${formatLsn(fx.base.checkpointEndLsn)} to ${formatLsn(fx.finalEndLsn)} in ${fx.walFiles.length} segments; ` +
        `on disk base ${(disk.base / 1e6).toFixed(0)} MB, final ${(disk.final / 1e6).toFixed(0)} MB`,
    );
  });

  test.skipIf(!pg.ok)(
    `heap mask: tuple changes survive masking, hint bits / pd_lsn / unused space do not${skipNote}`,
    () => {
      const r = rel(fx, 'pgbench_accounts');
      const { page, blkno } = findPage(fx, r, (p) => readPageHeader(p).upper - readPageHeader(p).lower >= 8);
      expect(classifyPageHeuristic(page)).toBe('heap');
      const masked = heapMask(page, blkno);
      const same = (p: Buffer): boolean => heapMask(p, blkno).equals(masked);
      const edit = (f: (p: Buffer) => void): Buffer => {
        const p = Buffer.from(page);
        f(p);
        return p;
      };
      const t1 = lp(page, 1);
      const hoff = page[t1.off + 22];
      // Real changes: a data byte, xmin, the line pointer's flags, a removed item.
      expect(
        same(
          edit((p) => {
            p[t1.off + hoff] ^= 0x01;
          }),
        ),
      ).toBe(false);
      expect(
        same(
          edit((p) => {
            p.writeUInt32LE(p.readUInt32LE(t1.off) + 1, t1.off);
          }),
        ),
      ).toBe(false);
      expect(
        same(
          edit((p) => {
            p.writeUInt32LE(((p.readUInt32LE(t1.pos) & ~(3 << 15)) | (LP_DEAD << 15)) >>> 0, t1.pos);
          }),
        ),
      ).toBe(false);
      expect(
        same(
          edit((p) => {
            p.writeUInt16LE(p.readUInt16LE(12) - 4, 12);
          }),
        ),
      ).toBe(false);
      // Hints and bookkeeping: pd_lsn, pd_checksum, pd_prune_xid, PD_ALL_VISIBLE/PAGE_FULL/HAS_FREE_LINES,
      // xmax hint bits, t_cid, unused space between pd_lower and pd_upper.
      const hints = edit((p) => {
        p.writeUInt32LE(0xdeadbeef, 0);
        p.writeUInt32LE(0x12345678, 4);
        p.writeUInt16LE(0xabcd, 8);
        p.writeUInt16LE(p.readUInt16LE(10) ^ 0x0007, 10);
        p.writeUInt32LE(4242, 20);
        p.writeUInt16LE(p.readUInt16LE(t1.off + 20) ^ 0x0c00, t1.off + 20); // HEAP_XMAX_COMMITTED | HEAP_XMAX_INVALID
        p.writeUInt32LE(77, t1.off + 8); // t_cid
        const h = readPageHeader(p);
        p.fill(0x5a, h.lower, h.upper);
      });
      expect(hints.equals(page)).toBe(false);
      expect(same(hints)).toBe(true);
    },
  );

  test.skipIf(!pg.ok)(
    `btree mask: item changes survive masking, LP_DEAD / BTP_HAS_GARBAGE / cycle id / pd_lsn / unused space do not${skipNote}`,
    () => {
      const r = rel(fx, 'pgbench_accounts_pkey');
      const { page, blkno } = findPage(fx, r, (p) => {
        const h = readPageHeader(p);
        return h.special === BLCKSZ - 16 && (p.readUInt16LE(h.special + 12) & 1) === 1 && h.upper - h.lower >= 8;
      });
      expect(classifyPageHeuristic(page)).toBe('btree');
      const masked = btreeMask(page, blkno);
      const same = (p: Buffer): boolean => btreeMask(p, blkno).equals(masked);
      const edit = (f: (p: Buffer) => void): Buffer => {
        const p = Buffer.from(page);
        f(p);
        return p;
      };
      const special = readPageHeader(page).special;
      const item = lp(page, 2);
      // Real changes: a key byte of an index tuple (after its 8-byte IndexTupleData header), a removed
      // item, the right-link.
      expect(
        same(
          edit((p) => {
            p[item.off + 8] ^= 0x01;
          }),
        ),
      ).toBe(false);
      expect(
        same(
          edit((p) => {
            p.writeUInt16LE(p.readUInt16LE(12) - 4, 12);
          }),
        ),
      ).toBe(false);
      expect(
        same(
          edit((p) => {
            p.writeUInt32LE(p.readUInt32LE(special + 4) + 1, special + 4);
          }),
        ),
      ).toBe(false);
      const hints = edit((p) => {
        p.writeUInt32LE(0xdeadbeef, 0);
        p.writeUInt16LE(0xabcd, 8);
        p.writeUInt32LE(((p.readUInt32LE(item.pos) & ~(3 << 15)) | (LP_DEAD << 15)) >>> 0, item.pos);
        p.writeUInt16LE(p.readUInt16LE(special + 12) | 0x40 | 0x20, special + 12); // BTP_HAS_GARBAGE | BTP_SPLIT_END
        p.writeUInt16LE(0x1234, special + 14); // btpo_cycleid
        const h = readPageHeader(p);
        p.fill(0xa5, h.lower, h.upper);
      });
      expect(hints.equals(page)).toBe(false);
      expect(same(hints)).toBe(true);
    },
  );

  test.skipIf(!pg.ok)(
    `PostgreSQL's own replay (replay/) equals final/ after masks, except where known${skipNote}`,
    async () => {
      await checkReplay(fx);
    },
  );

  test.skipIf(!pg.ok)(`comparer: final/ against itself is 100 % equal raw, sizes equal${skipNote}`, async () => {
    const report = await compareWithDataDir(
      fx.finalDir,
      dataDirPageSource(fx.finalDir),
      dataDirSizeSource(fx.finalDir),
      {
        relations: fx.relations,
        sourceRelations: dataDirRelations(fx.finalDir),
      },
    );
    console.log(`final vs final:\n${formatCompareReport(report)}`);
    expect(report.ok).toBe(true);
    expect(report.mismatchCount).toBe(0);
    expect(report.pages.compared).toBeGreaterThan(1000);
    expect(report.pages.equalRaw).toBe(report.pages.compared);
    expect(report.byAm.heap.compared).toBeGreaterThan(0);
    expect(report.byAm.btree.compared).toBeGreaterThan(0);
    expect(report.byAm.vm.compared).toBeGreaterThan(0);
    expect(report.byAm.sequence.compared).toBeGreaterThan(0);
    expect(report.sizes.different).toBe(0);
    expect(report.sizes.compared).toBeGreaterThan(100);
    expect(report.skipped.fsmForks).toBeGreaterThan(0);
    expect(report.skipped.unloggedForks).toBeGreaterThan(0); // unlogged_t and its index
    expect(report.skipped.initForks).toBeGreaterThan(0);
  });

  test.skipIf(!pg.ok)(`comparer: base/ (older) against final/ reports differences${skipNote}`, async () => {
    const report = await compareWithDataDir(fx.finalDir, dataDirPageSource(fx.baseDir), dataDirSizeSource(fx.baseDir), {
      relations: fx.relations,
      sourceRelations: dataDirRelations(fx.baseDir),
      maxMismatches: 5,
    });
    console.log(`base vs final:\n${formatCompareReport(report)}`);
    expect(report.ok).toBe(false);
    expect(report.pages.different).toBeGreaterThan(0);
    expect(report.byAm.heap.different).toBeGreaterThan(0);
    const kinds = new Set(report.mismatches.map((m) => m.kind));
    expect(report.mismatchCount).toBeGreaterThan(report.mismatches.length);
    expect(report.mismatches.length).toBe(5);
    expect(kinds.size).toBeGreaterThan(0);
    // pgbench_accounts changed (pgbench, DELETE, VACUUM): its pages differ even after heap_mask.
    const accounts = rel(fx, 'pgbench_accounts');
    const only = await compareWithDataDir(fx.finalDir, dataDirPageSource(fx.baseDir), dataDirSizeSource(fx.baseDir), {
      relations: fx.relations,
      filter: (r) =>
        r.relNumber === accounts.relNumber &&
        r.dbOid === accounts.dbOid &&
        (r.forkNum === MAIN_FORKNUM || r.forkNum === VISIBILITYMAP_FORKNUM),
    });
    expect(only.byAm.heap.different).toBeGreaterThan(0);
    const first = only.mismatches.find((m) => m.kind === 'content');
    expect(first?.offset).toBeGreaterThanOrEqual(0);
    expect(first?.key?.relNumber).toBe(accounts.relNumber);
  });
});

/**
 * The reference run of postgres-wal.md §5a, made by every fixture build: PostgreSQL itself replays
 * wal/ on base/ (replay/). After the masks its heap and btree pages equal final/ (the masks hide
 * nothing PostgreSQL's replay gets right) and many needed them (the masks are not idle). Where it
 * differs, it does so only in the two known places: sequence pages (nextval() without WAL) and VM
 * pages of the CREATE DATABASE wal_log database (PG 15 logs those copies without the VM bits).
 */
async function checkReplay(fx: PgFixture): Promise<void> {
  const r = fx.replayVsFinal;
  console.log(
    `PostgreSQL's replay (${fx.variant}) vs final:\n${formatCompareReport({ ...r, mismatches: r.mismatches.slice(0, 5) })}`,
  );
  expect(fs.existsSync(path.join(fx.replayDir, 'global', 'pg_control'))).toBe(true);
  expect((await readControlData(fx.replayDir)).checkpointLsn).toBe(fx.final.checkpointLsn);
  expect(r.byAm.heap.different).toBe(0);
  expect(r.byAm.btree.different).toBe(0);
  expect(r.byAm.heap.equalMasked).toBeGreaterThan(0);
  expect(r.byAm.btree.equalMasked).toBeGreaterThan(0);
  expect(r.pdLsnDiffered).toBe(0);
  expect(r.sizes.different).toBe(0);
  const walLogDb = fx.databases.find((d) => d.name === 'db_wal_log')?.oid;
  const unexplained = r.mismatches.filter(
    (m) => !(m.kind === 'content' && (m.am === 'sequence' || (m.am === 'vm' && m.rel.dbOid === walLogDb))),
  );
  expect(unexplained).toEqual([]);
  // With replay/ as the alternate reference, a source equal to replay/ passes against final/.
  const replayPages = dataDirPageSource(fx.replayDir);
  const report = await compareWithDataDir(fx.finalDir, replayPages, dataDirSizeSource(fx.replayDir), {
    relations: fx.relations,
    alsoAccept: replayPages,
  });
  expect(report.ok, formatCompareReport(report)).toBe(true);
  expect(report.pages.equalAlternate).toBe(r.mismatchCount);
}

describe.each(FIXTURE_VARIANTS.filter((v) => v !== 'plain'))('fixture "%s"', (variant) => {
  let fx: PgFixture;
  beforeAll(async () => {
    if (pg.ok) fx = await getPgFixture(variant);
  }, FIXTURE_TIMEOUT_MS);

  test.skipIf(!pg.ok)(
    `builds with the variant's settings, and final/ equals itself through the comparer${skipNote}`,
    async () => {
      expect(fx.variant).toBe(variant);
      expect(fx.dataChecksums).toBe(variant === 'checksums');
      expect(fx.settings.data_checksums).toBe(variant === 'checksums' ? 'on' : 'off');
      expect(fx.settings.wal_compression).toBe(variant === 'lz4' ? 'lz4' : 'off');
      expect(fx.settings.wal_consistency_checking).toBe(variant === 'consistency' ? 'heap,heap2,btree' : '');
      expect(fx.maxPageLsn.lsn).toBeLessThanOrEqual(fx.finalEndLsn);
      expect(fx.final.checkpointLsn).toBeGreaterThan(fx.base.checkpointEndLsn);
      const report = await compareWithDataDir(
        fx.finalDir,
        dataDirPageSource(fx.finalDir),
        dataDirSizeSource(fx.finalDir),
        { relations: fx.relations },
      );
      expect(report.ok).toBe(true);
      expect(report.pages.equalRaw).toBe(report.pages.compared);
      const disk = fixtureDiskBytes(fx);
      console.log(
        `fixture ${variant}: built in ${fx.timings.total} s (${JSON.stringify(fx.timings)}); WAL ${(fx.walBytes / 1e6).toFixed(1)} MB ` +
          `in ${fx.walFiles.length} segments; on disk base ${(disk.base / 1e6).toFixed(0)} MB, final ${(disk.final / 1e6).toFixed(0)} MB`,
      );
    },
  );
});
