/**
 * Issue 14's per-record oracle end to end, and the native ≡ TS differential on real WAL: a cluster
 * run with wal_consistency_checking = 'heap,heap2,btree' logs, for every such record, an image of
 * each page it touched after the change. Its data directory is imported and its WAL ingested into
 * one repository per core through the public API; then, for every record and every block with such
 * an image, the page each core returns at the record's end LSN must equal the other core's byte for
 * byte and the image after PostgreSQL's masks (heap_mask / btree_mask; visibility-map pages
 * everything but pd_lsn and pd_checksum, which the image predates). Counts by record type go to the
 * test output. (test/pg/redo_oracle.test.ts and nbtree_oracle.test.ts check the same records at the
 * redo level, one block at a time.)
 *
 * Every record is read through the native core. The TS core reads every STRATA_RECORD_ORACLE_STRIDE-th
 * record (default 4: its reads cost ≈ 3× the native core's and would make this the suite's longest
 * file), starting at a random offset that the output names; STRATA_RECORD_ORACLE_STRIDE=1 reads
 * every record through both, and STRATA_RECORD_ORACLE_OFFSET replays one run's sample.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { Repository, type Timeline } from '../../lib';
import { createWalDecoder } from '../../lib/core/pg_decoder';
import { pgRmgrInfoName } from '../../lib/core/pg_decoder';
import { decodedRecords } from '../../lib/pg/wal_record';
import { walChunks } from '../../lib/pg/wal_source';
import { IMPLEMENTATIONS } from '../helpers/cores';
import { pgAvailability } from '../helpers/pg_cluster';
import { getPgFixture } from '../helpers/pg_fixture';
import { btreeMask, heapMask } from '../helpers/pg_mask';

const pg = pgAvailability();
const skipNote = pg.ok ? '' : ` — skipped: ${pg.reason}`;
const XLR_CHECK_CONSISTENCY = 0x02;
const RM_HEAP2 = 9;
const RM_HEAP = 10;
const RM_BTREE = 11;
const FSM_FORKNUM = 1;
const VM_FORKNUM = 2;
/** Bytes before this offset are pd_lsn and pd_checksum. */
const AFTER_LSN_AND_CHECKSUM = 10;
const DECODE_BATCH = 512;
const ORACLE_TIMEOUT_MS = 15 * 60 * 1000;
const DEFAULT_TS_STRIDE = 4;
const TS_STRIDE = Number(process.env.STRATA_RECORD_ORACLE_STRIDE ?? DEFAULT_TS_STRIDE);
const TS_OFFSET = Number(process.env.STRATA_RECORD_ORACLE_OFFSET ?? Math.floor(Math.random() * TS_STRIDE));

interface Counts { checked: number; changed: number; mismatches: number }

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

describe('per-record oracle through import, ingest and GetPage@LSN', () => {
  test.skipIf(!pg.ok)(`every heap/heap2/btree block with a consistency image reads back as it, on every core alike${skipNote}`, async () => {
    const fx = await getPgFixture('consistency');
    const timelines = new Map<string, Timeline>();
    const repos: Repository[] = [];
    try {
      for (const impl of IMPLEMENTATIONS) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-record-oracle-${impl}-`));
        dirs.push(dir);
        const repo = await Repository.open(dir, { implementation: impl });
        repos.push(repo);
        const tl = await repo.createTimeline({ tenantId: 'pg', timelineId: 'main' });
        await tl.importPgDatadir(fx.baseDir);
        const r = await tl.ingestPgWal(fx.walDir);
        expect(r.endLsn).toBe(fx.finalEndLsn);
        expect(r.unsupported).toEqual({});
        timelines.set(impl, tl);
      }
      const byType = new Map<string, Counts>();
      const mismatches: string[] = [];
      const disagreements: string[] = [];
      const decoder = createWalDecoder(IMPLEMENTATIONS.includes('native') ? 'native' : 'ts', { startLsn: fx.base.checkpointEndLsn });
      if (!Number.isSafeInteger(TS_STRIDE) || TS_STRIDE < 1 || !Number.isSafeInteger(TS_OFFSET) || TS_OFFSET < 0) {
        throw new Error(`STRATA_RECORD_ORACLE_STRIDE must be ≥ 1 and STRATA_RECORD_ORACLE_OFFSET ≥ 0: got ${TS_STRIDE}, ${TS_OFFSET}`);
      }
      // With only one core (STRATA_IMPL=ts) it reads every record.
      const sampled = timelines.size > 1 && TS_STRIDE > 1 ? new Set(['ts']) : new Set<string>();
      const readsBy = new Map<string, number>();
      let recordIndex = 0;
      const check = async (entries: Buffer, count: number): Promise<void> => {
        for (const rec of decodedRecords(entries, count)) {
          if ((rec.info & XLR_CHECK_CONSISTENCY) === 0 || (rec.rmid !== RM_HEAP && rec.rmid !== RM_HEAP2 && rec.rmid !== RM_BTREE)) continue;
          const type = pgRmgrInfoName(rec.rmid, rec.info);
          const c = byType.get(type) ?? { checked: 0, changed: 0, mismatches: 0 };
          byType.set(type, c);
          const blocks = rec.blocks().filter((b) => b.hasImage && !b.applyImage && b.forkNum !== FSM_FORKNUM);
          if (blocks.length === 0) continue;
          const keys = blocks.map((b) => ({ spcOid: b.spcOid, dbOid: b.dbOid, relNumber: b.relNumber, forkNum: b.forkNum, blockNum: b.blockNumber }));
          const pagesByCore = new Map<string, Buffer[]>();
          const index = recordIndex++;
          for (const [impl, tl] of timelines) {
            if (sampled.has(impl) && index % TS_STRIDE !== TS_OFFSET % TS_STRIDE) continue;
            pagesByCore.set(impl, await tl.getPages(keys, rec.endLsn));
            readsBy.set(impl, (readsBy.get(impl) ?? 0) + blocks.length);
          }
          // The negative control reads through the faster core: it checks the oracle, not a core.
          const before = await (timelines.get('native') ?? [...timelines.values()][0]).getPages(keys, rec.startLsn).catch(() => null);
          const [first, ...others] = [...pagesByCore.values()];
          blocks.forEach((b, i) => {
            const image = rec.image(b.index) as Buffer;
            const page = first[i];
            for (const o of others) if (!o[i].equals(page)) disagreements.push(`${type} at ${rec.endLsn.toString(16)} block ${b.blockNumber}`);
            c.checked++;
            // Equal pages (checked above) pass or fail the oracle alike: comparing the first is enough.
            const same = (a: Buffer, z: Buffer): boolean => b.forkNum === VM_FORKNUM
              ? a.subarray(AFTER_LSN_AND_CHECKSUM).equals(z.subarray(AFTER_LSN_AND_CHECKSUM))
              : (rec.rmid === RM_BTREE ? btreeMask(a, b.blockNumber).equals(btreeMask(z, b.blockNumber)) : heapMask(a, b.blockNumber).equals(heapMask(z, b.blockNumber)));
            if (!same(page, image)) {
              c.mismatches++;
              if (mismatches.length < 20) mismatches.push(`${type} at ${rec.endLsn.toString(16)} ${b.spcOid}/${b.dbOid}/${b.relNumber}.${b.forkNum}#${b.blockNumber}`);
            }
            if (before === null || !same(before[i], image)) c.changed++;
          });
        }
      };
      for await (const chunk of walChunks(fx.walDir, { startLsn: fx.base.checkpointEndLsn })) {
        decoder.feed(chunk);
        for (;;) {
          const batch = decoder.decode(DECODE_BATCH);
          await check(batch.entries, batch.count);
          if (batch.state !== 'full') break;
        }
      }
      decoder.finish();
      for (;;) {
        const batch = decoder.decode(DECODE_BATCH);
        await check(batch.entries, batch.count);
        if (batch.state !== 'full') break;
      }
      const lines = [...byType].sort(([a], [b]) => a.localeCompare(b)).map(([t, c]) => `  ${t.padEnd(26)} checked ${String(c.checked).padStart(6)}  changed ${String(c.changed).padStart(6)}  mismatches ${c.mismatches}`);
      const reads = [...readsBy].map(([impl, n]) => `${impl} ${n}`).join(', ');
      const sample = sampled.size > 0 ? `; ts reads records ≡ ${TS_OFFSET % TS_STRIDE} mod ${TS_STRIDE} (replay: STRATA_RECORD_ORACLE_OFFSET=${TS_OFFSET % TS_STRIDE})` : '';
      process.stdout.write(`per-record oracle through the engine (${[...timelines.keys()].join(' ≡ ')}; blocks read: ${reads}${sample}):\n${lines.join('\n')}\n`);
      expect(mismatches).toEqual([]);
      expect(disagreements).toEqual([]);
      // Every core read blocks; a sampled one about 1/stride of them.
      const allBlocks = [...byType.values()].reduce((n, c) => n + c.checked, 0);
      for (const impl of timelines.keys()) {
        const n = readsBy.get(impl) ?? 0;
        expect(n, impl).toBeGreaterThan(sampled.has(impl) ? allBlocks / TS_STRIDE / 2 : allBlocks - 1);
      }
      const checked = (t: string): number => byType.get(t)?.checked ?? 0;
      for (const t of ['Heap/INSERT', 'Heap/UPDATE', 'Heap/HOT_UPDATE', 'Heap/DELETE', 'Heap/LOCK', 'Heap2/PRUNE', 'Heap2/VACUUM', 'Heap2/VISIBLE',
        'Btree/INSERT_LEAF', 'Btree/SPLIT_L', 'Btree/SPLIT_R', 'Btree/DEDUP', 'Btree/VACUUM']) {
        expect(checked(t), t).toBeGreaterThan(0);
      }
      // Negative control: most checked pages differ from the page before the record once masked.
      for (const t of ['Heap/INSERT', 'Heap/DELETE', 'Btree/INSERT_LEAF']) expect(byType.get(t)!.changed, t).toBeGreaterThan(0.9 * checked(t));
    } finally {
      for (const r of repos) await r.close();
    }
  }, ORACLE_TIMEOUT_MS);
});
