/**
 * Everything PostgreSQL needs to start, against real PostgreSQL 15 (docs/POSTGRES.md, "CLOG",
 * "Multixacts", "Two-phase state files", "Checkpoint and control state"), on both cores:
 *
 *   - the state workload (test/helpers/pg_state_fixture.ts: a pg_xact page boundary crossed by a
 *     200-subtransaction tree, 3 500 multixacts over several offsets and members pages, a multixact
 *     truncation, prepared transactions committed, rolled back and left open, NEXTOID), imported
 *     from base/ and ingested to the end: every pg_xact, offsets and members page, every
 *     pg_twophase file and pg_filenode.map equals final/'s byte for byte, and readClusterState
 *     equals pg_controldata of final/ field by field — and, just before the shutdown checkpoint
 *     record, already equals it for every counter the WAL carries
 *   - at the import LSN the same against base/
 *   - at intermediate LSNs, from pg_waldump's own descriptions: a transaction's status bits are
 *     "in progress" before its commit or abort record and final from its end on (checked against a
 *     model page built from pg_waldump), a multixact's offset and members appear with its
 *     CREATE_ID, a prepared transaction's state file exists exactly between PREPARE and its
 *     COMMIT/ROLLBACK PREPARED with a valid header and CRC
 *   - the TS and native cores give byte-identical answers everywhere
 *
 * The whole-database oracle (pg_oracle.test.ts) checks the same files and fields against base/ and
 * final/ of the plain, checksums and lz4 fixtures (pgbench, two-phase commit, CREATE DATABASE both
 * ways), on the timelines it builds anyway.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Repository, type Timeline } from '../../lib';
import { crc32c } from '../../lib/core/pg_decoder';
import type { ImplementationName } from '../../lib/core/core';
import type { TimelineImpl } from '../../lib/engine/timeline';
import { readClusterState, readSlruPages, readTwoPhaseFiles } from '../../lib/pg/pg_state';
import { slruPageKey } from '../../lib/pg/slru_records';
import { timelineImpl } from '../../lib/timeline';
import { IMPLEMENTATIONS, NATIVE_SKIP_NOTE, TS_ONLY } from '../helpers/cores';
import { pgAvailability, readControlData } from '../helpers/pg_cluster';
import {
  clogStatus, compareWithDataDir, controlFields, memberAt, setClogStatus, slruFiles, stateEvents, type StateEvent, stateSnapshot,
} from '../helpers/pg_state_check';
import { getStateFixture } from '../helpers/pg_state_fixture';

const pg = pgAvailability();
const skipNote = pg.ok ? '' : ` — skipped: ${pg.reason}`;
const dirs: string[] = [];
const repos: Repository[] = [];
afterAll(async () => {
  for (const r of repos) await r.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Every Nth plain commit is checked at its LSN; every tree, abort and prepared end is. */
const PLAIN_COMMIT_STRIDE = 997;
const MULTIXACT_STRIDE = 97;

/** Where the fixture is: base/, wal/, final/ and its LSNs. */
interface Source {
  baseDir: string;
  walDir: string;
  finalDir: string;
  baseEndLsn: bigint;
  finalCheckpointLsn: bigint;
  finalEndLsn: bigint;
}

async function ingested(src: Source, impl: ImplementationName): Promise<{ tl: Timeline; impl: TimelineImpl }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-pgstate-${impl}-`));
  dirs.push(dir);
  const repo = await Repository.open(dir, { implementation: impl });
  repos.push(repo);
  const tl = await repo.createTimeline({ tenantId: 'pg', timelineId: 'main' });
  const imported = await tl.importPgDatadir(src.baseDir);
  expect(imported.lsn).toBe(src.baseEndLsn);
  const r = await tl.ingestPgWal(src.walDir);
  expect(r.endLsn).toBe(src.finalEndLsn);
  return { tl, impl: timelineImpl(tl) };
}

/** One SLRU page at `lsn`, or undefined where it does not exist. */
async function slruPage(tl: TimelineImpl, slru: number, page: number, lsn: bigint): Promise<Buffer | undefined> {
  const { out, status } = await tl.getPagesWithStatus([slruPageKey(slru, page)], lsn);
  return status[0] === 0 ? Buffer.from(out) : undefined;
}

/** A pg_xact page at `lsn` (zeros when it does not exist there). */
async function clogPage(tl: TimelineImpl, page: number, lsn: bigint): Promise<Buffer> {
  return (await slruPage(tl, 0, page, lsn)) ?? Buffer.alloc(8192);
}

/**
 * Walks the transaction ends of the WAL in order over a model of pg_xact (base/'s pages, then
 * each end's bits set) and, at sampled ends, compares the page Strata returns just before the
 * record (the model before it) and right after it (the model after it), and that the xids were in
 * progress before.
 */
async function checkClogAlongWal(tl: TimelineImpl, src: Source, events: readonly StateEvent[]): Promise<number> {
  const model = slruFiles(src.baseDir, 0);
  let plain = 0;
  let checked = 0;
  for (const e of events) {
    if (e.kind === 'clog-zero') model.set(e.page, Buffer.alloc(8192));
    if (e.kind !== 'end') continue;
    const xids = [e.xid, ...e.subxacts];
    const sampled = e.subxacts.length > 0 || !e.committed || e.prepared || plain++ % PLAIN_COMMIT_STRIDE === 0;
    const pages = [...new Set(xids.map((x) => Math.floor(x / 32768)))];
    if (sampled) {
      for (const page of pages) {
        const before = await clogPage(tl, page, e.lsn);
        expect(before.equals(model.get(page) ?? Buffer.alloc(8192)), `pg_xact page ${page} before ${e.lsn}`).toBe(true);
      }
      for (const x of xids) expect(clogStatus(model.get(Math.floor(x / 32768)) ?? Buffer.alloc(8192), x), `xid ${x} in progress before its end`).toBe(0);
    }
    for (const x of xids) setClogStatus(model.get(Math.floor(x / 32768)) as Buffer, x, e.committed ? 1 : 2);
    if (sampled) {
      for (const page of pages) {
        const after = await clogPage(tl, page, e.next);
        expect(after.equals(model.get(page) as Buffer), `pg_xact page ${page} after the end at ${e.lsn}`).toBe(true);
      }
      checked++;
    }
  }
  return checked;
}

/** At sampled CREATE_IDs: the multixact's offset entry and members appear with the record, not before. */
async function checkMultixactsAlongWal(tl: TimelineImpl, events: readonly StateEvent[]): Promise<number> {
  const creates = events.filter((e): e is Extract<StateEvent, { kind: 'multixact' }> => e.kind === 'multixact');
  let checked = 0;
  for (let i = 0; i < creates.length; i++) {
    const e = creates[i];
    const straddles = (e.moff % 1636) + e.members.length > 1636;
    if (i % MULTIXACT_STRIDE !== 0 && i !== creates.length - 1 && !straddles) continue;
    const entry = await slruPage(tl, 1, Math.floor(e.mid / 2048), e.next);
    expect(entry?.readUInt32LE((e.mid % 2048) * 4), `offset of multixact ${e.mid}`).toBe(e.moff);
    for (let j = 0; j < e.members.length; j++) {
      const off = e.moff + j;
      const page = Math.floor(off / 1636);
      expect(memberAt(await slruPage(tl, 2, page, e.next) as Buffer, off), `member ${j} of multixact ${e.mid}`).toEqual(e.members[j]);
      const before = await slruPage(tl, 2, page, e.lsn);
      if (before !== undefined) expect(memberAt(before, off).xid, `member slot ${off} empty before multixact ${e.mid}`).toBe(0);
    }
    checked++;
  }
  return checked;
}

/** Each prepared transaction's state file exists from its PREPARE until its COMMIT/ROLLBACK PREPARED, with a valid header and CRC. */
async function checkTwoPhaseAlongWal(tl: TimelineImpl, events: readonly StateEvent[]): Promise<number> {
  let checked = 0;
  for (const e of events) {
    if (e.kind === 'prepare') {
      expect((await readTwoPhaseFiles(tl, e.lsn)).some((f) => f.xid === e.xid), `no state file for ${e.xid} before its PREPARE`).toBe(false);
      const file = (await readTwoPhaseFiles(tl, e.next)).find((f) => f.xid === e.xid);
      expect(file, `state file of ${e.xid} after its PREPARE`).toBeDefined();
      const b = (file as { bytes: Buffer }).bytes;
      expect(b.readUInt32LE(0)).toBe(0x57f94534); // TWOPHASE_MAGIC
      expect(b.readUInt32LE(4)).toBe(b.length); // total_len counts the CRC
      expect(b.readUInt32LE(8)).toBe(e.xid);
      expect(b.readInt32LE(28)).toBe(e.subxacts.length);
      expect(b.readUInt32LE(b.length - 4)).toBe(crc32c(b.subarray(0, b.length - 4)));
      checked++;
    } else if (e.kind === 'end' && e.prepared) {
      expect((await readTwoPhaseFiles(tl, e.lsn)).some((f) => f.xid === e.xid), `state file of ${e.xid} before its end`).toBe(true);
      expect((await readTwoPhaseFiles(tl, e.next)).some((f) => f.xid === e.xid), `state file of ${e.xid} after its end`).toBe(false);
      checked++;
    }
  }
  return checked;
}

describe('cluster state against PostgreSQL 15 (the state workload)', () => {
  let src: Source;
  let events: StateEvent[];
  const timelines = new Map<ImplementationName, TimelineImpl>();
  beforeAll(async () => {
    if (!pg.ok) return;
    src = await getStateFixture();
    events = stateEvents(src.walDir, src.baseEndLsn, src.finalEndLsn);
    for (const impl of IMPLEMENTATIONS) timelines.set(impl, (await ingested(src, impl)).impl);
  }, 600_000);

  for (const impl of IMPLEMENTATIONS) {
    test.skipIf(!pg.ok)(`${impl} core: at the import LSN every SLRU page, state file, relation map and pg_control field equals base/${skipNote}`, async () => {
      expect(await compareWithDataDir(timelines.get(impl) as TimelineImpl, src.baseEndLsn, src.baseDir)).toEqual([]);
    });

    test.skipIf(!pg.ok)(`${impl} core: at the end every SLRU page, state file, relation map and pg_control field equals final/${skipNote}`, async () => {
      expect(await compareWithDataDir(timelines.get(impl) as TimelineImpl, src.finalEndLsn, src.finalDir)).toEqual([]);
    });

    test.skipIf(!pg.ok)(`${impl} core: just before the shutdown checkpoint the WAL-tracked counters already equal final/'s${skipNote}`, async () => {
      const tl = timelines.get(impl) as TimelineImpl;
      const s = await readClusterState(tl, src.finalCheckpointLsn);
      const want = controlFields((await readControlData(src.finalDir)).raw);
      expect({ nextXid: s.nextXid, nextMulti: s.nextMulti, nextMultiOffset: s.nextMultiOffset, oldestMulti: s.oldestMulti, oldestMultiDb: s.oldestMultiDb })
        .toEqual({ nextXid: want.nextXid, nextMulti: want.nextMulti, nextMultiOffset: want.nextMultiOffset, oldestMulti: want.oldestMulti, oldestMultiDb: want.oldestMultiDb });
      // nextOid follows NEXTOID records, which log the counter plus PostgreSQL's prefetch of 8192 OIDs.
      const nextOids = events.filter((e): e is Extract<StateEvent, { kind: 'nextoid' }> => e.kind === 'nextoid');
      expect(nextOids.length).toBeGreaterThan(0);
      expect(s.nextOid).toBe(nextOids[nextOids.length - 1].oid);
      expect(s.nextOid).toBeGreaterThanOrEqual(want.nextOid);
      // The checkpoint before it is the previous one, not the shutdown checkpoint.
      expect(s.checkpoint.endLsn).toBeLessThan(src.finalCheckpointLsn);
    });

    test.skipIf(!pg.ok)(`${impl} core: along the WAL, status bits, multixacts and state files change exactly at their records${skipNote}`, async () => {
      const tl = timelines.get(impl) as TimelineImpl;
      const clog = await checkClogAlongWal(tl, src, events);
      const multis = await checkMultixactsAlongWal(tl, events);
      const twophase = await checkTwoPhaseAlongWal(tl, events);
      process.stdout.write(`[state/${impl}] checked ${clog} transaction ends, ${multis} multixacts, ${twophase} two-phase steps\n`);
      expect(clog).toBeGreaterThan(2);
      expect(twophase).toBeGreaterThanOrEqual(4);
      expect(events.some((e) => e.kind === 'end' && e.subxacts.some((x) => Math.floor(x / 32768) !== Math.floor(e.xid / 32768)))).toBe(true);
      expect(multis).toBeGreaterThan(10);
    });
  }

  test.skipIf(!pg.ok)(`below the import LSN, or on a timeline that is not a PostgreSQL one, the read API is BAD_ARGUMENT${skipNote}`, async () => {
    const tl = timelines.get(IMPLEMENTATIONS[0]) as TimelineImpl;
    await expect(readClusterState(tl, src.baseEndLsn - 8n)).rejects.toMatchObject({ code: 'BAD_ARGUMENT', message: expect.stringMatching(/imported at/) });
    await expect(readSlruPages(tl, 3, src.finalEndLsn)).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-pgstate-plain-'));
    dirs.push(dir);
    const repo = await Repository.open(dir, { implementation: IMPLEMENTATIONS[0] });
    repos.push(repo);
    const plain = timelineImpl(await repo.createTimeline({ tenantId: 't', timelineId: 'plain' }));
    await expect(readTwoPhaseFiles(plain, 0n)).rejects.toMatchObject({ code: 'BAD_ARGUMENT', message: expect.stringMatching(/needs a PostgreSQL timeline/) });
  });

  test.skipIf(!pg.ok || TS_ONLY)(`the TS and native cores answer byte for byte alike, at the import, mid-way and at the end${skipNote}${NATIVE_SKIP_NOTE}`, async () => {
    const [a, b] = IMPLEMENTATIONS.map((i) => timelines.get(i) as TimelineImpl);
    const mid = events[Math.floor(events.length / 2)].next;
    for (const lsn of [src.baseEndLsn, mid, src.finalEndLsn]) expect(await stateSnapshot(a, lsn)).toEqual(await stateSnapshot(b, lsn));
  });
});
