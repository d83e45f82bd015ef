/**
 * Resource limits (docs/RELIABILITY.md "Resource limits"), the short slice `npm test` runs:
 *  - open layer files stay within maxOpenLayerFiles while every layer of a many-layer timeline is
 *    read, on both cores;
 *  - a real full disk (an 8 MB tmpfs) ends ingest in a coded IO_ERROR naming the path and ENOSPC,
 *    the durable pages stay readable, writes stop, and after space is freed and the repository
 *    reopened, ingest works again;
 *  - scripts/resource-limits.js (the long campaigns, `npm run test:limits`) on a small data set:
 *    its RSS sampling and bound checks run and pass.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { type PageKey, PAGE_SIZE, Repository, StrataError, type Timeline } from '../lib';
import { describeEachCore } from './helpers/cores';
import { COUNTS_PER_REQUEST, type ImplementationName } from '../lib/core/core';
import { createCore } from '../lib/core/select';
import { imageRec, imageSpec, pageKey, planOf, writeLayer } from './helpers/layers';
import { LOCK_FILE } from '../lib/engine/repo_lock';
import { Rng } from './helpers/random';

const ROOT = path.resolve(__dirname, '..');
const LSN_STEP = 0x40n;
const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

function tmpDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}

function keyOf(i: number): PageKey {
  return { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: i };
}

function page(i: number, version: number, rng?: Rng): Buffer {
  const p = rng === undefined ? Buffer.alloc(PAGE_SIZE) : rng.bytes(PAGE_SIZE);
  p.writeUInt32BE(i, 0);
  p.writeUInt32BE(version, 4);
  return p;
}

/** Descriptors of this process open on files under `dir`, the repository's lock file aside. */
/** The access-mode bits of open flags (Linux; not among Node's fs.constants). */
const O_ACCMODE = 0o3;

/** The open flags of this process's read-only descriptors on layer files under `dir`. */
function layerReadFlags(dir: string): number[] {
  const flags: number[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (!target.startsWith(dir + path.sep) || !path.basename(target).includes('__')) continue; // layer files: <keys>__<LSNs>
      const f = parseInt(/^flags:\s+([0-7]+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? 'x', 8);
      if ((f & O_ACCMODE) === fs.constants.O_RDONLY) flags.push(f);
    } catch {
      continue; // the descriptor closed meanwhile
    }
  }
  return flags;
}

function fdsUnder(dir: string): number {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the descriptor closed between the listing and the readlink
    }
    if (target.startsWith(dir + path.sep) && path.basename(target) !== LOCK_FILE) n++;
  }
  return n;
}

const LAYERS = 60;
const MAX_OPEN = 8;

describeEachCore('open layer files under many layers (%s core)', (impl) => {
  it(`holds at most maxOpenLayerFiles (${MAX_OPEN}) descriptors while ${LAYERS} layers are read`, async () => {
    const dir = tmpDir(`strata-fds-${impl}-`);
    const repo = await Repository.open(dir, {
      implementation: impl, maxOpenLayerFiles: MAX_OPEN, compactionThreshold: 1_000, l0FlushDelayThreshold: 0, l0FlushStallThreshold: 0,
    });
    try {
      const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
      let lsn = 0n;
      let peak = 0;
      for (let l = 0; l < LAYERS; l++) {
        tl.ingest([{ lsn: (lsn += LSN_STEP), key: keyOf(l), kind: 'image', page: page(l, 1) }]);
        await tl.flush();
        peak = Math.max(peak, fdsUnder(dir));
      }
      expect(tl.stats().l0Count).toBe(LAYERS);
      // Twice round every layer: the second pass must reopen files the first one closed.
      for (let pass = 0; pass < 2; pass++) {
        for (let l = 0; l < LAYERS; l++) {
          const got = await tl.getPage(keyOf(l), lsn);
          expect(got.readUInt32BE(0)).toBe(l);
          peak = Math.max(peak, fdsUnder(dir));
        }
      }
      expect(peak).toBeLessThanOrEqual(MAX_OPEN);
      expect(fdsUnder(dir)).toBeGreaterThan(0); // the count does see the layer files
      // Opened and reopened without access-time updates (the files are this process's user's).
      const flags = layerReadFlags(dir);
      expect(flags.length).toBeGreaterThan(0);
      for (const f of flags) expect(f & fs.constants.O_NOATIME).toBe(fs.constants.O_NOATIME);
    } finally {
      await repo.close();
    }
    expect(fdsUnder(dir)).toBe(0);
  });

  it('refuses a maxOpenLayerFiles that is not a positive integer', async () => {
    const dir = tmpDir(`strata-fds-bad-${impl}-`);
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      await expect(Repository.open(dir, { implementation: impl, maxOpenLayerFiles: bad })).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// A real full disk

const TMPFS_BYTES = 8 * 1024 * 1024;
const BALLAST_BYTES = 2 * 1024 * 1024;

/** Mount a fresh 8 MB tmpfs, or say why not (not root, no mount permission). */
function mountTmpfs(): { dir: string } | { skip: string } {
  const dir = tmpDir('strata-fulldisk-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_BYTES}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    return { skip: `cannot mount a tmpfs: ${(e as Error).message.split('\n')[0]}` };
  }
  return { dir };
}

/** Whether tmpfs mounts are possible here: one is tried (and unmounted) when the file loads. */
function probeTmpfs(): string | null {
  if (process.platform !== 'linux') return 'tmpfs needs Linux';
  const m = mountTmpfs();
  if ('skip' in m) return m.skip;
  spawnSync('umount', [m.dir]);
  return null;
}

const tmpfsSkip = probeTmpfs();

describeEachCore('a full disk (%s core)', (impl) => {
  const skip = tmpfsSkip;
  if (skip !== null) console.log(`skipped: ${skip}`);
  it.skipIf(skip !== null)(`ends ingest in IO_ERROR ENOSPC, keeps durable pages, works again after space is freed${skip !== null ? ` (skipped: ${skip})` : ''}`, async () => {
    // A disk of its own per core: each test fills it.
    const m = mountTmpfs();
    if ('skip' in m) throw new Error(m.skip);
    const disk = m.dir;
    try {
      await fillAndRecover(impl, disk);
    } finally {
      spawnSync('umount', [disk]);
    }
  });
});

async function fillAndRecover(impl: ImplementationName, disk: string): Promise<void> {
  const repoDir = path.join(disk, impl);
  const ballast = path.join(disk, `ballast-${impl}`);
  // Space to give back later; written first so the repository fills what is left. Only explicit
  // flushes write layers (the checkpoint distance exceeds the disk), so each round's pages become
  // durable together or not at all.
  fs.writeFileSync(ballast, Buffer.alloc(BALLAST_BYTES, 1));
  const opts = { implementation: impl, checkpointDistance: 4 * TMPFS_BYTES, compression: 'none' as const, compactionThreshold: 1_000, l0FlushDelayThreshold: 0, l0FlushStallThreshold: 0 };
  let repo = await Repository.open(repoDir, opts);
  let tl: Timeline = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
  const rng = new Rng(12);
  const versions: number[] = [];
  let lsn = 0n;
  let failure: unknown = null;
  let durableLsn = 0n;
  let durableVersions: number[] = [];
  const PAGES = 64;
  try {
    for (let v = 1; v < 1_000 && failure === null; v++) {
      try {
        for (let i = 0; i < PAGES; i++) {
          tl.ingest([{ lsn: (lsn += LSN_STEP), key: keyOf(i), kind: 'image', page: page(i, v, rng) }]);
          versions[i] = v;
        }
        await tl.flush();
        durableLsn = tl.diskConsistentLsn;
        durableVersions = versions.slice();
      } catch (e) {
        failure = e;
      }
    }
    expect(failure).toBeInstanceOf(StrataError);
    const err = failure as StrataError;
    expect(err.code).toBe('IO_ERROR');
    expect(err.message).toContain(repoDir);
    expect(err.message).toMatch(/ENOSPC/);
    expect(durableLsn).toBeGreaterThan(0n);
    // Writes stop (docs/RELIABILITY.md, "The fsync policy"); reads go on.
    expect(() => tl.ingest([{ lsn: lsn + LSN_STEP, key: keyOf(0), kind: 'image', page: page(0, 0) }])).toThrow(/writes are stopped/);
    await expect(tl.flush()).rejects.toThrow(/writes are stopped/);
    for (let i = 0; i < PAGES; i++) expect((await tl.getPage(keyOf(i), durableLsn)).readUInt32BE(4)).toBe(durableVersions[i]);
  } finally {
    await repo.close().catch(() => undefined);
  }
  // Free space, reopen: the durable pages are there and ingest works again.
  fs.rmSync(ballast);
  repo = await Repository.open(repoDir, opts);
  try {
    tl = repo.getTimeline('t', 'main');
    expect(tl.diskConsistentLsn).toBe(durableLsn);
    for (let i = 0; i < PAGES; i++) expect((await tl.getPage(keyOf(i), durableLsn)).readUInt32BE(4)).toBe(durableVersions[i]);
    lsn = durableLsn;
    for (let i = 0; i < PAGES; i++) tl.ingest([{ lsn: (lsn += LSN_STEP), key: keyOf(i), kind: 'image', page: page(i, 5_000) }]);
    await tl.flush();
    expect(tl.diskConsistentLsn).toBe(lsn);
    for (let i = 0; i < PAGES; i++) expect((await tl.getPage(keyOf(i), lsn)).readUInt32BE(4)).toBe(5_000);
  } finally {
    await repo.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The long campaigns' script, on a small data set

it('scripts/resource-limits.js samples peak RSS and checks its bounds on a small data set', () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/resource-limits.js'), 'compaction', 'import', 'fds'], {
    cwd: ROOT, encoding: 'utf8',
    env: { ...process.env, STRATA_IMPL: 'native', STRATA_LIMITS_VERSIONS: '20000', STRATA_LIMITS_IMPORT_MB: '32', STRATA_LIMITS_LAYERS: '40', STRATA_LIMITS_MAX_OPEN: '16' },
  });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const compaction = /compaction: versions=20000 .*peakRss=([\d.]+)MB .*bound=([\d.]+)MB/.exec(r.stdout);
  expect(compaction).not.toBeNull();
  expect(Number(compaction![1])).toBeGreaterThan(0);
  expect(Number(compaction![1])).toBeLessThanOrEqual(Number(compaction![2]));
  expect(r.stdout).toMatch(/import: dataBytes=32.0MB .*MBps=[\d.]+ .*peakRss=[\d.]+MB/);
  const fds = /fds: layers=40 maxOpenLayerFiles=16 .*fdsAfterReads=(\d+) /.exec(r.stdout);
  expect(fds).not.toBeNull();
  expect(r.stdout).not.toMatch(/FAIL/);
});

// ---------------------------------------------------------------------------------------------
// A read in flight keeps a closed, deleted layer readable even when its descriptor was evicted

describeEachCore('a read in flight over an evicted layer file (%s core)', (impl) => {
  it('still reads the layer after it is closed and unlinked, with maxOpenLayerFiles 1', async () => {
    const dir = tmpDir(`strata-evicted-${impl}-`);
    const core = createCore(impl, { pageCacheBytes: 4 * 1024 * 1024, maxOpenLayerFiles: 1 });
    try {
      const K = pageKey(7);
      const target = path.join(dir, 'target');
      const other = path.join(dir, 'other');
      writeLayer(core, target, imageSpec(10n, [{ key: K, rec: imageRec(7) }]));
      writeLayer(core, other, imageSpec(10n, [{ key: pageKey(8), rec: imageRec(8) }]));
      const h = core.openLayer(target);
      core.openLayer(other); // evicts target's descriptor: only one may stay open
      const map = core.createLayerMap();
      core.setLayerMap(map, [h]);
      const plan = planOf([{ key: K, segments: [{ mapId: map, layers: [], capLsn: 10n, mem: [] }] }]);
      const out = Buffer.alloc(PAGE_SIZE, 0xee);
      const status = new Uint8Array(1).fill(0xee);
      const done = core.getPagesAsync(plan, out, status, new Uint32Array(COUNTS_PER_REQUEST), false);
      core.setLayerMap(map, []);
      core.closeLayer(h);
      fs.unlinkSync(target); // as the engine does after a compaction or GC swap
      await done;
      expect(status[0]).toBe(0);
      expect(out.equals(imageRec(7).subarray(1))).toBe(true);
    } finally {
      core.close();
    }
  });
});
