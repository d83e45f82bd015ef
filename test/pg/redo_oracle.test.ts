/**
 * The per-record oracle for heap and heap2 (issue 14, point 6): the `consistency` fixture's WAL
 * (wal_consistency_checking = 'heap,heap2,btree': every such record carries the after-image of each
 * page it touched) redone block by block from the base data directory by both cores, every redone
 * page compared with its image after PostgreSQL's masks (test/helpers/pg_redo_oracle.ts). Counts by
 * record type go to the test output (btree records are redone and checked too; the btree oracle
 * proper is nbtree_oracle_pg.test.ts). A record Strata cannot redo would continue from its image and
 * be counted as unsupported; every record type that is redone must match every image, and the
 * cores must agree on every record. Then the plain and checksums fixtures, redone to their final
 * LSN, against PostgreSQL's files.
 */
import { describe, expect, it } from 'vitest';
import { pgAvailability } from '../helpers/pg_cluster';
import { getPgFixture } from '../helpers/pg_fixture';
import { NATIVE_WANTED } from '../helpers/pg_native';
import { RedoOracle, compareWithFinal, formatOracleReport } from '../helpers/pg_redo_oracle';
import type { FixtureVariant } from '../helpers/pg_fixture';

const pg = pgAvailability();
/** Building the fixture (first run) plus one pass over ≈ 370 MB of WAL. */
const ORACLE_TIMEOUT_MS = 15 * 60 * 1000;

describe('per-record redo oracle (wal_consistency_checking images)', () => {
  it.skipIf(!pg.ok)(`heap, heap2 (and btree) records redo to their images, native ≡ TS${pg.ok ? '' : ` — skipped: ${pg.reason}`}`, async () => {
    const fx = await getPgFixture('consistency');
    const oracle = new RedoOracle({
      baseDir: fx.baseDir,
      walDir: fx.walDir,
      startLsn: fx.base.checkpointLsn,
      endLsn: fx.finalEndLsn,
      clusterFlags: (fx.dataChecksums ? 1 : 0) | (fx.walLogHints ? 2 : 0),
      cores: NATIVE_WANTED ? ['native', 'ts'] : ['ts'],
      decoder: NATIVE_WANTED ? 'native' : 'ts',
    });
    const report = await oracle.run();
    console.log(`per-record oracle (${fx.variant}):\n${formatOracleReport(report)}`);
    for (const m of report.mismatches) console.log(`  ${m.type} at ${m.lsn.toString(16)} ${m.key}: ${m.what}`);
    expect(report.coreDisagreements).toEqual([]);
    expect(report.mismatches).toEqual([]);
    const checked = (t: string): number => report.byType.get(t)?.checked ?? 0;
    for (const t of ['Heap/INSERT', 'Heap/HOT_UPDATE', 'Heap/UPDATE', 'Heap/DELETE', 'Heap/LOCK', 'Heap2/PRUNE', 'Heap2/VACUUM', 'Heap2/VISIBLE']) {
      expect(checked(t), `${t} compared with images`).toBeGreaterThan(0);
    }
    // Negative control: the masks leave what these records change visible, so equality means something.
    for (const t of ['Heap/INSERT', 'Heap/UPDATE', 'Heap/DELETE', 'Heap2/PRUNE']) {
      expect(report.byType.get(t)!.changed, `${t}: pages the record visibly changed`).toBeGreaterThan(0.9 * checked(t));
    }
    for (const [t, c] of report.byType) {
      if (t.startsWith('Heap')) expect(c.unsupported, `${t} unsupported`).toBe(0);
    }
  }, ORACLE_TIMEOUT_MS);

  // Without per-record images, the pages at the end: every heap, btree and VM page the WAL touched, redone
  // from base/ through the whole run, against final/ (checksums: pd_checksum recomputed, VISIBLE
  // bumps the heap page's LSN).
  it.skipIf(!pg.ok).each(['plain', 'checksums'] as FixtureVariant[])(`%s: heap, btree and VM pages at the final LSN equal PostgreSQL's files${pg.ok ? '' : ` — skipped: ${pg.reason}`}`, async (variant) => {
    const fx = await getPgFixture(variant);
    const oracle = new RedoOracle({
      baseDir: fx.baseDir, walDir: fx.walDir, startLsn: fx.base.checkpointLsn, endLsn: fx.finalEndLsn,
      clusterFlags: (fx.dataChecksums ? 1 : 0) | (fx.walLogHints ? 2 : 0),
      cores: NATIVE_WANTED ? ['native', 'ts'] : ['ts'], decoder: NATIVE_WANTED ? 'native' : 'ts',
    });
    const report = await oracle.run();
    const cmp = compareWithFinal(oracle, fx.finalDir, fx.replayDir, fx.relations);
    console.log(`final pages (${variant}): heap ${cmp.heapEqual}/${cmp.heapPages} equal after heap_mask, ` +
      `btree ${cmp.btreeEqual}/${cmp.btreePages} after btree_mask, ` +
      `VM ${cmp.vmEqual}/${cmp.vmPages} equal raw (+${cmp.vmEqualToReplay} equal to PostgreSQL's replay), ${cmp.skipped} gone by the end\n` +
      `${formatOracleReport(report)}`);
    expect(report.coreDisagreements).toEqual([]);
    expect(report.mismatches).toEqual([]);
    expect(cmp.mismatches).toEqual([]);
    expect(cmp.heapPages).toBeGreaterThan(100);
    expect(cmp.btreePages).toBeGreaterThan(100);
    expect(cmp.vmPages).toBeGreaterThan(0);
  }, ORACLE_TIMEOUT_MS);
});
