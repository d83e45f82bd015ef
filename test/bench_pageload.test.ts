/**
 * The native load generator of bench/serve.js's paced runs (bench/native/pageload.c): it builds,
 * draws the same keys as the Node worker, prints the worker's JSON fields for a short paced run
 * against a real page server, and fails loudly (non-zero exit, a message naming the cause) on a
 * closed port, a refused handshake and an ERROR answer. No latency assertions: speed is bench/'s.
 */
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_SIZE, Repository } from '../lib';
import { generateAuthKeys, readSigningKey, signToken } from '../lib/service/auth';
import { Server } from '../lib/service/page_server';
import { tmpDir } from './helpers/layers';
import { removeDir } from './helpers/service';

/* eslint-disable @typescript-eslint/no-require-imports */
const { ensurePageload, ensurePagefloor, pageloadArgs } = require('../bench/lib/pageload.js') as {
  ensurePageload: () => { path?: string; error?: string };
  ensurePagefloor: () => { path?: string; error?: string };
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
const FIELDS = ['pagesPerSec', 'requestsPerSec', 'p50Ms', 'p99Ms', 'maxMs', 'requests', 'throttled', 'errors', 'p99FromSendMs', 'sendLagP50Ms', 'sendLagP99Ms', 'sendLagMaxMs', 'generator'];

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

/** A frame: u32 length, u8 type, u32 id, payload. */
function frame(type: number, id: number, payload: Buffer, length = 9 + payload.length): Buffer {
  const h = Buffer.alloc(9);
  h.writeUInt32BE(length, 0);
  h[4] = type;
  h.writeUInt32BE(id, 5);
  return Buffer.concat([h, payload]);
}

const HELLO_OK = (() => {
  const p = Buffer.alloc(18);
  p.writeUInt16BE(2, 0);
  p.writeUInt32BE(1 << 20, 2);
  p.writeUInt16BE(64, 6);
  p.writeUInt16BE(64, 8);
  return frame(0x02, 0, p);
})();

/** A code/message payload (str16 twice), or one whose message length runs past the frame. */
function codeMessage(code: string, message: string, overrun = false): Buffer {
  const c = Buffer.from(code);
  const m = Buffer.from(message);
  const p = Buffer.alloc(4 + c.length + m.length);
  p.writeUInt16BE(c.length, 0);
  c.copy(p, 2);
  p.writeUInt16BE(m.length + (overrun ? 100 : 0), 2 + c.length);
  m.copy(p, 4 + c.length);
  return p;
}

/**
 * A fake page server: answers the HELLO with `hello` and the first request with `answer`, so the
 * generator meets frames a correct server never sends. Resolves with pageload's exit and stderr.
 */
async function againstFake(hello: Buffer, answer: Buffer): Promise<{ code: number | null; stderr: string }> {
  const srv = net.createServer((sock) => {
    let seen = 0;
    sock.on('data', () => {
      sock.write(seen++ === 0 ? hello : answer);
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  try {
    const port = (srv.address() as net.AddressInfo).port;
    return await run(BIN!, pageloadArgs(spec(port, { ms: 300, warmupMs: 0, rate: 50 })));
  } finally {
    srv.close();
  }
}

describe.skipIf(BIN === undefined)('native load generator against broken frames', () => {
  const cases: Array<[string, Buffer, Buffer, RegExp]> = [
    ['a page for a request never sent', HELLO_OK, frame(0x20, 999, Buffer.alloc(PAGE_SIZE)), /answers request id 999, which is not outstanding/],
    ['a length past MAX_FRAME_BYTES', HELLO_OK, frame(0x20, 1, Buffer.alloc(0), 0x7fff_ffff), /frame length 2147483647 at stream offset \d+ \(must be 9 … 1048576\)/],
    ['a length below the header', HELLO_OK, frame(0x20, 1, Buffer.alloc(0), 4), /frame length 4 at stream offset/],
    ['a short page', HELLO_OK, frame(0x20, 1, Buffer.alloc(100)), /PAGE frame for request 1 .* holds 100 bytes \(must be 8192\)/],
    ['a frame of another kind', HELLO_OK, frame(0x22, 1, Buffer.alloc(4)), /unexpected frame of type 0x22 \(request id 1\)/],
    ['an ERROR whose message runs past the frame', HELLO_OK, frame(0x2f, 1, codeMessage('BAD_ARGUMENT', 'x', true)), /malformed ERROR frame \(request id 1/],
    ['a PROTOCOL_VIOLATION', HELLO_OK, frame(0x30, 1, codeMessage('PROTOCOL_ERROR', 'bad bytes at 9')), /PROTOCOL_VIOLATION for request 1: PROTOCOL_ERROR: bad bytes at 9/],
    ['a HELLO_OK of the wrong size', frame(0x02, 0, Buffer.alloc(10)), Buffer.alloc(0), /HELLO_OK payload of 10 bytes \(must be 18\)/],
    ['a handshake answered by a page', frame(0x20, 0, Buffer.alloc(PAGE_SIZE)), Buffer.alloc(0), /answered the handshake with a frame of type 0x20/],
  ];
  for (const [what, hello, answer, message] of cases) {
    it(`exits 1 on ${what}`, async () => {
      const r = await againstFake(hello, answer);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^pageload: /);
      expect(r.stderr).toMatch(message);
    });
  }
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
    // No lower bound on the rate (a busy machine may fall behind: speed is bench/'s); answers came
    // back, and the schedule is never exceeded.
    expect(res.requests as number).toBeGreaterThan(0);
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

  it('sends the token in its HELLO to a server with auth (and is refused without one)', async () => {
    const keys = await generateAuthKeys(path.join(dir, 'auth'));
    const token = await signToken(readSigningKey(keys.signingKeyFile), { tenantId: TENANT, scope: 'pageserver', expiresInSeconds: 600 });
    const authed = new Server(repo, { auth: { keysFile: keys.keysFile } });
    const { port: authPort } = await authed.listen('127.0.0.1', 0);
    try {
      const ok = await run(BIN!, [...pageloadArgs(spec(authPort, { ms: 200, warmupMs: 0 })), '--token', token]);
      expect(ok.code, ok.stderr).toBe(0);
      expect((JSON.parse(ok.stdout) as { requests: number }).requests).toBeGreaterThan(0);
      const refused = await run(BIN!, pageloadArgs(spec(authPort, { ms: 200, warmupMs: 0 })));
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^pageload: page service refused: AUTH_FAILED: /);
    } finally {
      await authed.close();
    }
  });

  it('refuses bad arguments with a usage message (exit 2)', async () => {
    const r = await run(BIN!, ['--port', String(port), '--tenant', TENANT, '--rate', 'fast', '--ms', '100', '--pages', '8']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^pageload: --rate must be a number/);
  });
});

describe.skipIf(BIN === undefined)('the floor server (bench/native/pagefloor.c)', () => {
  it('answers the generator\'s handshake and every GetPage with a page, and counts nothing else', async () => {
    const floor = ensurePagefloor();
    expect(floor.error).toBeUndefined();
    const server = spawn(floor.path!, [], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        server.once('exit', (code) => reject(new Error(`pagefloor exited ${code}`)));
        server.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /^port (\d+)$/m.exec(out);
          if (m !== null) resolve(Number(m[1]));
        });
      });
      const r = await run(BIN!, pageloadArgs(spec(port)));
      expect(r.code, r.stderr).toBe(0);
      const res = JSON.parse(r.stdout) as Record<string, unknown>;
      expect(Object.keys(res).sort()).toEqual([...FIELDS].sort());
      expect(res.errors).toBe(0);
      expect(res.requests).toBe(Math.round((res.requestsPerSec as number) * RUN_MS / 1000));
      expect(res.requests as number).toBeGreaterThan(0);
      expect(res.requestsPerSec as number).toBeLessThanOrEqual(RATE_PER_SEC * 1.05);
    } finally {
      server.removeAllListeners('exit');
      server.kill('SIGKILL');
    }
  });
});
