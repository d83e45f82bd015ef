/**
 * `strata serve` as a child process (the built CLI, dist/): it says where it listens; with no auth
 * option it generates a key pair on first start (and reuses it after), which `strata token` signs
 * tokens with; SIGTERM in the middle of a pipelined load drains gracefully — every request is
 * answered whole or its connection closes, no half frame — and the process exits 0.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isStrataError, Repository, StrataClient } from '../../lib';
import { encodeRequest, type ServerFrame } from '../../lib/service/frames';
import { IMPLEMENTATIONS } from '../helpers/cores';
import { tmpDir } from '../helpers/layers';
import { KEYS, LSN_FLUSHED, LSN_LAST, RawConn, removeDir, repoWithData, TENANT, TIMELINE } from '../helpers/service';

const BIN = path.join(__dirname, '..', '..', 'bin', 'strata.js');
const IMPL = IMPLEMENTATIONS[IMPLEMENTATIONS.length - 1];

interface Child {
  proc: ChildProcess;
  lines: string[];
  exit: Promise<number | null>;
}

function startServe(args: string[]): Child {
  const proc = spawn(process.execPath, [BIN, 'serve', '--impl', IMPL, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buf = '';
  proc.stdout?.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    lines.push(...parts);
  });
  proc.stderr?.on('data', (d: Buffer) => lines.push(`stderr: ${d.toString('utf8')}`));
  const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, lines, exit };
}

async function waitForLine(c: Child, re: RegExp): Promise<string> {
  for (;;) {
    const l = c.lines.find((x) => re.test(x));
    if (l !== undefined) return l;
    if (c.proc.exitCode !== null) throw new Error(`serve exited ${c.proc.exitCode}: ${c.lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    const v = await p;
    if (v instanceof StrataClient) await v.close();
  } catch (e) {
    if (isStrataError(e)) return e.code;
    throw e;
  }
  return 'accepted';
}

describe('strata serve (child process)', () => {
  const dirs: string[] = [];
  const children: Child[] = [];

  afterEach(() => {
    for (const c of children.splice(0)) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    for (const d of dirs.splice(0)) removeDir(d);
  });

  it('first start generates keys and prints them; strata token signs a token it accepts; keys are kept across restarts', async () => {
    const dir = tmpDir('svc-cli-auth');
    dirs.push(dir);
    const data = path.join(dir, 'data');
    const first = startServe(['--data', data, '--listen', '127.0.0.1:0']);
    children.push(first);
    const gen = await waitForLine(first, /generated an Ed25519 key pair/);
    const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(await waitForLine(first, /listening on/))?.[1]);
    const signingKey = /strata token --signing-key (\S+) --tenant TENANT/.exec(await waitForLine(first, /strata token --signing-key/))?.[1] ?? '';
    expect(gen).toContain(path.join(data, 'auth', 'jwks.json'));
    expect(signingKey).toBe(path.join(data, 'auth', 'signing-key.jwk.json'));
    const tok = spawnSync(process.execPath, [BIN, 'token', '--signing-key', signingKey, '--tenant', TENANT], { encoding: 'utf8' });
    expect(tok.status, tok.stderr).toBe(0);
    const token = tok.stdout.trim();
    expect(token.split('.').length).toBe(3);
    const connect = (t: string | undefined, p: number): Promise<StrataClient> => StrataClient.connect({ host: '127.0.0.1', port: p, tenantId: TENANT, timelineId: TIMELINE, token: t });
    // The repository is empty: a token that passes auth gets as far as TIMELINE_NOT_FOUND.
    expect(await codeOf(connect(token, port))).toBe('TIMELINE_NOT_FOUND');
    expect(await codeOf(connect(undefined, port))).toBe('AUTH_FAILED');
    first.proc.kill('SIGINT');
    expect(await first.exit).toBe(0);
    expect(first.lines.some((l) => /SIGINT: draining/.test(l))).toBe(true);

    const second = startServe(['--data', data, '--listen', '127.0.0.1:0']);
    children.push(second);
    const port2 = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(await waitForLine(second, /listening on/))?.[1]);
    expect(second.lines.some((l) => /generated/.test(l))).toBe(false);
    expect(await codeOf(connect(token, port2))).toBe('TIMELINE_NOT_FOUND');
    second.proc.kill('SIGTERM');
    expect(await second.exit).toBe(0);
  }, 60_000);

  it('SIGTERM during pipelined load and admin writes: every answer whole and correct, no half frame, every acknowledged write durable, exit 0', async () => {
    const { dir, repo, tl } = await repoWithData(IMPL, 'cli-sigterm');
    dirs.push(dir);
    const want = await tl.getPages(KEYS, LSN_LAST);
    const wantFlushed = await tl.getPages(KEYS, LSN_FLUSHED);
    await repo.close();
    const child = startServe(['--data', dir, '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--no-auth', '--json']);
    children.push(child);
    const port = (JSON.parse(await waitForLine(child, /"event":"listening"/)) as { port: number }).port;
    const httpPort = (JSON.parse(await waitForLine(child, /"event":"listening-http"/)) as { port: number }).port;

    // Writes over the admin API until the server stops answering: branches of main and throttle
    // limits. Only those acknowledged (201 / 200) must survive; one cut short by the shutdown may go either way.
    const acked: Array<{ branch: string; rate: number }> = [];
    let writing = true;
    const writes = (async () => {
      for (let i = 0; writing; i++) {
        try {
          const branch = `b${i}`;
          const r = await fetch(`http://127.0.0.1:${httpPort}/v1/tenant/${TENANT}/timeline`, {
            method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ timeline_id: branch, ancestor_timeline_id: TIMELINE }),
          });
          if (r.status !== 201) break;
          const t = await fetch(`http://127.0.0.1:${httpPort}/v1/tenant/${TENANT}/throttle`, {
            method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ rate: 1e6 + i, burst: 1000 }),
          });
          acked.push({ branch, rate: t.status === 200 ? 1e6 + i : -1 });
          if (t.status !== 200) break;
        } catch {
          break; // the server is gone
        }
      }
    })();

    const REQUESTS_PER_CONNECTION = 3000;
    const conns = await Promise.all(Array.from({ length: 4 }, () => RawConn.ready(port)));
    const sent = conns.map((c, ci) => {
      const reqs: Buffer[] = [];
      for (let id = 1; id <= REQUESTS_PER_CONNECTION; id++) {
        const lsn = (id + ci) % 3 === 0 ? LSN_FLUSHED : LSN_LAST;
        const lsns = { requestLsn: lsn, notModifiedSince: lsn };
        reqs.push(encodeRequest(id % 7 === 0 ? { kind: 'getPages', id, lsns, keys: KEYS.slice(0, 8) } : { kind: 'getPage', id, lsns, key: KEYS[id % KEYS.length] }));
      }
      c.send(Buffer.concat(reqs));
      return REQUESTS_PER_CONNECTION;
    });
    // Some answers are in: the load is running. Then SIGTERM.
    await Promise.all(conns.map((c) => c.waitFor((f) => f.kind === 'page')));
    while (acked.length < 3) await new Promise((r) => setTimeout(r, 5));
    child.proc.kill('SIGTERM');
    expect(await child.exit).toBe(0);
    await Promise.all(conns.map((c) => c.closed));
    writing = false;
    await writes;

    let answered = 0;
    conns.forEach((c, ci) => {
      expect(c.decodeError).toBeNull();
      expect(c.trailingBytes, 'half a frame').toBe(0);
      const seen = new Set<number>();
      for (const f of c.frames as ServerFrame[]) {
        if (f.kind === 'helloOk') continue;
        expect(f.kind === 'page' || f.kind === 'pages', `${f.kind}: ${JSON.stringify(f).slice(0, 200)}`).toBe(true);
        const id = (f as { id: number }).id;
        expect(id >= 1 && id <= sent[ci] && !seen.has(id)).toBe(true);
        seen.add(id);
        const ref = (id + ci) % 3 === 0 ? wantFlushed : want;
        if (f.kind === 'page') expect(f.page.equals(ref[id % KEYS.length])).toBe(true);
        if (f.kind === 'pages') expect(f.pages.every((p, j) => p.equals(ref[j]))).toBe(true);
      }
      answered += seen.size;
    });
    expect(answered).toBeGreaterThan(0);
    // --json: pino records, one JSON object a line, with the server's connection and shutdown events.
    const records = child.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string; event?: string });
    expect(records.length).toBe(child.lines.filter((l) => !l.startsWith('stderr')).length);
    expect(records.some((r) => /SIGTERM: draining/.test(r.msg))).toBe(true);
    for (const ev of ['connection', 'ready', 'closed', 'shutdown', 'stopped']) expect(records.some((r) => r.event === ev), ev).toBe(true);
    // The repository was closed cleanly: it reopens for writing (no lock left behind), and every
    // acknowledged write is there.
    const again = await Repository.open(dir, { implementation: IMPL });
    expect(again.getTimeline(TENANT, TIMELINE).lastRecordLsn).toBe(LSN_LAST);
    expect(acked.length).toBeGreaterThanOrEqual(3);
    const branches = new Set(again.listTimelines(TENANT).map((t) => t.timelineId));
    for (const a of acked) expect(branches.has(a.branch), a.branch).toBe(true);
    await again.close();
    // The last acknowledged throttle limit survives the restart too (tenant settings are persisted).
    const lastRate = acked.filter((a) => a.rate > 0).at(-1)?.rate;
    const back = startServe(['--data', dir, '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--no-auth', '--json']);
    children.push(back);
    const httpBack = (JSON.parse(await waitForLine(back, /"event":"listening-http"/)) as { port: number }).port;
    expect(await (await fetch(`http://127.0.0.1:${httpBack}/v1/tenant/${TENANT}/throttle`)).json()).toEqual({ limit: { rate: lastRate, burst: 1000 }, source: 'tenant' });
    back.proc.kill('SIGTERM');
    expect(await back.exit).toBe(0);
  }, 120_000);

  it('--http serves the admin API beside the page port: admin tokens from strata token --scope admin, pageserver tokens refused, a timeline created over HTTP is served, detached to --remote-path and attached again', async () => {
    const dir = tmpDir('svc-cli-http');
    dirs.push(dir);
    const data = path.join(dir, 'data');
    const remote = path.join(dir, 'remote');
    const child = startServe(['--data', data, '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--throttle-rate', '1000', '--throttle-burst', '64', '--remote-path', remote]);
    children.push(child);
    expect(await waitForLine(child, /remote storage:/)).toContain(`directory ${remote}`);
    const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(await waitForLine(child, /listening on/))?.[1]);
    const http = /admin API on (http:\/\/127\.0\.0\.1:\d+)/.exec(await waitForLine(child, /admin API on/))?.[1] ?? '';
    expect(await waitForLine(child, /throttle:/)).toMatch(/1000 pages\/s, burst 64 pages per tenant/);
    const signingKey = path.join(data, 'auth', 'signing-key.jwk.json');
    const mint = (args: string[]): string => {
      const r = spawnSync(process.execPath, [BIN, 'token', '--signing-key', signingKey, ...args], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.trim();
    };
    const admin = mint(['--scope', 'admin']);
    const page = mint(['--tenant', TENANT]);
    const call = (method: string, url: string, token: string, body?: unknown): Promise<Response> => fetch(`${http}${url}`, {
      method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body),
    });
    expect((await call('GET', '/v1/tenant', page)).status).toBe(403);
    expect((await call('POST', '/v1/tenant', admin, { tenant_id: TENANT })).status).toBe(201);
    expect((await call('POST', `/v1/tenant/${TENANT}/timeline`, admin, { timeline_id: TIMELINE })).status).toBe(201);
    expect(await (await call('GET', `/v1/tenant/${TENANT}/throttle`, admin)).json()).toEqual({ limit: { rate: 1000, burst: 64 }, source: 'default' });
    // The page port now finds the timeline the admin API created (empty: PAGE_NOT_FOUND, not TIMELINE_NOT_FOUND).
    const c = await StrataClient.connect({ host: '127.0.0.1', port, tenantId: TENANT, timelineId: TIMELINE, token: page });
    expect(await codeOf(c.getPage(KEYS[0], 0x10n, { notModifiedSince: 0n }))).toMatch(/PAGE_NOT_FOUND|LSN_TIMEOUT/);
    await c.close();
    const metrics = await (await call('GET', '/metrics', admin)).text();
    expect(metrics).toContain(`strata_page_service_requests_total{tenant_id="${TENANT}",kind="getPage"} 1`);
    // The tenant leaves for remote storage and comes back: attaching, then active, served again.
    expect(await (await call('POST', `/v1/tenant/${TENANT}/detach`, admin)).json()).toMatchObject({ tenant_id: TENANT, detached_timelines: [TIMELINE] });
    expect((await call('GET', `/v1/tenant/${TENANT}`, admin)).status).toBe(404);
    const attach = await call('POST', `/v1/tenant/${TENANT}/attach`, admin, {});
    expect(attach.status).toBe(202);
    let state = '';
    for (let i = 0; i < 500 && state !== 'active'; i++) {
      state = ((await (await call('GET', `/v1/tenant/${TENANT}`, admin)).json()) as { state: string }).state;
      if (state !== 'active') await new Promise((r) => setTimeout(r, 20));
    }
    expect(state).toBe('active');
    const again = await StrataClient.connect({ host: '127.0.0.1', port, tenantId: TENANT, timelineId: TIMELINE, token: page });
    await again.close();
    child.proc.kill('SIGTERM');
    expect(await child.exit).toBe(0);
  }, 60_000);
});
