/**
 * pg_control as importPgDatadir reads it: the fields agree with pg_controldata, a flipped byte fails
 * the CRC, another major version is refused by name, and a cluster that was not shut down is refused
 * — each as BAD_PG_DATADIR naming the file.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { isStrataError, Repository } from '../../lib';
import { crc32c } from '../../lib/core/pg_decoder';
import { parseControlFile } from '../../lib/pg/pg_control';
import { pgAvailability, readControlData } from '../helpers/pg_cluster';
import { getPgFixture } from '../helpers/pg_fixture';

const pg = pgAvailability();
const skipNote = pg.ok ? '' : ` — skipped: ${pg.reason}`;
const CRC_OFFSET = 288;
const VERSION_OFFSET = 8;
const STATE_OFFSET = 16;
const DB_IN_CRASH_RECOVERY = 4;
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

/** A copy of `bytes` with `patch` applied and the CRC recomputed (or left stale). */
function patched(bytes: Buffer, patch: (b: Buffer) => void, fixCrc: boolean): Buffer {
  const b = Buffer.from(bytes);
  patch(b);
  if (fixCrc) b.writeUInt32LE(crc32c(b.subarray(0, CRC_OFFSET)), CRC_OFFSET);
  return b;
}

describe('pg_control', () => {
  test.skipIf(!pg.ok)(`is read as pg_controldata reads it, and refused when it cannot be trusted${skipNote}`, async () => {
    const fx = await getPgFixture('checksums');
    const file = path.join(fx.baseDir, 'global', 'pg_control');
    const bytes = fs.readFileSync(file);
    const cf = parseControlFile(bytes, file);
    const cd = await readControlData(fx.baseDir);
    expect(cf.checkPoint).toBe(cd.checkpointLsn);
    expect(cf.checkPointCopy.redo).toBe(cd.redoLsn);
    expect(cf.checkPointCopy.timeline).toBe(cd.timeLineId);
    expect(cf.systemIdentifier.toString()).toBe(cd.systemIdentifier);
    expect(cf.dataChecksumVersion).toBe(cd.dataChecksumVersion);
    expect(cf.checkPointCopy.nextOid).toBe(cd.nextOid);
    expect(cf.stateName).toBe('shut down');

    const expectRefused = (b: Buffer, why: RegExp): void => {
      let err: unknown = null;
      try { parseControlFile(b, file); } catch (e) { err = e; }
      expect(isStrataError(err, 'BAD_PG_DATADIR'), String(err)).toBe(true);
      expect((err as Error).message).toContain(file);
      expect((err as Error).message).toMatch(why);
    };
    expectRefused(patched(bytes, (b) => { b[40] ^= 1; }, false), /checksum mismatch/);
    expectRefused(patched(bytes, (b) => { b.writeUInt32LE(1600, VERSION_OFFSET); }, true), /version 1600 .* newer PostgreSQL major version/);
    expectRefused(patched(bytes, (b) => { b.writeUInt32LE(1201, VERSION_OFFSET); }, true), /version 1201 .* older/);

    // A data directory whose cluster crashed: its files are not consistent at the checkpoint.
    const crashed = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'strata-pgctl-')), 'data');
    dirs.push(path.dirname(crashed));
    fs.cpSync(fx.baseDir, crashed, { recursive: true });
    fs.writeFileSync(path.join(crashed, 'global', 'pg_control'), patched(bytes, (b) => { b.writeUInt32LE(DB_IN_CRASH_RECOVERY, STATE_OFFSET); }, true));
    const repo = await Repository.open(path.join(path.dirname(crashed), 'repo'), { implementation: 'ts' });
    try {
      const tl = await repo.createTimeline({ tenantId: 'pg', timelineId: 'main' });
      let err: unknown = null;
      try { await tl.importPgDatadir(crashed); } catch (e) { err = e; }
      expect(isStrataError(err, 'BAD_PG_DATADIR'), String(err)).toBe(true);
      expect((err as Error).message).toMatch(/in crash recovery/);
      expect(tl.layers()).toEqual([]);
    } finally {
      await repo.close();
    }
  });
});
