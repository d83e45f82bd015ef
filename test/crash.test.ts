/**
 * Durability under kill -9: a child process ingests and flushes (and, in the lifecycle variant,
 * compacts, creates images and runs GC); we SIGKILL it at seeded random moments inside those
 * phases, reopen, and check that everything flush() reported durable is intact at every LSN above
 * the GC cutoff, that no half-written layer is in the manifest, that no orphan file survives the
 * reopen, and that WAL re-sent from diskConsistentLsn applies.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { Repository } from '../lib';
import { createCore } from '../lib/core/select';
import { describeEachCore } from './helpers/cores';
import { Rng } from './helpers/random';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const workload = require('./fixtures/crash_workload.js') as {
  recordAt(i: number): import('../lib').WalRecord;
  recordsUpTo(lsn: bigint): number;
  PAGES: number;
  GC_HORIZON: bigint;
};

const KILLS_PER_IMPLEMENTATION = Number(process.env.STRATA_CRASH_KILLS ?? 6);
const CHILD = path.join(__dirname, 'fixtures', 'crash_child.js');

/** Run the child until it has reported a durable LSN and then some random time; kill -9; return the last durable LSN it reported. */
function runAndKill(dir: string, impl: string, mode: Mode, rng: Rng): Promise<bigint> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, impl, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let durable = -1n;
    let phases = 0;
    let stderr = '';
    let killArmed = false;
    const phase = mode === 'lifecycle' ? rng.pick(['flushing', 'compacting', 'gc']) : 'flushing';
    const targetPhases = rng.int(1, 4);
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) {
        const m = /^durable (\d+)$/.exec(line);
        if (m) durable = BigInt(m[1]);
        if (line === phase && ++phases >= targetPhases && !killArmed) {
          killArmed = true;
          // Land the kill inside this phase or shortly after it.
          setTimeout(() => child.kill('SIGKILL'), rng.int(0, 15));
        }
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(durable);
      else reject(new Error(`child exited ${code}: ${stderr}`));
    });
  });
}

async function expectedPage(key: number, lsn: bigint): Promise<Buffer | null> {
  const page = Buffer.alloc(8192);
  let seen = false;
  for (let i = 0; i < workload.recordsUpTo(lsn); i++) {
    const r = workload.recordAt(i);
    if (r.key.blockNum !== key) continue;
    seen = true;
    if (r.kind === 'image') page.set(r.page);
    else if (r.kind === 'patch') page.set(r.data, r.offset);
  }
  return seen ? page : null;
}

type Mode = 'ingest' | 'lifecycle';

describeEachCore('crash safety under SIGKILL (%s core)', (impl) => {
  it.each(['ingest', 'lifecycle'] as const)(`%s: survives ${KILLS_PER_IMPLEMENTATION} kills at random moments`, async (mode) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-crash-${impl}-`));
    const rng = new Rng((impl === 'native' ? 101 : 202) + (mode === 'lifecycle' ? 7 : 0));
    let compactedLayers = 0;
    let lastDurable = 0n;
    try {
      for (let k = 0; k < KILLS_PER_IMPLEMENTATION; k++) {
        const durable = await runAndKill(dir, impl, mode, rng);
        if (durable > lastDurable) lastDurable = durable;
        const repo = await Repository.open(dir, { implementation: impl });
        try {
          const tl = repo.getTimeline('t1', 'main');
          expect(tl.diskConsistentLsn).toBeGreaterThanOrEqual(lastDurable);
          expect(tl.lastRecordLsn).toBe(tl.diskConsistentLsn);
          // Every page as of the durable LSN, and a few older versions, are exactly what was written.
          const lsn = tl.diskConsistentLsn;
          const cutoff = tl.gcCutoffLsn;
          expect(cutoff).toBeLessThanOrEqual(lsn > workload.GC_HORIZON ? lsn - workload.GC_HORIZON : 0n);
          const middle = (cutoff + lsn) / 2n;
          for (let b = 0; b < workload.PAGES; b++) {
            const key = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: b };
            for (const at of [lsn, middle, cutoff]) {
              const want = await expectedPage(b, at);
              if (want === null) await expect(tl.getPage(key, at)).rejects.toMatchObject({ code: 'PAGE_NOT_FOUND' });
              else expect((await tl.getPage(key, at)).equals(want)).toBe(true);
            }
          }
          // Only finished, manifest-listed layers remain, and each passes a full check.
          const tlDir = path.join(dir, 'tenants', 't1', 'timelines', 'main');
          const listed = new Set(tl.layers().map((l) => l.fileName));
          compactedLayers += tl.layers().filter((l) => l.level === 1 || l.kind === 'image').length;
          expect(fs.readdirSync(tlDir).filter((f) => f !== 'manifest').sort()).toEqual([...listed].sort());
          const core = createCore(impl, { pageCacheBytes: 1 << 20 });
          for (const f of listed) {
            const h = core.openLayer(path.join(tlDir, f));
            expect(core.verifyLayer(h)).toBeGreaterThan(0);
          }
          core.close();
        } finally {
          await repo.close();
        }
      }
      expect(lastDurable).toBeGreaterThan(0n);
      if (mode === 'lifecycle') expect(compactedLayers).toBeGreaterThan(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
