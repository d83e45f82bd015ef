/**
 * The native load generator of bench/serve.js's paced runs (bench/native/pageload.c): it builds,
 * draws the same keys as the Node worker, prints the worker's JSON fields for a short paced run
 * against a real page server, and fails loudly (non-zero exit, a message naming the cause) on a
 * closed port, a refused handshake and an ERROR answer. No latency assertions: speed is bench/'s.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_SIZE, Repository } from '../lib';
import { Server } from '../lib/service/page_server';
import { tmpDir } from './helpers/layers';
import { removeDir } from './helpers/service';

/* eslint-disable @typescript-eslint/no-require-imports */
const { ensurePageload, pageloadArgs } = require('../bench/lib/pageload.js') as {
  ensurePageload: () => { path?: string; error?: string };
  pageloadArgs: (spec: Record<string, unknown>) => string[];
};
const bench = require('../bench/serve.js') as {
  rng: (seed: number) => () => number;
  keyOf: (i: number) => { spcOid: number; dbOid: number; relNumber: number; forkNum: number; blockNum: number };
  LSN: bigint;
};
/* eslint-enable @typescript-eslint/no-require-imports */

const ROOT = path.join(__dirname, '..');
const TENANT = 'quiet';
/** Pages stored; a run over more keys than this asks for pages that do not exist. */
const PAGES = 64;
const RATE_PER_SEC = 400;
const RUN_MS = 1000;
const WARMUP_MS = 200;
/** The fields bench/serve.js reads from a paced run, whichever generator ran it. */
const FIELDS = ['pagesPerSec', 'requestsPerSec', 'p50Ms', 'p99Ms', 'maxMs', 'requests', 'throttled', 'errors', 'p99FromSendMs', 'sendLagP99Ms', 'sendLagMaxMs', 'generator'];

const built = ensurePageload();
const BIN = built.path;
if (BIN === undefined) process.stdout.write(`skipped: the native load generator does not build here (${built.error})\n`);

function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const spec = (port: number, over: Record<string, unknown> = {}): Record<string, unknown> => ({
  port, tenant: TENANT, rate: RATE_PER_SEC, ms: RUN_MS, warmupMs: WARMUP_MS, pages: PAGES, seed: 12, lsn: bench.LSN, ...over,
});

describe.skipIf(BIN === undefined)('native load generator (bench/native/pageload.c)', () => {
  let dir: string;
  let repo: Repository;
  let server: Server;
  let port: number;

  beforeAll(async () => {
    dir = tmpDir('pageload');
    repo = await Repository.open(dir);
    const tl = await repo.createTimeline({ tenantId: TENANT, timelineId: 'main' });
    tl.ingest(Array.from({ length: PAGES }, (_, i) => ({ lsn: bench.LSN, key: bench.keyOf(i), kind: 'image' as const, page: new Uint8Array(PAGE_SIZE).fill(i) })));
    server = new Server(repo, { auth: { disabled: true } });
    ({ port } = await server.listen('127.0.0.1', 0));
  });

  afterAll(async () => {
    await server?.close();
    await repo?.close();
    if (dir) removeDir(dir);
  });

  it('draws the Node worker\'s key sequence (xorshift32, keyOf) for a seed', async () => {
    const n = 2000;
    const r = await run(BIN!, ['--print-keys', String(n), '--pages', '1024', '--seed', '12']);
    expect(r.code, r.stderr).toBe(0);
    const rnd = bench.rng(12);
    const want = Array.from({ length: n }, () => bench.keyOf(Math.floor(rnd() * 1024)).blockNum);
    expect(r.stdout.trim().split('\n').map(Number)).toEqual(want);
  });

  it('runs a paced load and prints the Node worker\'s fields', async () => {
    const r = await run(BIN!, pageloadArgs(spec(port)));
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(res).sort()).toEqual([...FIELDS].sort());
    expect(res.generator).toBe('native');
    expect(res.errors).toBe(0);
    expect(res.throttled).toBe(0);
    // Loose: the machine may be busy; half the offered rate shows the pacing and the counting work.
    expect(res.requestsPerSec as number).toBeGreaterThan(RATE_PER_SEC * 0.5);
    expect(res.requestsPerSec as number).toBeLessThanOrEqual(RATE_PER_SEC * 1.05);
    expect(res.pagesPerSec).toBe(res.requestsPerSec);
    expect(res.requests).toBe(Math.round((res.requestsPerSec as number) * RUN_MS / 1000));
    expect(res.p50Ms as number).toBeLessThanOrEqual(res.p99Ms as number);
    expect(res.p99Ms as number).toBeLessThanOrEqual(res.maxMs as number);
    // Each request's due time is at or before its send: due-to-answer dominates send-to-answer.
    expect(res.p99FromSendMs as number).toBeLessThanOrEqual(res.p99Ms as number);
    expect(res.sendLagP99Ms as number).toBeGreaterThanOrEqual(0);
  });

  it('prints the same fields as the Node worker for the same paced run', async () => {
    const r = await run(process.execPath, [path.join(ROOT, 'bench', 'serve.js'), '--worker', JSON.stringify({ ...spec(port, { ms: 300, warmupMs: 0, lsn: undefined }), conns: 1, depth: 0, batch: 1 })]);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(res).sort()).toEqual([...FIELDS].sort());
    expect(res.generator).toBe('node');
  });

  it('fails with a clear message on a closed port', async () => {
    // A port that was just listening and is now closed.
    const spare = new Server(repo, { auth: { disabled: true } });
    const { port: closed } = await spare.listen('127.0.0.1', 0);
    await spare.close();
    const r = await run(BIN!, pageloadArgs(spec(closed, { ms: 100 })));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^pageload: connect to 127\\.0\\.0\\.1:${closed}: Connection refused`));
  });

  it('fails with the REFUSE\'s code and message for a tenant the server does not have', async () => {
    const r = await run(BIN!, pageloadArgs(spec(port, { tenant: 'nobody', ms: 100 })));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^pageload: page service refused: TIMELINE_NOT_FOUND: .*nobody/);
  });

  it('fails on an ERROR answer, naming the request and the code', async () => {
    // Keys over 4× the stored pages: most requests ask for a page that was never written.
    const r = await run(BIN!, pageloadArgs(spec(port, { pages: PAGES * 4, ms: 200, warmupMs: 0 })));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^pageload: ERROR for request \d+: PAGE_NOT_FOUND: /);
  });

  it('refuses bad arguments with a usage message (exit 2)', async () => {
    const r = await run(BIN!, ['--port', String(port), '--tenant', TENANT, '--rate', 'fast', '--ms', '100', '--pages', '8']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^pageload: --rate must be a number/);
  });
});
