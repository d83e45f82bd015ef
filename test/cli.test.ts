/**
 * The `strata` CLI, run as the real binary (node bin/strata.js → dist/cli/cli.js, built by pretest)
 * against repositories written through the library. Every command, human and --json output, exit
 * codes, and verify's corruption detection (a flipped byte in any layer) and read-only behaviour.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeKey, Repository, type PageKey } from '../lib';
import { ALL_IMPLEMENTATIONS, SKIP_NATIVE, skipNoteFor } from './helpers/cores';

const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'strata.js');
const KEY: PageKey = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: 0 };
const KEY_TEXT = '1663/5/16384.0#0';

interface Run { status: number | null; stdout: string; stderr: string }

function strata(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** README's exit-code table ("CLI"): every run in this file is checked against one of these. */
const EXIT = { OK: 0, USAGE: 2, BAD_ARGUMENT: 3, NOT_FOUND: 4, CORRUPT: 5, NATIVE_UNAVAILABLE: 7, LSN_TIMEOUT: 8, GC_CUTOFF: 9 } as const;

/** The parsed --json output of a run that must have exited with `status` (success unless told). */
function json<T>(r: Run, status: number = EXIT.OK): T {
  expect(r.status, `exit status; stderr: ${r.stderr}`).toBe(status);
  return JSON.parse(r.stdout) as T;
}

/** A failed --json run: the exit status, and the error object that repeats it with a code. */
function jsonError(r: Run, status: number, code: string): { code: string; message: string; exitCode: number } {
  const { error } = json<{ error: { code: string; message: string; exitCode: number } }>(r, status);
  expect(error).toMatchObject({ code, exitCode: status });
  return error;
}

let tmp: string;
let repoDir: string;

/** main: an image + patch flushed to an L0 layer; dev: a branch with its own delta and an image layer. */
async function makeRepo(dir: string): Promise<void> {
  const repo = await Repository.open(dir);
  const main = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
  main.ingest([
    { lsn: 0x10n, key: KEY, kind: 'image', page: Buffer.alloc(8192, 1) },
    { lsn: 0x20n, key: KEY, kind: 'patch', offset: 100, data: Buffer.from('hello') },
    { lsn: 0x20n, key: { ...KEY, blockNum: 1 }, kind: 'zero' },
  ]);
  await main.flush();
  const dev = await repo.createTimeline({ tenantId: 't1', timelineId: 'dev', ancestorTimelineId: 'main', ancestorLsn: 0x20n });
  dev.ingest([{ lsn: 0x30n, key: KEY, kind: 'patch', offset: 100, data: Buffer.from('world') }]);
  await dev.flush();
  await dev.createImageLayer(0x30n);
  await repo.close();
}

function layerFiles(dir: string): string[] {
  const out: string[] = [];
  const tenants = path.join(dir, 'tenants');
  for (const t of fs.readdirSync(tenants)) {
    const tls = path.join(tenants, t, 'timelines');
    for (const tl of fs.readdirSync(tls)) {
      for (const f of fs.readdirSync(path.join(tls, tl))) if (f !== 'manifest') out.push(path.join(tls, tl, f));
    }
  }
  return out.sort();
}

function copyRepo(name: string): string {
  const dest = path.join(tmp, name);
  fs.cpSync(repoDir, dest, { recursive: true });
  return dest;
}

beforeAll(async () => {
  expect(fs.existsSync(path.join(ROOT, 'dist', 'cli', 'cli.js'))).toBe(true);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-cli-'));
  repoDir = path.join(tmp, 'repo');
  await makeRepo(repoDir);
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('strata CLI', () => {
  it('--help prints usage; no command or an unknown one is a usage error (exit 2)', () => {
    const help = strata(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: strata <command>');
    expect(strata([]).status).toBe(2);
    const unknown = strata(['frobnicate']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('unknown command');
    expect(strata(['timelines', repoDir, '--bogus']).status).toBe(2);
    expect(strata(['layers', repoDir]).status).toBe(2);
  });

  it('timelines lists every timeline with its ancestor', () => {
    const human = strata(['timelines', repoDir]);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/t1\s+dev\s+main@0\/20\s+0\/30/);
    expect(human.stdout).toMatch(/t1\s+main\s+-\s+0\/20/);
    const rows = json<{ timelineId: string; ancestorTimelineId: string | null; diskConsistentLsn: string; layers: number }[]>(strata(['timelines', repoDir, '--json']));
    expect(rows.map((r) => [r.timelineId, r.ancestorTimelineId, r.diskConsistentLsn, r.layers])).toEqual([
      ['dev', 'main', '0/30', 2], ['main', null, '0/20', 1],
    ]);
  });

  it('timelines on a directory that is no repository exits 4 and creates nothing', () => {
    const missing = path.join(tmp, 'nowhere');
    jsonError(strata(['timelines', missing, '--json']), EXIT.NOT_FOUND, 'NOT_A_REPOSITORY');
    expect(fs.existsSync(missing)).toBe(false);
  });

  it('layers shows kind, level, key/LSN ranges and size', () => {
    const layers = json<{ kind: string; level: number; lsnStart: string; lsnEnd: string; sizeBytes: number; keyStartText: string }[]>(
      strata(['layers', repoDir, 't1', 'dev', '--json']));
    expect(layers.map((l) => [l.kind, l.level, l.lsnStart, l.lsnEnd])).toEqual([['delta', 0, '0/21', '0/31'], ['image', 0, '0/30', '0/31']]);
    expect(layers.every((l) => l.sizeBytes > 0 && l.sizeBytes % 8192 === 0)).toBe(true);
    const human = strata(['layers', repoDir, 't1', 'dev']);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/delta\s+L0\s+0\/0\/0\.0#0\.\.F{36}\s+0\/21\.\.0\/31/);
    expect(human.stdout).toMatch(/image\s+L0\s+.*@0\/30/);
    expect(strata(['layers', repoDir, 't1', 'nope']).status).toBe(4);
  });

  it('dump-layer prints the summary, index stats and entries', () => {
    const file = layerFiles(path.join(repoDir)).find((f) => f.includes(`${path.sep}main${path.sep}`))!;
    const d = json<{ summary: { kind: string; entryCount: number }; index: { height: number; fanout: number }; stats: { images: number; zeros: number; patches: number };
      entries: { key: string; lsn: string; record: string; willInit: boolean; patchOffset?: number; patchLength?: number }[] }>(strata(['dump-layer', file, '--json']));
    expect(d.summary).toMatchObject({ kind: 'delta', entryCount: 3 });
    expect(d.index).toMatchObject({ height: 1, fanout: 240 });
    expect(d.stats).toMatchObject({ images: 1, zeros: 1, patches: 1 });
    expect(d.entries.map((e) => [e.key, e.lsn, e.record, e.willInit])).toEqual([
      [KEY_TEXT, '0/10', 'image', true], [KEY_TEXT, '0/20', 'patch', false], ['1663/5/16384.0#1', '0/20', 'zero', true],
    ]);
    expect(d.entries[1]).toMatchObject({ patchOffset: 100, patchLength: 5 });
    const human = strata(['dump-layer', file, '--limit', '1']);
    expect(human.status).toBe(0);
    expect(human.stdout).toContain('entries     3 (2 pages): 1 image, 1 zero, 1 patch');
    expect(human.stdout).toContain('2 more entries');
    expect(strata(['dump-layer', path.join(tmp, 'no-such-layer')]).status).toBe(4);
  });

  it('get prints the page as a hex dump or writes it to a file', async () => {
    const human = strata(['get', repoDir, 't1', 'dev', KEY_TEXT, '0/30']);
    expect(human.status).toBe(0);
    expect(human.stdout).toContain('|....world.......|');
    expect(human.stdout.trim().split('\n').pop()).toBe('00002000');
    const out = path.join(tmp, 'page.bin');
    const toFile = strata(['get', repoDir, 't1', 'main', encodeKey(KEY).toString('hex'), '0x20', '--out', out]);
    expect(toFile.status).toBe(0);
    const repo = await Repository.open(copyRepo('get-check'));
    const expected = await repo.getTimeline('t1', 'main').getPage(KEY, 0x20n);
    await repo.close();
    expect(fs.readFileSync(out).equals(expected)).toBe(true);
    const j = json<{ hex: string; bytes: number }>(strata(['get', repoDir, 't1', 'main', KEY_TEXT, '0/20', '--json']));
    expect(Buffer.from(j.hex, 'hex').equals(expected)).toBe(true);
  });

  it('get maps errors to exit codes: bad key 3, no page 4, LSN not reached 8', () => {
    expect(strata(['get', repoDir, 't1', 'dev', 'bogus', '0/30']).status).toBe(3);
    expect(strata(['get', repoDir, 't1', 'dev', KEY_TEXT, 'zz']).status).toBe(3);
    jsonError(strata(['get', repoDir, 't1', 'dev', 'bogus', '0/30', '--json']), EXIT.BAD_ARGUMENT, 'BAD_ARGUMENT');
    jsonError(strata(['get', repoDir, 't1', 'nope', KEY_TEXT, '0/30', '--json']), EXIT.NOT_FOUND, 'TIMELINE_NOT_FOUND');
    const notFound = strata(['get', repoDir, 't1', 'dev', '1663/5/16384.0#9', '0/30']);
    expect(notFound.status).toBe(4);
    expect(notFound.stderr).toContain('PAGE_NOT_FOUND');
    const ahead = strata(['get', repoDir, 't1', 'dev', KEY_TEXT, '0/99']);
    expect(ahead.status).toBe(8);
    expect(ahead.stderr).toContain('LSN_TIMEOUT');
    jsonError(strata(['get', repoDir, 't1', 'dev', KEY_TEXT, '0/99', '--json']), EXIT.LSN_TIMEOUT, 'LSN_TIMEOUT');
  });

  it('a malformed option value is a bad argument (exit 3), an unknown option or a missing value a usage error (exit 2)', () => {
    for (const args of [
      ['get', repoDir, 't1', 'dev', KEY_TEXT, '0/30', '--wait', 'soon'],
      ['dump-layer', layerFiles(repoDir)[0], '--limit=-3'],
      ['verify', repoDir, '--impl', 'fortran'],
    ]) {
      jsonError(strata([...args, '--json']), EXIT.BAD_ARGUMENT, 'BAD_ARGUMENT');
      const human = strata(args);
      expect(human.status, args.join(' ')).toBe(EXIT.BAD_ARGUMENT);
      expect(human.stderr).toMatch(/^strata: BAD_ARGUMENT: (--wait|--limit|--impl) /);
    }
    expect(strata(['verify', repoDir, '--limit']).status).toBe(EXIT.USAGE);
    expect(strata(['dump-layer', layerFiles(repoDir)[0], '--limit', '-3']).status).toBe(EXIT.USAGE); // a value that looks like an option
    expect(strata(['verify', repoDir, '--frobnicate']).status).toBe(EXIT.USAGE);
    expect(strata(['verify', repoDir, '--progress', '--no-progress']).status).toBe(EXIT.USAGE);
  });

  it('verify passes on a good repository, with a progress bar on stderr when asked', () => {
    const r = strata(['verify', repoDir, '--progress']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^ok: 2 timelines, 3\/3 layers verified/m);
    expect(r.stderr).toMatch(/verify \[#+\] 100%/);
    const quiet = strata(['verify', repoDir, '--no-progress']);
    expect(quiet.status).toBe(0);
    expect(quiet.stderr).toBe('');
  });

  // The native case needs the addon (helpers/cores.ts: it fails without it unless STRATA_IMPL=ts).
  for (const impl of ALL_IMPLEMENTATIONS) it.skipIf(impl === 'native' && SKIP_NATIVE)(`verify exits 5 and names the file for a flipped byte in any layer (${impl} core)${skipNoteFor(impl)}`, () => {
    const files = layerFiles(repoDir);
    expect(files.length).toBe(3);
    for (const [i, rel] of files.map((f) => path.relative(repoDir, f)).entries()) {
      const dir = copyRepo(`flip-${impl}-${i}`);
      const file = path.join(dir, rel);
      const bytes = fs.readFileSync(file);
      // One byte in the middle of a block other than the summary's first bytes, and one in block 0.
      for (const at of [bytes.length - 8192 + 4000, 200]) {
        const copy = Buffer.from(bytes);
        copy[at] ^= 0x40;
        fs.writeFileSync(file, copy);
        const r = strata(['verify', dir, '--impl', impl]);
        expect(r.status, `${rel} byte ${at}`).toBe(5);
        expect(r.stdout).toContain(file);
        expect(r.stdout).toContain('CORRUPT_LAYER');
      }
    }
  });

  it('verify reports a damaged manifest and a missing layer; it deletes nothing', () => {
    const dir = copyRepo('manifest');
    const manifest = path.join(dir, 'tenants', 't1', 'timelines', 'main', 'manifest');
    fs.writeFileSync(manifest, fs.readFileSync(manifest, 'utf8').replace('"lz4"', '"LZ4"'));
    const r = strata(['verify', dir, '--json']);
    expect(r.status).toBe(5);
    const report = json<{ ok: boolean; faults: { file: string; code: string }[] }>(r, EXIT.CORRUPT);
    expect(report.faults).toContainEqual(expect.objectContaining({ file: manifest, code: 'CORRUPT_MANIFEST' }));
    // dev's ancestor is unreadable now, which verify reports too.
    expect(report.faults.every((f) => f.code === 'CORRUPT_MANIFEST')).toBe(true);

    const dir2 = copyRepo('missing');
    const victim = layerFiles(dir2)[0];
    fs.rmSync(victim);
    const orphan = path.join(path.dirname(layerFiles(dir2)[0]), 'leftover.tmp');
    fs.writeFileSync(orphan, 'x');
    const r2 = strata(['verify', dir2]);
    expect(r2.status).toBe(5);
    expect(r2.stdout).toContain(`layer ${path.basename(victim)} is missing`);
    expect(r2.stdout).toContain(`orphan ${orphan}`);
    expect(fs.existsSync(orphan)).toBe(true);
  });

  it('version reports the package and the native binding', () => {
    const info = json<{ version: string; loaded: boolean; target: string; error: string | null }>(strata(['version', '--json']));
    expect(info.version).toBe((JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
    expect(info.target).toBe(`${process.platform}-${process.arch}`);
    expect(info.loaded).toBe(info.error === null);
    const broken = strata(['--version'], { STRATA_NATIVE_PATH: path.join(tmp, 'missing.node') });
    expect(broken.status).toBe(0);
    expect(broken.stdout).toContain('native: unavailable: cannot load');
    const forced = strata(['verify', repoDir, '--impl', 'native'], { STRATA_NATIVE_PATH: path.join(tmp, 'missing.node') });
    expect(forced.status).toBe(7);
    jsonError(strata(['verify', repoDir, '--impl', 'native', '--json'], { STRATA_NATIVE_PATH: path.join(tmp, 'missing.node') }), EXIT.NATIVE_UNAVAILABLE, 'NATIVE_UNAVAILABLE');
  });
});

describe('strata compact and gc', () => {
  it('compacts L0 layers and collects garbage through the real binary', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-cli-life-'));
    try {
      const repo = await Repository.open(dir);
      const tl = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
      for (let i = 1; i <= 3; i++) {
        tl.ingest([{ lsn: BigInt(i) * 0x10n, key: KEY, kind: 'image', page: Buffer.alloc(8192, i) }]);
        await tl.flush();
      }
      await repo.close();

      const below = strata(['compact', dir, 't1', 'main', '--json']);
      expect(below.status).toBe(0);
      const first = json<{ l0Compacted: string[]; imageLayersCreated: unknown[] }>(below);
      expect(first.l0Compacted).toEqual([]); // 3 < compactionThreshold
      expect(first.imageLayersCreated).toHaveLength(1); // but 3 stacked deltas reach imageCreationThreshold

      const forced = strata(['compact', dir, 't1', 'main', '--force']);
      expect(forced.status).toBe(0);
      expect(forced.stdout).toMatch(/compacted 3 L0 layer\(s\) into 1 L1 layer\(s\); 0 image layer\(s\) created/);
      const layers = json<Array<{ level: number; kind: string }>>(strata(['layers', dir, 't1', 'main', '--json']));
      expect(layers.map((l) => `${l.kind}${l.level}`).sort()).toEqual(['delta1', 'image0']);

      const gc = strata(['gc', dir, 't1', 'main', '--horizon', '0', '--json']);
      expect(gc.status).toBe(0);
      const report = json<{ cutoffLsn: string; layersRemoved: number }>(gc);
      expect(report.cutoffLsn).toBe('0/30');
      expect(report.layersRemoved).toBe(1); // the L1 is shadowed by the image at 0/30
      expect(strata(['verify', dir]).status).toBe(0);
      const page = strata(['get', dir, 't1', 'main', KEY_TEXT, '0/30', '--json']);
      expect(json<{ hex: string }>(page).hex.slice(0, 4)).toBe('0303');
      const old = strata(['get', dir, 't1', 'main', KEY_TEXT, '0/10']);
      expect(old.status).toBe(9);
      expect(old.stderr).toContain('LSN_GC_CUTOFF');
      jsonError(strata(['get', dir, 't1', 'main', KEY_TEXT, '0/10', '--json']), EXIT.GC_CUTOFF, 'LSN_GC_CUTOFF');
      // A malformed value is a bad argument (3), not a usage error (2): README's exit table.
      expect(strata(['gc', dir, 't1', 'main', '--horizon', 'x']).status).toBe(EXIT.BAD_ARGUMENT);
      jsonError(strata(['gc', dir, 't1', 'main', '--horizon=-1', '--json']), EXIT.BAD_ARGUMENT, 'BAD_ARGUMENT');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
