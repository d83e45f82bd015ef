/**
 * Issue 14's whole-database oracle, through the public API on both cores: import a real
 * PostgreSQL 15 data directory (base/), ingest the WAL its workload wrote (pgbench plus a
 * maintenance mix), then rebuild every page of every main and visibility-map fork at the end LSN
 * and compare with PostgreSQL's own files (final/): heap and btree pages after PostgreSQL's masks,
 * VM pages raw, every relation size equal. Where PostgreSQL's own replay of the same WAL differs
 * from final/ (sequence pages advanced without WAL, the VM pages CREATE DATABASE … wal_log logs
 * as holes), a page equal to that replay is accepted: no WAL consumer can do better there, and the
 * report counts those pages. Three cluster variants: plain, data checksums, wal_compression=lz4.
 * The same timelines also answer for the rest of a data directory: SLRU pages, pg_twophase files,
 * relation maps and pg_control's fields equal base/ at the import LSN and final/ at the end.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { isStrataError, Repository, type Timeline } from '../../lib';
import { pgAvailability } from '../helpers/pg_cluster';
import { compareWithDataDir, dataDirPageSource, formatCompareReport } from '../helpers/pg_compare';
import { type FixtureVariant, getPgFixture } from '../helpers/pg_fixture';
import { IMPLEMENTATIONS } from '../helpers/cores';
import { compareWithDataDir as compareStateWithDataDir } from '../helpers/pg_state_check';
import { timelineImpl } from '../../lib/timeline';

const pg = pgAvailability();
const skipNote = pg.ok ? '' : ` — skipped: ${pg.reason}`;
const VARIANTS: FixtureVariant[] = ['plain', 'checksums', 'lz4'];
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

async function pageOrNull(tl: Timeline, key: Parameters<Timeline['getPage']>[0], lsn: bigint): Promise<Buffer | null> {
  try {
    return await tl.getPage(key, lsn);
  } catch (e) {
    if (isStrataError(e, 'PAGE_NOT_FOUND')) return null;
    throw e;
  }
}

async function sizeOrNull(tl: Timeline, rel: Parameters<Timeline['getRelSize']>[0], lsn: bigint): Promise<number | null> {
  try {
    return await tl.getRelSize(rel, lsn);
  } catch (e) {
    if (isStrataError(e, 'REL_NOT_FOUND')) return null;
    throw e;
  }
}

describe.each(VARIANTS)('whole-database oracle against PostgreSQL 15 (%s cluster)', (variant) => {
  for (const impl of IMPLEMENTATIONS) {
    test.skipIf(!pg.ok)(`${impl} core: import, ingest the workload's WAL, every page and size equals PostgreSQL's${skipNote}`, async () => {
      const fx = await getPgFixture(variant);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-oracle-${variant}-${impl}-`));
      dirs.push(dir);
      const repo = await Repository.open(dir, { implementation: impl });
      try {
        const tl = await repo.createTimeline({ tenantId: 'pg', timelineId: 'main' });
        const imported = await tl.importPgDatadir(fx.baseDir);
        expect(imported.lsn).toBe(fx.base.checkpointEndLsn);
        expect(imported.pages).toBeGreaterThan(100);
        const ingested = await tl.ingestPgWal(fx.walDir);
        expect(ingested.endLsn).toBe(fx.finalEndLsn);
        expect(tl.lastRecordLsn).toBe(fx.finalEndLsn);
        expect(ingested.unsupported).toEqual({});
        await tl.flush();
        const lsn = fx.finalEndLsn;
        const report = await compareWithDataDir(
          fx.finalDir,
          (key) => pageOrNull(tl, key, lsn),
          (rel) => sizeOrNull(tl, rel, lsn),
          {
            relations: fx.relations,
            alsoAccept: dataDirPageSource(fx.replayDir),
            sourceRelations: async () => (await tl.listRelations(lsn)).map(({ spcOid, dbOid, relNumber, forkNum }) => ({ spcOid, dbOid, relNumber, forkNum })),
          },
        );
        process.stdout.write(`[${variant}/${impl}] ${ingested.records} records, ${ingested.blocks} blocks\n${formatCompareReport(report)}\n`);
        expect(report.mismatches).toEqual([]);
        expect(report.ok).toBe(true);
        expect(report.pages.compared).toBeGreaterThan(1000);
        expect(report.byAm.heap.compared).toBeGreaterThan(500);
        expect(report.byAm.btree.compared).toBeGreaterThan(100);
        expect(report.byAm.vm.compared).toBeGreaterThan(0);
        expect(report.pdLsnDiffered).toBe(0);
        expect(report.sizes.different).toBe(0);
        // Every alternate-equal page is one PostgreSQL's own replay also gets "wrong".
        expect(report.pages.equalAlternate).toBeLessThanOrEqual(fx.replayVsFinal.mismatchCount);
        // What PostgreSQL needs to start besides pages (SLRUs, pg_twophase, relation maps, pg_control):
        // as base/ at the import, as final/ at the end.
        expect(await compareStateWithDataDir(timelineImpl(tl), fx.base.checkpointEndLsn, fx.baseDir)).toEqual([]);
        expect(await compareStateWithDataDir(timelineImpl(tl), lsn, fx.finalDir)).toEqual([]);
      } finally {
        await repo.close();
      }
    });
  }
});
