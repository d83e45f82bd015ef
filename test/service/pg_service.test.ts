/**
 * The page service on a PostgreSQL timeline (docs/PROTOCOL.md, "Page keys and PostgreSQL
 * relations"): ListRelations, GetRelSize, Exists and GetPage/GetPages of relation blocks answer
 * exactly what the Timeline answers, including PostgreSQL's rules (a block past the end is
 * PAGE_NOT_FOUND, a missing fork does not exist). Uses the cached pgbench fixture; skipped, with
 * the reason, where PostgreSQL 15 is not available.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Repository, StrataClient, type Timeline } from '../../lib';
import type { Server } from '../../lib/service/page_server';
import { describeEachCore } from '../helpers/cores';
import { tmpDir } from '../helpers/layers';
import { pgAvailability } from '../helpers/pg_cluster';
import { getPgFixture } from '../helpers/pg_fixture';
import { removeDir, startServer, codeOf } from '../helpers/service';

const pg = pgAvailability();
const skipNote = pg.ok ? '' : ` — skipped: ${pg.reason}`;

describeEachCore(`page service on a PostgreSQL timeline (%s core)${skipNote}`, (impl) => {
  let dir: string;
  let repo: Repository;
  let tl: Timeline;
  let server: Server;
  let client: StrataClient;

  beforeAll(async () => {
    if (!pg.ok) return;
    const fx = await getPgFixture('plain');
    dir = tmpDir(`svc-pg-${impl}`);
    repo = await Repository.open(dir, { implementation: impl });
    tl = await repo.createTimeline({ tenantId: 'pg', timelineId: 'main' });
    await tl.importPgDatadir(fx.baseDir);
    let port: number;
    ({ server, port } = await startServer(repo));
    client = await StrataClient.connect({ host: '127.0.0.1', port, tenantId: 'pg', timelineId: 'main' });
  }, 300_000);

  afterAll(async () => {
    if (!pg.ok) return;
    await client.close();
    await server.close();
    await repo.close();
    removeDir(dir);
  });

  it.skipIf(!pg.ok)('ListRelations, GetRelSize, Exists and relation blocks equal the Timeline\'s answers', async () => {
    const lsn = tl.lastRecordLsn;
    const rels = await client.listRelations(lsn);
    expect(rels).toEqual(await tl.listRelations(lsn));
    expect(rels.length).toBeGreaterThan(10);
    const db = rels.find((r) => r.dbOid !== 0)?.dbOid as number;
    expect(await client.listRelations(lsn, { dbOid: db })).toEqual(await tl.listRelations(lsn, { dbOid: db }));
    const withBlocks = rels.filter((r) => r.nblocks > 0).slice(0, 25);
    expect(withBlocks.length).toBeGreaterThan(5);
    for (const r of withBlocks) {
      const rel = { spcOid: r.spcOid, dbOid: r.dbOid, relNumber: r.relNumber, forkNum: r.forkNum };
      expect(await client.getRelSize(rel, lsn)).toBe(await tl.getRelSize(rel, lsn));
      expect(await client.exists(rel, lsn)).toBe(true);
      const blocks = [0, r.nblocks - 1].map((blockNum) => ({ ...rel, blockNum }));
      const got = await client.getPages(blocks, lsn);
      const want = await tl.getPages(blocks, lsn);
      expect(got.every((p, i) => p.equals(want[i]))).toBe(true);
      expect((await client.getPage(blocks[0], lsn)).equals(want[0])).toBe(true);
      // PostgreSQL's rule: a block at the relation's end does not exist.
      expect(await codeOf(client.getPage({ ...rel, blockNum: r.nblocks }, lsn))).toBe('PAGE_NOT_FOUND');
    }
    const missing = { spcOid: 1663, dbOid: db, relNumber: 4_000_000_000, forkNum: 0 };
    expect(await client.exists(missing, lsn)).toBe(false);
    expect(await codeOf(client.getRelSize(missing, lsn))).toBe('REL_NOT_FOUND');
    // The free-space map is not kept: it never exists (docs/POSTGRES.md).
    expect(await client.exists({ ...withBlocks[0], forkNum: 1 }, lsn)).toBe(false);
  }, 120_000);
});
