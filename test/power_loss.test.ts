/**
 * Power loss (docs/RELIABILITY.md, "Power loss"): what SIGKILL cannot show, because the OS keeps
 * a killed process's unsynced writes. A child process runs a fixed lifecycle (flush, forced
 * compaction, image creation, GC, manifest updates, branch creation) on one core under the
 * power-cut shim (test/power/powercut_shim.c, LD_PRELOAD), which at a chosen file operation
 * drops, keeps or tears every write since its file's last fsync, undoes a random subset (or an
 * ordered prefix) of the creates, renames and unlinks since their directory's last fsync, and
 * ends the process. Then, for every cut:
 *  - `verifyRepository` finds no fault (no manifest names a missing, short or torn layer);
 *  - the repository opens; diskConsistentLsn is at least the last LSN a flush reported durable;
 *    every page at diskConsistentLsn (and at that reported LSN) is what the workload wrote;
 *  - every branch whose creation was reported exists and reads its ancestor's pages at its
 *    branch point; a reported manifest update is there;
 *  - after reopen no temp file or orphan is left.
 * The mutants prove the test bites: with the shim ignoring one kind of fsync (directory fsyncs,
 * layer file fsyncs, manifest file fsyncs), as if the code lacked it, some cut must find a fault.
 * npm test cuts STRATA_POWER_CUTS (6) times per core; npm run test:power cuts 260 per core.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Repository, type Timeline, type WalRecord } from '../lib';
import { verifyRepository } from '../lib/cli/repo';
import type { ImplementationName } from '../lib/core/core';
import { createCore } from '../lib/core/select';
import { timelineImpl } from '../lib/timeline';
import { describeEachCore } from './helpers/cores';
import { Rng } from './helpers/random';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const workload = require('./fixtures/crash_workload.js') as {
  recordAt(i: number): WalRecord;
  recordsUpTo(lsn: bigint): number;
  PAGES: number;
  PAGE_SIZE: number;
};

const ROOT = path.join(__dirname, '..');
const CHILD = path.join(__dirname, 'fixtures', 'power_child.js');
const CUTS_PER_CORE = Number(process.env.STRATA_POWER_CUTS ?? 6);
/** Rounds of the child's lifecycle: enough for every step to run at least twice. */
const ROUNDS = 6;
/** Cuts tried per mutant before concluding the test does not notice it (it should at once). */
const MUTANT_CUTS = 12;
const CUT_EXIT_STATUS = 99;
const LONG_TIMEOUT_MS = 60 * 60 * 1000;
const PAGE_CACHE_BYTES = 1 << 20;
const MUTANTS = ['dirsync', 'layer-fsync', 'manifest-fsync'] as const;
type Mutant = typeof MUTANTS[number];

/** The shim, built by scripts/build-powercut.js; null (with the reason) when no C compiler works. */
function buildShim(): { library: string | null; why: string } {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build-powercut.js')], { encoding: 'utf8' });
  if (r.status === 0) return { library: r.stdout.trim(), why: '' };
  return { library: null, why: `the power-cut shim does not build: ${(r.stderr || String(r.error)).trim().split('\n')[0]}` };
}
const shim = buildShim();

interface ChildRun {
  status: number | null;
  lines: string[];
  report: string;
  stderr: string;
}

interface CutOptions {
  at: number;
  seed: number;
  mutant?: Mutant;
}

/**
 * The child's LD_PRELOAD: the shim after whatever the parent preloads. Under `npm run test:asan`
 * that is the sanitizer runtime, which must come first in the list or the sanitized addon the
 * child loads refuses to start.
 */
function childPreload(): string {
  return [process.env.LD_PRELOAD, shim.library].filter((x): x is string => x !== undefined && x !== null && x !== '').join(':');
}

function runChild(root: string, dir: string, impl: ImplementationName, opts: CutOptions): Promise<ChildRun> {
  const stash = fs.mkdtempSync(path.join(root, 'stash-'));
  const report = path.join(stash, 'report');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LD_PRELOAD: childPreload(),
    UV_USE_IO_URING: '0', // io_uring would bypass libc
    STRATA_POWERCUT_ROOT: dir,
    STRATA_POWERCUT_STASH: stash,
    STRATA_POWERCUT_REPORT: report,
    STRATA_POWERCUT_AT: String(opts.at),
    STRATA_POWERCUT_SEED: String(opts.seed),
    STRATA_POWERCUT_MUTANT: opts.mutant ?? '',
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, impl, String(ROUNDS)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (status) => {
      const text = fs.existsSync(report) ? fs.readFileSync(report, 'utf8') : '';
      fs.rmSync(stash, { recursive: true, force: true });
      resolve({ status, lines: out.split('\n').filter((l) => l !== ''), report: text, stderr });
    });
  });
}

/** Every page of the workload as the records up to `lsn` leave it; null where none was written. */
function oracleAt(lsn: bigint): (Buffer | null)[] {
  const pages: (Buffer | null)[] = Array.from({ length: workload.PAGES }, () => null);
  for (let i = 0; i < workload.recordsUpTo(lsn); i++) {
    const r = workload.recordAt(i);
    const k = r.key.blockNum;
    if (r.kind === 'image') pages[k] = Buffer.from(r.page);
    else if (r.kind === 'patch') (pages[k] ?? (pages[k] = Buffer.alloc(workload.PAGE_SIZE))).set(r.data, r.offset);
  }
  return pages;
}

interface Figures {
  cuts: number;
  finishedWithoutCut: number;
  pagesChecked: number;
  pagesLost: number;
  byPhase: Record<string, number>;
  files: Record<string, number>;
  dirOpsPending: number;
  dirOpsUndone: number;
  operations: number;
}
const figures: Record<string, Figures> = {};
function figuresFor(name: string): Figures {
  return (figures[name] ??= { cuts: 0, finishedWithoutCut: 0, pagesChecked: 0, pagesLost: 0, byPhase: {}, files: {}, dirOpsPending: 0, dirOpsUndone: 0, operations: 0 });
}

/** What the child reported durable before the cut. */
interface Reported {
  durable: bigint;
  branches: Array<{ name: string; at: bigint }>;
  extensionRound: number | null;
  phase: string;
}

function reported(lines: readonly string[]): Reported {
  const r: Reported = { durable: 0n, branches: [], extensionRound: null, phase: 'start' };
  for (const line of lines) {
    const [word, a, b] = line.split(' ');
    if (word === 'durable') r.durable = BigInt(a);
    else if (word === 'branch') r.branches.push({ name: a, at: BigInt(b) });
    else if (word === 'extension') r.extensionRound = Number(a);
    else if (word === 'phase') r.phase = a;
  }
  return r;
}

/** Compare every workload page at `lsn` with the oracle; returns the faults found. */
async function checkPages(tl: Timeline, lsn: bigint, where: string, f: Figures): Promise<string[]> {
  const want = oracleAt(lsn);
  const faults: string[] = [];
  for (let k = 0; k < workload.PAGES; k++) {
    const expected = want[k];
    if (expected === null) continue;
    const key = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: k };
    f.pagesChecked++;
    try {
      if (!(await tl.getPage(key, lsn)).equals(expected)) faults.push(`${where}: page ${k} at ${lsn} differs from what was written`);
    } catch (e) {
      faults.push(`${where}: page ${k} at ${lsn} unreadable: ${(e as Error).message}`);
    }
  }
  f.pagesLost += faults.length;
  return faults;
}

function verify(dir: string, impl: ImplementationName): { faults: string[]; orphans: string[] } {
  const core = createCore(impl, { pageCacheBytes: PAGE_CACHE_BYTES });
  try {
    const report = verifyRepository(dir, core, () => undefined);
    return { faults: report.faults.map((x) => x.message), orphans: report.orphans };
  } finally {
    core.close();
  }
}

function tempFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.tmp')).map((e) => path.join(e.parentPath, e.name));
}

/** Everything that is wrong with the repository after a cut (empty: it survived). */
async function checkAfterCut(dir: string, impl: ImplementationName, run: ChildRun, f: Figures): Promise<string[]> {
  if (run.status !== CUT_EXIT_STATUS && run.status !== 0) return [`the child failed (status ${run.status}): ${run.stderr}`];
  const r = reported(run.lines);
  const before = verify(dir, impl);
  if (before.faults.length > 0) return before.faults.map((m) => `verify after the cut: ${m}`);
  let repo: Repository;
  try {
    repo = await Repository.open(dir, { implementation: impl, pageCacheBytes: PAGE_CACHE_BYTES });
  } catch (e) {
    return [`reopen failed: ${(e as Error).message}`];
  }
  const faults: string[] = [];
  try {
    const tl = repo.getTimeline('t1', 'main');
    const durable = tl.diskConsistentLsn;
    if (durable < r.durable) faults.push(`diskConsistentLsn ${durable} is below the ${r.durable} a flush reported durable`);
    if (tl.lastRecordLsn !== durable) faults.push(`lastRecordLsn ${tl.lastRecordLsn} is not diskConsistentLsn ${durable}`);
    faults.push(...await checkPages(tl, durable, 'main at diskConsistentLsn', f));
    // (Above lastRecordLsn a read would wait for WAL: the loss is reported above already.)
    if (r.durable > 0n && r.durable < durable && r.durable >= tl.gcCutoffLsn) {
      faults.push(...await checkPages(tl, r.durable, 'main at the reported durable LSN', f));
    }
    for (const b of r.branches) {
      let branch: Timeline;
      try {
        branch = repo.getTimeline('t1', b.name);
      } catch (e) {
        faults.push(`branch ${b.name}, reported created, is missing: ${(e as Error).message}`);
        continue;
      }
      if (branch.ancestorLsn !== b.at) faults.push(`branch ${b.name} is at ${branch.ancestorLsn}, reported at ${b.at}`);
      faults.push(...await checkPages(branch, b.at, `branch ${b.name} at its branch point`, f));
    }
    if (r.extensionRound !== null) {
      const got = Number(timelineImpl(tl).extensions.power_test?.round ?? -1);
      if (got < r.extensionRound) faults.push(`manifest update of round ${r.extensionRound} is lost (found ${got})`);
    }
  } catch (e) {
    faults.push(`checking after reopen: ${(e as Error).message}`);
  } finally {
    await repo.close();
  }
  const after = verify(dir, impl);
  faults.push(...after.faults.map((m) => `verify after reopen: ${m}`), ...after.orphans.map((o) => `orphan after reopen: ${o}`));
  faults.push(...tempFiles(dir).map((t) => `temp file after reopen: ${t}`));
  return faults;
}

function recordCut(f: Figures, run: ChildRun): void {
  f.cuts++;
  if (run.status === 0) f.finishedWithoutCut++;
  const phase = reported(run.lines).phase;
  f.byPhase[phase] = (f.byPhase[phase] ?? 0) + 1;
  for (const line of run.report.split('\n')) {
    const file = /^file (\S+) /.exec(line);
    if (file) f.files[file[1]] = (f.files[file[1]] ?? 0) + 1;
    const ops = /^dirops (\d+) pending, (\d+) undone/.exec(line);
    if (ops) {
      f.dirOpsPending += Number(ops[1]);
      f.dirOpsUndone += Number(ops[2]);
    }
  }
}

/** A repository with the empty main timeline the child works on. */
async function makeTemplate(root: string, impl: ImplementationName): Promise<string> {
  const dir = path.join(root, 'template');
  const repo = await Repository.open(dir, { implementation: impl });
  await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
  await repo.close();
  return dir;
}

/** How many tracked file operations the child's whole run makes (a run without a cut). */
async function countOperations(root: string, template: string, impl: ImplementationName): Promise<number> {
  const dir = path.join(root, 'count');
  fs.cpSync(template, dir, { recursive: true });
  const run = await runChild(root, dir, impl, { at: 0, seed: 0 });
  fs.rmSync(dir, { recursive: true, force: true });
  expect(run.status, `counting run: ${run.stderr}`).toBe(0);
  expect(run.lines).toContain('done');
  const m = /^count (\d+)$/m.exec(run.report);
  expect(m, `counting run report: ${run.report}`).not.toBeNull();
  return Number(m?.[1]);
}

/** Per core: the template repository and the operation count of a whole run (measured once). */
const prepared = new Map<ImplementationName, Promise<{ root: string; template: string; total: number }>>();
function prepare(impl: ImplementationName): Promise<{ root: string; template: string; total: number }> {
  let p = prepared.get(impl);
  if (p === undefined) {
    p = (async () => {
      const root = newRoot(impl);
      const template = await makeTemplate(root, impl);
      return { root, template, total: await countOperations(root, template, impl) };
    })();
    prepared.set(impl, p);
  }
  return p;
}

/** `n` cut points spread over [1, total]: one seeded point in each of n equal slices. */
function cutPoints(total: number, n: number, rng: Rng): number[] {
  return Array.from({ length: n }, (_, k) => 1 + Math.min(total - 1, Math.floor((total * (k + rng.next())) / n)));
}

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
  if (Object.keys(figures).length > 0) console.log(`power cuts: ${JSON.stringify(figures)}`);
});

function newRoot(impl: ImplementationName): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `strata-power-${impl}-`));
  roots.push(root);
  return root;
}

const skipAll = shim.library === null;
const suffix = skipAll ? ` — skipped: ${shim.why}` : '';

describe.skipIf(skipAll)(`power-cut shim${suffix}`, () => {
  it('drops unsynced writes and undoes unsynced renames, and keeps what was fsynced', async () => {
    // The shim itself, on a plain node child: a file fsynced and renamed with a directory fsync
    // survives whole; an unsynced file written after it is dropped, kept or torn, never longer.
    const root = newRoot('ts');
    const dir = path.join(root, 'd');
    fs.mkdirSync(dir);
    const script = `
      const fs = require('fs');
      const d = ${JSON.stringify(dir)};
      let fd = fs.openSync(d + '/a.tmp', 'w'); fs.writeSync(fd, Buffer.alloc(4096, 1)); fs.fsyncSync(fd); fs.closeSync(fd);
      fs.renameSync(d + '/a.tmp', d + '/a'); fd = fs.openSync(d, 'r'); fs.fsyncSync(fd); fs.closeSync(fd);
      fd = fs.openSync(d + '/b.tmp', 'w'); fs.writeSync(fd, Buffer.alloc(4096, 2)); fs.fsyncSync(fd); fs.closeSync(fd);
      fs.renameSync(d + '/b.tmp', d + '/b');
      fd = fs.openSync(d + '/a', 'r+'); fs.writeSync(fd, Buffer.alloc(8192, 3), 0, 8192, 0); fs.closeSync(fd);
      fs.writeFileSync(d + '/never', 'x');`;
    const outcomes = new Set<string>();
    for (let seed = 1; seed <= 12; seed++) {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir);
      const stash = fs.mkdtempSync(path.join(root, 'stash-'));
      const r = spawnSync(process.execPath, ['-e', script], {
        env: { ...process.env, LD_PRELOAD: childPreload(), UV_USE_IO_URING: '0', STRATA_POWERCUT_ROOT: dir, STRATA_POWERCUT_STASH: stash, STRATA_POWERCUT_AT: '11', STRATA_POWERCUT_SEED: String(seed) },
      });
      expect(r.status, r.stderr.toString()).toBe(CUT_EXIT_STATUS);
      const names = fs.readdirSync(dir).sort();
      // a is durable (fsynced, renamed, directory fsynced); the b rename was never made durable.
      expect(names).toContain('a');
      expect(names).not.toContain('never');
      const a = fs.readFileSync(path.join(dir, 'a'));
      expect([4096, 8192]).toContain(a.length);
      expect(a.every((x) => x === 1 || x === 3 || x === 0)).toBe(true);
      outcomes.add(`${names.includes('b') ? 'b' : 'no b'} ${a.length}`);
    }
    // Over 12 seeds both fates of the unsynced rename and of the unsynced overwrite's size occur.
    expect([...outcomes].some((o) => o.startsWith('b '))).toBe(true);
    expect([...outcomes].some((o) => o.startsWith('no b'))).toBe(true);
    expect([...outcomes].some((o) => o.endsWith(' 4096'))).toBe(true);
    expect([...outcomes].some((o) => o.endsWith(' 8192'))).toBe(true);
  });
});

describeEachCore(`power loss (%s core)${suffix}`, (impl) => {
  it.skipIf(skipAll)(`${CUTS_PER_CORE} power cuts across flush, compaction, image creation, GC, manifest updates and branch creation lose nothing reported durable`, async () => {
    const { root, template, total } = await prepare(impl);
    const f = figuresFor(impl);
    f.operations = total;
    const rng = new Rng(impl === 'native' ? 4242 : 2424);
    const points = cutPoints(total, CUTS_PER_CORE, rng);
    for (const [k, at] of points.entries()) {
      const dir = path.join(root, `cut${k}`);
      fs.cpSync(template, dir, { recursive: true });
      const run = await runChild(root, dir, impl, { at, seed: rng.int(1, 2 ** 31) });
      recordCut(f, run);
      const faults = await checkAfterCut(dir, impl, run, f);
      expect(faults, `${impl} cut at operation ${at} of ${total}:\n${run.report}`).toEqual([]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(f.finishedWithoutCut).toBeLessThan(f.cuts);
    expect(f.pagesChecked).toBeGreaterThan(0);
  }, LONG_TIMEOUT_MS);

  it.skipIf(skipAll).each(MUTANTS.map((m) => [m]))('mutant: with every %s ignored, some power cut loses data the test sees', async (mutant) => {
    const { root, template, total } = await prepare(impl);
    const f = figuresFor(`${impl} mutant ${mutant}`);
    const rng = new Rng(mutant.length * 31 + (impl === 'native' ? 1 : 0));
    // Cut late (after several flushes reported durable), where there is most to lose.
    const points = cutPoints(total, MUTANT_CUTS, rng).map((p) => Math.max(p, Math.floor(total / 2)));
    const found: string[] = [];
    for (const [k, at] of points.entries()) {
      const dir = path.join(root, `mutant-${mutant}-${k}`);
      fs.cpSync(template, dir, { recursive: true });
      const run = await runChild(root, dir, impl, { at, seed: rng.int(1, 2 ** 31), mutant });
      recordCut(f, run);
      const faults = await checkAfterCut(dir, impl, run, f);
      fs.rmSync(dir, { recursive: true, force: true });
      if (faults.length > 0) {
        found.push(`cut at ${at}: ${faults[0]}`);
        break;
      }
    }
    expect(found.length, `no cut noticed the missing ${mutant}`).toBeGreaterThan(0);
    console.log(`${impl} mutant ${mutant}: ${found[0]}`);
  }, LONG_TIMEOUT_MS);
});
