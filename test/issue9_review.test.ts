/**
 * Regression tests for the defects issue 9's review found (each failed before its fix): the
 * repository lock and read-only opens, the GC cutoff against durable data, LSN_MAX, the public
 * surface, a failed background flush, crafted manifest names, and consistent error codes.
 * (The redo rule of debt 7 is in walredo.test.ts.)
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_BACKGROUND, ERROR_CODES, LSN_MAX, Repository, Timeline, type PageKey, type StrataErrorCode, type WalRecord } from '../lib';
import { createCore } from '../lib/core/select';
import { deltaFileName } from '../lib/engine/manifest';
import { encodeManifest } from '../lib/engine/manifest';
import { KEY_MAX, KEY_MIN } from '../lib/key';
import { describeEachCore, IMPLEMENTATIONS, NATIVE_SKIP_NOTE } from './helpers/cores';

const ROOT = path.join(__dirname, '..');
const HOLDER = path.join(__dirname, 'fixtures', 'hold_repo.js');
const CLI = path.join(ROOT, 'bin', 'strata.js');
const PAGE = 8192;

const key = (blockNum: number): PageKey => ({ spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum });
const image = (lsn: bigint, blockNum: number, fill: number): WalRecord => ({ lsn, key: key(blockNum), kind: 'image', page: Buffer.alloc(PAGE, fill) });

const dirs: string[] = [];
const children: ChildProcess[] = [];
function tmp(name: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `strata-i9-${name}-`));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string | null> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return (e as { code?: string }).code ?? `plain ${(e as Error).name}`;
  }
  return null;
}

/** A child process holding `dir` open for writing; resolves with its first report line. */
function holdOpen(dir: string): Promise<{ child: ChildProcess; report: { ok: boolean; code?: string } }> {
  const child = spawn(process.execPath, [HOLDER, dir], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', (line) => resolve({ child, report: JSON.parse(line) as { ok: boolean; code?: string } }));
    child.once('error', reject);
  });
}

async function makeRepo(dir: string, pages = 3): Promise<void> {
  const repo = await Repository.open(dir, { implementation: 'ts' });
  const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
  for (let i = 0; i < pages; i++) tl.ingest([image(BigInt(0x10 * (i + 1)), i, i + 1)]);
  await repo.close();
}

describe('debt 1: one writer per repository; read-only opens for inspection', () => {
  it('refuses a second writer in the same process, and frees the lock on close', async () => {
    const dir = tmp('lock-same');
    const a = await Repository.open(dir, { implementation: 'ts' });
    expect(await codeOf(Repository.open(dir, { implementation: 'ts' }))).toBe('REPOSITORY_LOCKED');
    await a.close();
    const b = await Repository.open(dir, { implementation: 'ts' });
    await b.close();
  });

  it('refuses a writer while another process holds the repository; the CLI compact exits 10; get and read-only opens work and delete nothing', async () => {
    const dir = tmp('lock-other');
    await makeRepo(dir);
    const tlDir = path.join(dir, 'tenants', 't', 'timelines', 'main');
    const { child, report } = await holdOpen(dir);
    expect(report.ok).toBe(true);
    // What a live writer may have on disk that its manifest does not list yet.
    const pending = path.join(tlDir, deltaFileName(KEY_MIN, KEY_MAX, 0x100n, 0x200n));
    fs.writeFileSync(pending, Buffer.alloc(PAGE));
    fs.writeFileSync(path.join(tlDir, 'something.tmp'), 'x');

    expect(await codeOf(Repository.open(dir, { implementation: 'ts' }))).toBe('REPOSITORY_LOCKED');
    const compact = spawnSync(process.execPath, [CLI, 'compact', dir, 't', 'main', '--json'], { encoding: 'utf8' });
    expect(compact.status).toBe(10);
    expect((JSON.parse(compact.stdout) as { error: { code: string } }).error.code).toBe('REPOSITORY_LOCKED');
    const get = spawnSync(process.execPath, [CLI, 'get', dir, 't', 'main', '1663/5/16384.0#1', '0/20', '--json'], { encoding: 'utf8' });
    expect(get.status, get.stderr).toBe(0);
    expect((JSON.parse(get.stdout) as { hex: string }).hex.slice(0, 4)).toBe('0202');

    const ro = await Repository.open(dir, { implementation: 'ts', readOnly: true });
    const tl = ro.getTimeline('t', 'main');
    expect((await tl.getPage(key(2), 0x30n))[0]).toBe(3);
    expect(await codeOf(() => tl.ingest([image(0x40n, 0, 9)]))).toBe('READ_ONLY');
    expect(await codeOf(tl.flush())).toBe('READ_ONLY');
    expect(await codeOf(tl.compact())).toBe('READ_ONLY');
    expect(await codeOf(tl.gc())).toBe('READ_ONLY');
    expect(await codeOf(ro.createTimeline({ tenantId: 't', timelineId: 'x' }))).toBe('READ_ONLY');
    await ro.close();
    expect(fs.existsSync(pending)).toBe(true);
    expect(fs.existsSync(path.join(tlDir, 'something.tmp'))).toBe(true);
    child.stdin!.end();
  });

  it('takes over the lock of a writer killed with SIGKILL, and of a repository copied while open', async () => {
    const dir = tmp('lock-stale');
    await makeRepo(dir);
    const { child, report } = await holdOpen(dir);
    expect(report.ok).toBe(true);
    const copy = path.join(tmp('lock-copy'), 'repo');
    fs.cpSync(dir, copy, { recursive: true }); // a copy of a live repository, lock file included
    const fromCopy = await Repository.open(copy, { implementation: 'ts' });
    await fromCopy.close();
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const repo = await Repository.open(dir, { implementation: 'ts' });
    expect((await repo.getTimeline('t', 'main').getPage(key(0), 0x10n))[0]).toBe(1);
    await repo.close();
  });

  it('lets exactly one of several processes take over a stale lock at once', async () => {
    const dir = tmp('lock-race');
    await makeRepo(dir, 1);
    const { child } = await holdOpen(dir);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const reports = await Promise.all([0, 1, 2, 3].map(() => holdOpen(dir).then((h) => h.report)));
    expect(reports.filter((r) => r.ok)).toHaveLength(1);
    expect(reports.filter((r) => !r.ok).map((r) => r.code)).toEqual(['REPOSITORY_LOCKED', 'REPOSITORY_LOCKED', 'REPOSITORY_LOCKED']);
  });
});

describeEachCore('debts 2, 3, 5 (%s core)', (impl) => {
  it('debt 2: GC never moves the cutoff past durable data, so a crash image reopens and reads', async () => {
    const dir = tmp('gc-durable');
    const repo = await Repository.open(dir, { implementation: impl });
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    tl.ingest([image(0x10n, 0, 1)]);
    await tl.flush();
    tl.ingest([image(0x20n, 0, 2), image(0x30n, 1, 3)]); // only in memory
    const report = await tl.gc({ horizon: 0n });
    expect(report.cutoffLsn).toBe(0x10n);
    expect(tl.gcCutoffLsn).toBeLessThanOrEqual(tl.diskConsistentLsn);
    // A crash now: what is on disk is what a copy of the directory holds.
    const crashed = path.join(tmp('gc-crash'), 'repo');
    fs.cpSync(dir, crashed, { recursive: true });
    await repo.close();
    const again = await Repository.open(crashed, { implementation: impl });
    const t2 = again.getTimeline('t', 'main');
    expect(t2.lastRecordLsn).toBe(0x10n);
    expect((await t2.getPage(key(0), t2.lastRecordLsn))[0]).toBe(1);
    await again.close();
  });

  it('debt 3: a record at LSN_MAX is refused, and the timeline keeps flushing and closing', async () => {
    const dir = tmp('lsn-max');
    const repo = await Repository.open(dir, { implementation: impl });
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    expect(await codeOf(() => tl.ingest([image(LSN_MAX, 0, 1)]))).toBe('LSN_ORDER');
    tl.ingest([image(LSN_MAX - 1n, 0, 7)]);
    await tl.flush();
    expect((await tl.getPage(key(0), LSN_MAX - 1n))[0]).toBe(7);
    await repo.close();
    const again = await Repository.open(dir, { implementation: impl });
    expect(again.getTimeline('t', 'main').diskConsistentLsn).toBe(LSN_MAX - 1n);
    await again.close();
  });

  it('debt 5: a failed background flush stops ingest with its error; reopening recovers', async () => {
    const dir = tmp('flush-fail');
    const repo = await Repository.open(dir, { implementation: impl, checkpointDistance: 4 * PAGE });
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    tl.ingest([image(0x10n, 0, 1)]);
    await tl.flush();
    // The next L0 will cover LSNs 0x11..0x50: make its temp file impossible to create.
    const tlDir = path.join(dir, 'tenants', 't', 'timelines', 'main');
    const blocker = path.join(tlDir, `${deltaFileName(KEY_MIN, KEY_MAX, 0x11n, 0x51n)}.tmp`);
    fs.mkdirSync(blocker);
    for (let i = 2; i <= 5; i++) tl.ingest([image(BigInt(0x10 * i), i, i)]); // crosses checkpointDistance: a background flush
    await new Promise((resolve) => setTimeout(resolve, 200));
    const code = await codeOf(() => tl.ingest([image(0x60n, 9, 9)]));
    expect(code).toBe('IO_ERROR');
    expect(await codeOf(tl.flush())).toBe('IO_ERROR');
    expect((await tl.getPage(key(4), 0x40n))[0]).toBe(4); // reads keep working from memory
    await repo.close();
    fs.rmdirSync(blocker);
    const again = await Repository.open(dir, { implementation: impl });
    const t2 = again.getTimeline('t', 'main');
    expect(t2.lastRecordLsn).toBe(0x10n); // resend from here
    t2.ingest([image(0x20n, 2, 2)]);
    await t2.flush();
    await again.close();
  });
});

describe('debt 4: the public surface is what README documents', () => {
  it('hides timelines\' children and lifecycle, and freezes DEFAULT_BACKGROUND', async () => {
    const dir = tmp('surface');
    const repo = await Repository.open(dir, { implementation: 'ts' });
    const main = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    main.ingest([image(0x10n, 0, 1)]);
    const child = await repo.createTimeline({ tenantId: 't', timelineId: 'dev', ancestorTimelineId: 'main' });
    const exposed = main as unknown as Record<string, unknown>;
    for (const internal of ['children', 'close', 'manifest', 'dir', 'checkAboveGcCutoff', 'needsCompaction', 'readHistograms']) {
      expect(exposed[internal], internal).toBeUndefined();
    }
    expect(Object.keys(main)).toEqual([]);
    expect(child.ancestor).toBe(main); // one facade per timeline
    expect(repo.getTimeline('t', 'main')).toBe(main);
    expect(Object.isFrozen(DEFAULT_BACKGROUND)).toBe(true);
    expect(() => { (DEFAULT_BACKGROUND as { periodMs: number }).periodMs = 1; }).toThrow(TypeError);
    await repo.close();
    expect(await codeOf(() => repo.getTimeline('t', 'main'))).toBe('CLOSED');
    expect(await codeOf(main.getPage(key(0), 0x10n))).toBe('CLOSED');
  });

  it('declares no constructor a caller could use and no internals in the .d.ts', () => {
    const dts = fs.readFileSync(path.join(ROOT, 'dist', 'timeline.d.ts'), 'utf8');
    expect(dts).toContain('private constructor');
    for (const internal of ['children', 'TimelineImpl', 'timelineImpl', 'timelineFacade']) expect(dts).not.toContain(internal);
    const repoDts = fs.readFileSync(path.join(ROOT, 'dist', 'repository.d.ts'), 'utf8');
    expect(repoDts).toContain('private constructor');
    expect(repoDts).not.toContain('repositoryImpl');
    expect(Timeline.prototype).not.toHaveProperty('close');
  });
});

describe('debt 6: manifest file names are checked before they become paths', () => {
  it('refuses a manifest naming a file outside the timeline directory, and deletes nothing', async () => {
    const dir = tmp('names');
    await makeRepo(dir);
    const tlDir = path.join(dir, 'tenants', 't', 'timelines', 'main');
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, Buffer.alloc(PAGE));
    const file = path.join(tlDir, 'manifest');
    const text = fs.readFileSync(file, 'utf8');
    const m = JSON.parse(text.slice(0, text.lastIndexOf('\ncrc32 '))) as { layers: Array<Record<string, unknown>> };
    // A crafted entry: well-formed ranges, a name that walks out of the directory.
    // tenants/t/timelines/main → four levels up is the repository directory, where the victim is.
    // An image entry, so that no delta overlap check refuses it first.
    m.layers.push({ ...m.layers[0], kind: 'image', lsnStart: '0/40', lsnEnd: '0/41', fileName: '../../../../victim', sizeBytes: PAGE });
    const { crc32 } = await import('node:zlib');
    const body = JSON.stringify(m, null, 2);
    fs.writeFileSync(file, `${body}\ncrc32 ${crc32(body).toString(16).padStart(8, '0')}\n`);
    expect(await codeOf(Repository.open(dir, { implementation: 'ts' }))).toBe('CORRUPT_MANIFEST');
    expect(fs.existsSync(victim)).toBe(true);
    expect(encodeManifest).toBeTypeOf('function');
  });
});

describe('debt 8: one code per situation', () => {
  it('an LSN above lastRecordLsn is LSN_TIMEOUT from every method', async () => {
    const dir = tmp('codes');
    const repo = await Repository.open(dir, { implementation: 'ts' });
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    tl.ingest([image(0x10n, 0, 1)]);
    const ahead = 0x20n;
    expect(await codeOf(tl.getPage(key(0), ahead, { timeoutMs: 10 }))).toBe('LSN_TIMEOUT');
    expect(await codeOf(tl.getPages([key(0)], ahead, { timeoutMs: 10 }))).toBe('LSN_TIMEOUT');
    expect(await codeOf(() => tl.readPage(key(0), ahead, Buffer.alloc(PAGE)))).toBe('LSN_TIMEOUT');
    expect(await codeOf(tl.createImageLayer(ahead))).toBe('LSN_TIMEOUT');
    expect(await codeOf(repo.createTimeline({ tenantId: 't', timelineId: 'b', ancestorTimelineId: 'main', ancestorLsn: ahead }))).toBe('LSN_TIMEOUT');
    expect(await codeOf(() => tl.ingest('not an array' as unknown as WalRecord[]))).toBe('BAD_ARGUMENT');
    await repo.close();
  });

  it(`a closed core says CLOSED in both cores${NATIVE_SKIP_NOTE}`, async () => {
    for (const impl of IMPLEMENTATIONS) {
      const core = createCore(impl, { pageCacheBytes: 1 << 20 });
      core.close();
      expect(await codeOf(() => core.createLayerMap()), impl).toBe('CLOSED');
    }
  });

  it('Repository.open on a regular file is a StrataError, writable or read-only', async () => {
    const file = path.join(tmp('file'), 'plain');
    fs.writeFileSync(file, 'x');
    expect(await codeOf(Repository.open(file, { implementation: 'ts' }))).toBe('BAD_ARGUMENT');
    expect(await codeOf(Repository.open(file, { implementation: 'ts', readOnly: true }))).toBe('NOT_A_REPOSITORY');
  });

  it('the CLI\'s --json error codes are StrataError codes or the three CLI-only ones README lists', async () => {
    const dir = tmp('cli-codes');
    await makeRepo(dir);
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const allowed = new Set<string>([...Object.keys(ERROR_CODES), 'USAGE', 'NOT_FOUND', 'INTERNAL']);
    const runs: string[][] = [
      ['bogus'], ['get', dir, 't', 'main', 'nonsense', '0/10'], ['get', dir, 't', 'nope', '1663/5/16384.0#0', '0/10'],
      ['get', dir, 't', 'main', '1663/5/16384.0#9', '0/10'], ['get', dir, 't', 'main', '1663/5/16384.0#0', '0/99'],
      ['timelines', path.join(dir, 'missing')], ['dump-layer', path.join(dir, 'missing')],
    ];
    const seen = new Set<string>();
    for (const args of runs) {
      const r = spawnSync(process.execPath, [CLI, ...args, '--json'], { encoding: 'utf8' });
      expect(r.status, args.join(' ')).not.toBe(0);
      const code = (JSON.parse(r.stdout.trim().split('\n').pop() as string) as { error: { code: string } }).error.code;
      expect(allowed.has(code), `${args.join(' ')} → ${code}`).toBe(true);
      seen.add(code);
    }
    for (const c of ['USAGE', 'NOT_FOUND', 'INTERNAL']) expect(readme).toContain(`\`${c}\``);
    expect([...seen].sort()).toEqual(['BAD_ARGUMENT', 'LSN_TIMEOUT', 'NOT_A_REPOSITORY', 'NOT_FOUND', 'PAGE_NOT_FOUND', 'TIMELINE_NOT_FOUND', 'USAGE'] satisfies Array<StrataErrorCode | 'USAGE' | 'NOT_FOUND'>);
  });
});
