/**
 * What ingest and reads do with WAL they cannot use (issue 14's acceptance): a corrupt byte in the
 * middle of the WAL is WAL_CORRUPT naming the record's LSN, with every record before it stored and
 * nothing after it; a record type Strata cannot redo (a hash index's) is stored and counted, and a
 * read of a page whose history holds one fails with WAL_UNSUPPORTED naming the type and LSN, while
 * the other pages read as ever. Both cores.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { formatLsn, isStrataError, parseLsn, Repository } from '../../lib';
import { IMPLEMENTATIONS } from '../helpers/cores';
import { PgCluster, pgAvailability } from '../helpers/pg_cluster';
import { getPgFixture } from '../helpers/pg_fixture';

const pg = pgAvailability();
const skipNote = pg.ok ? '' : ` — skipped: ${pg.reason}`;
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });
const SEGMENT = 16 * 2 ** 20;

function tmp(tag: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `strata-pgerr-${tag}-`));
  dirs.push(d);
  return d;
}

async function codeOf(p: Promise<unknown>): Promise<{ code: string | null; message: string }> {
  try {
    await p;
    return { code: null, message: '' };
  } catch (e) {
    return { code: (e as { code?: string }).code ?? null, message: (e as Error).message };
  }
}

describe.each(IMPLEMENTATIONS)('WAL that cannot be used (%s core)', (impl) => {
  test.skipIf(!pg.ok)(`a flipped byte in the middle of the WAL is WAL_CORRUPT at its record; nothing from it on is stored${skipNote}`, async () => {
    const fx = await getPgFixture('plain');
    const wal = path.join(tmp('wal'), 'wal');
    fs.cpSync(fx.walDir, wal, { recursive: true });
    // A byte in the middle of the second segment after the base: well inside the workload's WAL.
    const segFiles = fs.readdirSync(wal).sort();
    const baseSeg = Number(fx.base.checkpointEndLsn / BigInt(SEGMENT));
    const victim = segFiles.find((f) => parseInt(f.slice(16), 16) + parseInt(f.slice(8, 16), 16) * 256 === baseSeg + 1) as string;
    const file = path.join(wal, victim);
    const bytes = fs.readFileSync(file);
    const offset = SEGMENT / 2 + 1001;
    bytes[offset] ^= 0xff;
    fs.writeFileSync(file, bytes);
    const corruptAt = BigInt(baseSeg + 1) * BigInt(SEGMENT) + BigInt(offset);

    const repo = await Repository.open(tmp('repo'), { implementation: impl });
    try {
      const tl = await repo.createTimeline({ tenantId: 'pg', timelineId: 'main' });
      await tl.importPgDatadir(fx.baseDir);
      const r = await codeOf(tl.ingestPgWal(wal));
      expect(r.code).toBe('WAL_CORRUPT');
      const named = /at ([0-9A-F]+\/[0-9A-F]+)/.exec(r.message);
      expect(named, r.message).not.toBeNull();
      const recordLsn = parseLsn(named![1]);
      // The record named holds the flipped byte; everything before it is stored, nothing after.
      expect(recordLsn).toBeLessThanOrEqual(corruptAt);
      expect(corruptAt - recordLsn).toBeLessThan(BigInt(SEGMENT));
      expect(tl.lastRecordLsn).toBeLessThanOrEqual(recordLsn);
      expect(tl.lastRecordLsn).toBeGreaterThan(fx.base.checkpointEndLsn);
      // What was stored reads back: a later attempt from the good copy continues where it stopped.
      const more = await tl.ingestPgWal(fx.walDir);
      expect(more.endLsn).toBe(fx.finalEndLsn);
      expect(formatLsn(tl.lastRecordLsn)).toBe(formatLsn(fx.finalEndLsn));
    } finally {
      await repo.close();
    }
  });

  test.skipIf(!pg.ok)(`hash-index records are stored, counted, and their pages fail with WAL_UNSUPPORTED; other pages read${skipNote}`, async () => {
    const cluster = await PgCluster.create({});
    try {
      await cluster.start();
      await cluster.exec('postgres', 'CREATE TABLE h (id int, v text); CREATE INDEX h_hash ON h USING hash (id); CHECKPOINT;');
      await cluster.stop('fast');
      const base = path.join(tmp('base'), 'data');
      fs.cpSync(cluster.dataDir, base, { recursive: true });
      await cluster.start();
      await cluster.exec('postgres', "INSERT INTO h SELECT g, 'x' || g FROM generate_series(1, 500) g;");
      const rels = await cluster.relations('postgres');
      await cluster.stop('fast');
      const heap = rels.find((r) => r.relname === 'h')!;
      const index = rels.find((r) => r.relname === 'h_hash')!;

      const repo = await Repository.open(tmp('repo'), { implementation: impl });
      try {
        const tl = await repo.createTimeline({ tenantId: 'pg', timelineId: 'main' });
        await tl.importPgDatadir(base);
        const r = await tl.ingestPgWal(cluster.walDir);
        expect(r.unsupported['Hash/INSERT']).toBeGreaterThan(0);
        const heapPage = await tl.getPage({ spcOid: heap.spcOid, dbOid: heap.dbOid, relNumber: heap.relNumber, forkNum: 0, blockNum: 0 }, r.endLsn);
        expect(heapPage.readUInt16LE(14)).toBeGreaterThan(0); // pd_upper: an initialized heap page
        // Bucket pages take the inserts (block 0 is the metapage).
        let unsupported = 0;
        const nblocks = await tl.getRelSize({ spcOid: index.spcOid, dbOid: index.dbOid, relNumber: index.relNumber, forkNum: 0 }, r.endLsn);
        for (let b = 0; b < nblocks; b++) {
          try {
            await tl.getPage({ spcOid: index.spcOid, dbOid: index.dbOid, relNumber: index.relNumber, forkNum: 0, blockNum: b }, r.endLsn);
          } catch (e) {
            expect(isStrataError(e, 'WAL_UNSUPPORTED'), String(e)).toBe(true);
            expect((e as Error).message).toMatch(/Hash\/[A-Z_]+ at [0-9A-F]+\/[0-9A-F]+/);
            unsupported++;
          }
        }
        expect(unsupported).toBeGreaterThan(0);
      } finally {
        await repo.close();
      }
    } finally {
      await cluster.destroy();
    }
  });
});
