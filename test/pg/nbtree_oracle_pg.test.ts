/**
 * The per-record btree oracle against real PostgreSQL 15 (issue 14, point 6): every btree record of
 * WAL written with wal_consistency_checking is redone block by block on a running copy of its page,
 * in both cores, and compared with the after-image PostgreSQL logged, under btree_mask
 * (test/helpers/pg_btree_oracle.ts). Two WAL sources: the 'consistency' fixture (pgbench plus the
 * maintenance mix) and a small targeted workload for the btree records that mix does not write.
 * Counts by record type are printed; 0 mismatches, and the cores agree on every block.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { pgAvailability } from '../helpers/pg_cluster';
import { dataDirPageSource } from '../helpers/pg_compare';
import { getPgFixture, type PgFixture } from '../helpers/pg_fixture';
import { pgNative } from '../helpers/pg_native';
import {
  BTREE_OP_NAMES, formatBtreeOracleReport, getTargetedWal, runBtreeOracle, type BtreeOracleReport, type TargetedWal,
} from '../helpers/pg_btree_oracle';

const pg = pgAvailability();
const skip = pg.ok ? '' : ` — skipped: ${pg.reason}`;
const BUILD_TIMEOUT_MS = 600_000;

let fx: PgFixture;
let targeted: TargetedWal;
const reports: BtreeOracleReport[] = [];

beforeAll(async () => {
  if (!pg.ok) return;
  fx = await getPgFixture('consistency');
  targeted = await getTargetedWal();
}, BUILD_TIMEOUT_MS);

/** What must hold of any oracle run: nothing wrong, and real comparisons made. */
function expectClean(r: BtreeOracleReport): void {
  const text = formatBtreeOracleReport(r);
  expect(r.mismatchCount, text).toBe(0);
  expect(r.coreDisagreements, text).toEqual([]);
  expect(r.redoErrors, text).toEqual([]);
  expect(r.noStartPage, text).toEqual([]);
  expect(r.wrongLsn, text).toEqual([]);
  expect(r.controlsRun, text).toBeGreaterThan(0);
  expect(r.controlsCaught, text).toBe(r.controlsRun);
}

function compared(r: BtreeOracleReport, name: string): number {
  return r.byType.get(name)?.compared ?? 0;
}

describe('btree redo against PostgreSQL 15 (wal_consistency_checking images)', () => {
  test.skipIf(!pg.ok)(`every btree record of the consistency fixture equals PostgreSQL's image after btree_mask${skip}`, async () => {
    const r = await runBtreeOracle({
      walDir: fx.walDir, startLsn: fx.base.checkpointEndLsn, basePages: dataDirPageSource(fx.baseDir),
      clusterFlags: (fx.dataChecksums ? 1 : 0) | (fx.walLogHints ? 2 : 0), native: pgNative(),
    });
    reports.push(r);
    console.log(`btree oracle, consistency fixture:\n${formatBtreeOracleReport(r)}`);
    expectClean(r);
    for (const name of ['INSERT_LEAF', 'INSERT_UPPER', 'INSERT_POST', 'SPLIT_L', 'SPLIT_R', 'DEDUP', 'VACUUM', 'DELETE',
      'MARK_PAGE_HALFDEAD', 'UNLINK_PAGE', 'NEWROOT', 'META_CLEANUP']) {
      expect(compared(r, name), `${name} compared`).toBeGreaterThan(0);
    }
    expect(r.vacuumWithUpdates).toBeGreaterThan(0);
  });

  test.skipIf(!pg.ok)(`a targeted workload's btree records (fast root moves, posting list splits in page splits) equal the images${skip}`, async () => {
    const r = await runBtreeOracle({ walDir: targeted.walDir, startLsn: targeted.startLsn, clusterFlags: 0, native: pgNative() });
    reports.push(r);
    console.log(`btree oracle, targeted workload:\n${formatBtreeOracleReport(r)}`);
    expectClean(r);
    for (const name of ['INSERT_META', 'UNLINK_PAGE_META', 'INSERT_POST', 'SPLIT_L', 'SPLIT_R', 'DELETE', 'VACUUM']) {
      expect(compared(r, name), `${name} compared`).toBeGreaterThan(0);
    }
    expect(r.splitsWithPostingSplit).toBeGreaterThan(0);
    expect(r.deleteWithUpdates).toBeGreaterThan(0);
  });

  test.skipIf(!pg.ok)(`together the two runs compare every btree record type that changes a page${skip}`, () => {
    expect(reports.length).toBe(2);
    const missing = Object.values(BTREE_OP_NAMES).filter((n) => n !== 'REUSE_PAGE' && reports.every((r) => compared(r, n) === 0));
    expect(missing).toEqual([]);
    // REUSE_PAGE registers no block: it is seen, never redone.
    expect(reports.some((r) => (r.byType.get('REUSE_PAGE')?.records ?? 0) > 0)).toBe(true);
  });
});
