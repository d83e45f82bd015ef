/**
 * pg_checksum_page (native/pg/checksum.cc, lib/core/ts/pg/checksum.ts) against PostgreSQL itself:
 * every initialized page that `initdb --data-checksums` wrote carries the checksum both cores
 * compute for it (pd_checksum is excluded from the sum, the block number is mixed in). Also
 * native ≡ TS on random pages and block numbers.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pgChecksumPage } from '../../lib/core/ts/pg/checksum';
import { Rng } from '../helpers/random';
import { nativePg } from '../helpers/pg_native';

const NATIVE = nativePg();
const INITDB = '/usr/lib/postgresql/15/bin/initdb';
const BLCKSZ = 8192;
/** Relation files are 1 GB segments of 131072 blocks; initdb's are all in segment 0. */
const RELFILE = /^\d+(_vm|_fsm|_init)?$/;

/** `root` is the temp dir this test made (removed afterwards), `dir` the data directory inside it. */
interface Cluster { ok: boolean; reason: string; root: string; dir: string }

/** initdb --data-checksums into a temp dir as the postgres user; no server is started. */
function initdbWithChecksums(): Cluster {
  if (!fs.existsSync(INITDB)) return { ok: false, reason: `${INITDB} not installed`, root: '', dir: '' };
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-pgsum-'));
  fs.chmodSync(root, 0o777);
  const data = path.join(root, 'data');
  const asPostgres = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
  const cmd = [...asPostgres, INITDB, '--data-checksums', '-A', 'trust', '-U', 'postgres', '-D', data];
  // The sanitizer run preloads ASan into this process; PostgreSQL must not inherit it.
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', timeout: 120_000, env });
  if (r.status !== 0) return { ok: false, reason: `initdb failed: ${(r.stderr || r.error?.message || '').split('\n')[0]}`, root, dir: data };
  return { ok: true, reason: '', root, dir: data };
}

const cluster = initdbWithChecksums();
afterAll(() => {
  if (cluster.root !== '') fs.rmSync(cluster.root, { recursive: true, force: true });
});

describe('pg_checksum_page', () => {
  it.skipIf(!cluster.ok)(`equals pd_checksum on every page of an initdb --data-checksums cluster${cluster.ok ? '' : ` — skipped: ${cluster.reason}`}`, () => {
    let pages = 0;
    for (const sub of ['global', ...fs.readdirSync(path.join(cluster.dir, 'base')).map((d) => path.join('base', d))]) {
      for (const name of fs.readdirSync(path.join(cluster.dir, sub))) {
        if (!RELFILE.test(name)) continue;
        const file = fs.readFileSync(path.join(cluster.dir, sub, name));
        for (let blk = 0; blk * BLCKSZ < file.length; blk++) {
          const page = file.subarray(blk * BLCKSZ, (blk + 1) * BLCKSZ);
          if ((page[14] | (page[15] << 8)) === 0) continue; // new page: no checksum
          const stored = page[8] | (page[9] << 8);
          expect(pgChecksumPage(page, blk), `${sub}/${name} block ${blk}`).toBe(stored);
          if (NATIVE !== null) expect(NATIVE.pgChecksumPage(page, blk)).toBe(stored);
          pages++;
        }
      }
    }
    expect(pages).toBeGreaterThan(500);
  });

  it('native ≡ TS on random pages and block numbers; the stored checksum is ignored', () => {
    const rng = new Rng(0xc5c5);
    for (let i = 0; i < 300; i++) {
      const page = rng.bytes(BLCKSZ);
      const blk = rng.chance(0.5) ? rng.int(0, 1000) : rng.int(0, 0xffffffff);
      const sum = pgChecksumPage(page, blk);
      expect(sum).toBeGreaterThanOrEqual(1);
      expect(sum).toBeLessThanOrEqual(65535);
      page[8] ^= 0xff;
      expect(pgChecksumPage(page, blk)).toBe(sum);
      if (NATIVE !== null) expect(NATIVE.pgChecksumPage(page, blk)).toBe(sum);
      expect(pgChecksumPage(page, blk ^ 1)).not.toBe(sum);
    }
  });
});
