/**
 * Bad command lines for the `strata` CLI, as a seeded random property (docs/RELIABILITY.md, "Bad
 * API input"): a valid command line of every command gets one thing broken — an unknown option, an
 * option without its value, a wrong number of arguments, a malformed number, LSN, key, time, id or
 * address, a nonexistent or non-directory path, a bad --impl. Each run must exit with one of the
 * README's documented nonzero codes (never 1, the "bug" code) after a one-line `strata: …` error
 * on stderr (plus the usage hint for exit 2) and no stack trace; with --json the error object on
 * stdout repeats the exit code. Runs main() in-process (fast); a few fixed cases also run the real
 * binary. STRATA_BAD_INPUT_CASES raises the number of random command lines.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../lib/cli/cli';
import { Repository } from '../lib';
import { badInputCases } from './helpers/bad_input';
import { Rng } from './helpers/random';

const CASES = badInputCases(250, 0.05);
const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'strata.js');
const KEY = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: 0 };
/** A run that has not ended by then is a command that did not refuse (serve, follow): a failure. */
const RUN_LIMIT_MS = 20_000;
const DOCUMENTED_FAILURE_CODES = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];

type Kind = 'remote' | 'dir' | 'tenant' | 'timeline' | 'key' | 'lsn' | 'time' | 'rel' | 'file' | 'newdir' | 'addr';
interface Base { args: string[]; kinds: Record<number, Kind>; /** serve, attach: a missing directory would be created (and served) */ noMissingDir?: boolean }

const BAD: Record<Kind | 'num', readonly string[]> = {
  num: ['x', '-1', '1.5', '', '1e3', '0x10', ' 1', '+1', '99999999999999999999999', '18446744073709551616'],
  lsn: ['x', '0/', '/1', '1/2/3', 'FFFFFFFFF/0', '-1', '', '0x', '0x1FFFFFFFFFFFFFFFF', 'G/0'],
  key: ['x', '1663/5/16384.0', '1663/5/16384.9#0', '1663/5/16384.0#4294967296', 'abcd', '0'.repeat(35), '-1/5/16384.0#0', ''],
  rel: ['x', '1663/5/16384', '1663/5/16384.7', '1663/5/99999999999.0', '', '1663//16384.0'],
  time: ['x', '2026-12-01', '2026-13-01T00:00:00Z', '2026-12-01T10:30:00', '', 'yesterday', '99999-01-01T00:00:00Z'],
  tenant: ['', '../t1', 'a/b', 'x'.repeat(300), 'nope', '.', 'a b', '\u00e9'],
  timeline: ['', '../main', 'a/b', 'nope', '..', 'x'.repeat(300)],
  dir: [],
  remote: [],
  file: [],
  newdir: [],
  addr: ['x', '127.0.0.1', '127.0.0.1:', ':0', '127.0.0.1:99999', '127.0.0.1:-1', '127.0.0.1:x', '[::1', ''],
};
const NUMERIC_FLAGS = ['--limit', '--wait', '--horizon', '--db', '--flush-interval', '--interval', '--max-in-flight', '--page-cache-bytes', '--throttle-burst', '--ttl', '--generation'];

interface Run { code: number; stdout: string; stderr: string }

/** main() with stdout and stderr captured. */
async function run(args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { stdout += String(chunk); return true; });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { stderr += String(chunk); return true; });
  try {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<number>((_, reject) => { timer = setTimeout(() => reject(new Error(`strata ${args.join(' ')}: still running after ${RUN_LIMIT_MS} ms`)), RUN_LIMIT_MS); });
    const code = await Promise.race([main(args), limit]);
    clearTimeout(timer);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

/** The property every refused command line must have. */
function checkRefusal(r: Run, what: string, json: boolean): void {
  expect(DOCUMENTED_FAILURE_CODES, `${what}: exit ${r.code}; stderr: ${r.stderr}`).toContain(r.code);
  // Progress notes may come first ("importing … into …"); then exactly one error line, and for
  // exit 2 the usage hint.
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  const errors = lines.filter((l) => l.startsWith('strata: '));
  expect(errors.length, `${what}: not one error line: ${r.stderr}`).toBe(1);
  const hint = r.code === 2 ? 1 : 0;
  expect(lines[lines.length - 1 - hint], `${what}: the error is not the last line: ${r.stderr}`).toMatch(/^strata: \S/);
  if (hint === 1) expect(lines[lines.length - 1], what).toMatch(/strata --help/);
  expect(r.stderr, `${what}: a stack trace`).not.toMatch(/^\s+at /m);
  if (json) {
    const last = r.stdout.trim().split('\n').pop() ?? '';
    const parsed = JSON.parse(last) as { error: { code: string; exitCode: number; message: string } };
    expect(parsed.error.exitCode, what).toBe(r.code);
    expect(parsed.error.message.length, what).toBeGreaterThan(0);
  }
}

let tmp: string;
let repoDir: string;
let layerFile: string;
let aFile: string;
let emptyDir: string;
let remoteDir: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-clibad-'));
  repoDir = path.join(tmp, 'repo');
  const repo = await Repository.open(repoDir);
  const tl = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
  tl.ingest([{ lsn: 0x10n, key: KEY, kind: 'image', page: Buffer.alloc(8192, 1) }, { lsn: 0x20n, key: KEY, kind: 'patch', offset: 10, data: Buffer.from('x') }]);
  await tl.flush();
  await repo.close();
  const tlDir = path.join(repoDir, 'tenants', 't1', 'timelines', 'main');
  layerFile = path.join(tlDir, fs.readdirSync(tlDir).find((f) => f.includes('__')) as string);
  aFile = path.join(tmp, 'a-file');
  fs.writeFileSync(aFile, 'x');
  emptyDir = path.join(tmp, 'empty');
  fs.mkdirSync(emptyDir);
  remoteDir = path.join(tmp, 'remote');
  fs.mkdirSync(remoteDir);
});

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function bases(): Base[] {
  const fresh = path.join(tmp, `out-${Math.random().toString(36).slice(2)}`);
  const R = repoDir;
  return [
    { args: ['timelines', R], kinds: { 1: 'dir' } },
    { args: ['layers', R, 't1', 'main'], kinds: { 1: 'dir', 2: 'tenant', 3: 'timeline' } },
    { args: ['dump-layer', layerFile, '--limit', '5'], kinds: { 1: 'file' } },
    { args: ['get', R, 't1', 'main', '1663/5/16384.0#0', '0/20', '--wait', '0'], kinds: { 1: 'dir', 2: 'tenant', 3: 'timeline', 4: 'key', 5: 'lsn' } },
    { args: ['verify', R, '--no-progress'], kinds: { 1: 'dir' } },
    { args: ['compact', R, 't1', 'main'], kinds: { 1: 'dir', 2: 'tenant', 3: 'timeline' } },
    { args: ['gc', R, 't1', 'main', '--horizon', '0'], kinds: { 1: 'dir', 2: 'tenant', 3: 'timeline' } },
    { args: ['import-pg', R, 't1', 'imported', emptyDir], kinds: { 1: 'dir', 2: 'tenant', 3: 'timeline', 4: 'dir' } },
    { args: ['ingest-wal', R, 't1', 'main', emptyDir, '--start', '0/20'], kinds: { 1: 'dir', 2: 'tenant', 3: 'timeline', 4: 'dir', 6: 'lsn' } },
    { args: ['rel-size', R, 't1', 'main', '1663/5/16384.0', '0/20'], kinds: { 1: 'dir', 2: 'tenant', 3: 'timeline', 4: 'rel', 5: 'lsn' } },
    { args: ['relations', R, 't1', 'main', '0/20', '--db', '5'], kinds: { 1: 'dir', 2: 'tenant', 3: 'timeline', 4: 'lsn' } },
    { args: ['lsn-at', R, 't1', 'main', '2026-12-01T10:30:00Z'], kinds: { 1: 'dir', 2: 'tenant', 3: 'timeline', 4: 'time' } },
    { args: ['export-pg', R, 't1', 'main', fresh, '--lsn', '0/20'], kinds: { 1: 'dir', 2: 'tenant', 3: 'timeline', 4: 'newdir', 6: 'lsn' } },
    { args: ['follow', R, 't1', 'main', '--connection', 'host=127.0.0.1 port=1', '--interval', '1000', '--start', '0/20'], kinds: { 1: 'dir', 2: 'tenant', 3: 'timeline', 9: 'lsn' } },
    { args: ['serve', '--data', R, '--listen', '127.0.0.1:0', '--no-auth'], kinds: { 2: 'dir', 4: 'addr' }, noMissingDir: true },
    { args: ['token', '--signing-key', aFile, '--tenant', 't1', '--scope', 'pageserver'], kinds: { 2: 'file', 4: 'tenant' } },
    { args: ['remote', 'status', R, '--remote-path', remoteDir], kinds: { 2: 'dir', 4: 'remote' } },
    // attach creates a missing (or empty) directory: only a file there is wrong.
    { args: ['attach', R, 't1', '--remote-path', remoteDir], kinds: { 1: 'dir', 2: 'tenant', 4: 'remote' }, noMissingDir: true },
    { args: ['detach', R, 't1', '--remote-path', remoteDir], kinds: { 1: 'dir', 2: 'tenant', 4: 'remote' } },
  ];
}

/** Breaks one thing; returns the command line and whether the break is a usage error (exit 2). */
function mutate(b: Base, rng: Rng): { args: string[]; usage: boolean; how: string } {
  const args = [...b.args];
  const slots = Object.entries(b.kinds).map(([i, k]) => [Number(i), k] as const);
  const choice = rng.int(0, slots.length > 0 ? 7 : 4);
  switch (choice) {
    case 0: {
      const opt = rng.pick(['--bogus', '--JSON', '--limitt', '-z', '--no-such=1']);
      args.splice(rng.int(1, args.length + 1), 0, opt);
      return { args, usage: true, how: `unknown option ${opt}` };
    }
    case 1: {
      const opt = rng.pick(['--lsn', '--limit', '--wait', '--out', '--impl', '--remote-path', '--listen']);
      args.push(opt);
      return { args, usage: true, how: `${opt} without its value` };
    }
    case 2: {
      // An extra positional argument (at the end: before it, it could be an option's value).
      args.push(rng.pick(['extra', '0/20', 't1']));
      return { args, usage: true, how: 'one argument too many' };
    }
    case 3: {
      const flag = rng.pick(NUMERIC_FLAGS);
      const v = rng.pick(BAD.num);
      args.push(rng.chance(0.5) || v.startsWith('-') ? `${flag}=${v}` : flag, ...(rng.chance(0.5) || v.startsWith('-') ? [] : [v]));
      if (args[args.length - 1] === flag) args.push(v);
      return { args, usage: false, how: `${flag} ${JSON.stringify(v)}` };
    }
    case 4: {
      const v = rng.pick(['fortran', '', 'NATIVE', 'auto ']);
      args.push(`--impl=${v}`);
      return { args, usage: false, how: `--impl ${JSON.stringify(v)}` };
    }
    default: {
      const [i, kind] = rng.pick(slots);
      let v: string;
      // import-pg makes a repository in a missing or empty directory (then fails on the data directory).
      if (kind === 'dir') v = b.noMissingDir === true || (b.args[0] === 'import-pg' && i === 1) ? aFile : rng.pick([path.join(tmp, 'missing', 'x'), aFile, emptyDir]);
      // A missing local remote directory is an empty remote storage, not an error: only a file is wrong.
      else if (kind === 'remote') v = aFile;
      else if (kind === 'file') v = rng.pick([path.join(tmp, 'missing-file'), emptyDir, repoDir]);
      else if (kind === 'newdir') v = rng.pick([aFile, repoDir, '']);
      else v = rng.pick(BAD[kind]);
      if (v === '' && b.args[i].startsWith('--') === false && args[i - 1]?.startsWith('--')) v = 'x';
      args[i] = v;
      return { args, usage: false, how: `${kind} argument ${i} = ${JSON.stringify(v)}` };
    }
  }
}

describe('CLI bad command lines', () => {
  it(`${CASES} random broken command lines: a documented nonzero exit, one error line, no stack`, async () => {
    const rng = new Rng(131);
    const seen = new Map<number, number>();
    for (let i = 0; i < CASES; i++) {
      const base = rng.pick(bases());
      const { args, usage, how } = mutate(base, rng);
      const json = rng.chance(0.3);
      const full = json ? [...args, '--json'] : args;
      const what = `case ${i}: strata ${full.map((a) => JSON.stringify(a)).join(' ')} (${how})`;
      const r = await run(full);
      checkRefusal(r, what, json);
      if (usage) expect(r.code, what).toBe(2);
      seen.set(r.code, (seen.get(r.code) ?? 0) + 1);
    }
    // The mix reached the usage, bad-argument and not-found classes.
    for (const code of [2, 3, 4]) expect(seen.get(code) ?? 0, `exit ${code} never seen: ${JSON.stringify([...seen])}`).toBeGreaterThan(0);
    // Nothing broken was half done: no timeline imported, no export directory left.
    expect(fs.existsSync(path.join(repoDir, 'tenants', 't1', 'timelines', 'imported'))).toBe(false);
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith('out-'))).toEqual([]);
    // …and no repository made in an empty or missing directory by a command that then failed.
    expect(fs.readdirSync(emptyDir)).toEqual([]);
    expect(fs.existsSync(path.join(tmp, 'missing'))).toBe(false);
  }, Math.max(120_000, CASES * 500));

  it('fixed cases: the exit code of each class, through the real binary too', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['frobnicate'], 2, /unknown command "frobnicate"/],
      [['timelines'], 2, /takes 1 argument/],
      [['timelines', repoDir, '--bogus'], 2, /bogus/],
      [['get', repoDir, 't1', 'main', '1663/5/16384.0#0', '0/20', '--wait'], 2, /wait/],
      [['get', repoDir, 't1', 'main', '1663/5/16384.0#0', 'x/20'], 3, /x\/20/],
      [['get', repoDir, 't1', 'main', 'x', '0/20'], 3, /key/],
      [['get', repoDir, 't1', 'main', '1663/5/16384.0#0', '0/20', '--wait', '99999999999999999999999'], 3, /--wait/],
      [['dump-layer', layerFile, '--limit', '18446744073709551616'], 3, /--limit/],
      [['gc', repoDir, 't1', 'main', '--horizon', '18446744073709551616'], 3, /--horizon/],
      [['attach', repoDir, 't1', '--generation', '9007199254740993', '--remote-path', remoteDir], 3, /--generation/],
      [['follow', repoDir, 't1', 'main', '--connection', 'host=127.0.0.1 port=1', '--interval', '4294967296'], 3, /--interval/],
      [['timelines', path.join(tmp, 'missing')], 4, /missing/],
      [['timelines', aFile], 4, /a-file/],
      [['layers', repoDir, 't1', 'nope'], 4, /nope/],
      [['serve', '--data', repoDir, '--listen', '127.0.0.1:99999', '--no-auth'], 3, /99999/],
      [['serve', '--data', aFile, '--listen', '127.0.0.1:0', '--no-auth'], 3, /a-file/],
      [['rel-size', repoDir, 't1', 'main', '1663/5/16384.7', '0/20'], 3, /16384\.7|fork/],
      [['timelines', repoDir, '--impl', 'fortran'], 3, /fortran/],
    ];
    for (const [args, code, msg] of cases) {
      const what = `strata ${args.join(' ')}`;
      const r = await run(args);
      checkRefusal(r, what, false);
      expect(r.code, `${what}: ${r.stderr}`).toBe(code);
      expect(r.stderr, what).toMatch(msg);
    }
    // The launcher: same exit code, same one line, no stack.
    for (const [args, code] of cases.slice(0, 5)) {
      const p = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8' });
      expect(p.status, `bin: ${args.join(' ')}: ${p.stderr}`).toBe(code);
      expect(p.stderr).toMatch(/^strata: /);
      expect(p.stderr).not.toMatch(/^\s+at /m);
    }
  }, 120_000);
});
