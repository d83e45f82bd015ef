/**
 * The admin HTTP API (lib/service/admin_api.ts) with real HTTP requests on loopback: every route,
 * JSON-schema validation errors (400 with a message), auth refusals (no token, bad token, a
 * pageserver token), tenant state, a throttle set over HTTP taking effect on the page port, and
 * /metrics in Prometheus format with the repository's and the page service's per-tenant series —
 * registered into a caller's registry, removed when the tenant is deleted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Counter, Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PAGE_SIZE, type Repository, StrataClient } from '../../lib';
import { AdminApi } from '../../lib/service/admin_api';
import { signToken } from '../../lib/service/auth';
import { ThrottledError } from '../../lib/service/client';
import { registerRepositoryMetrics } from '../../lib/service/prom_metrics';
import type { Server } from '../../lib/service/page_server';
import { KEYS, LSN_LAST, removeDir, repoWithData, startServer, TENANT, TIMELINE } from '../helpers/service';

const HS_SECRET = { kty: 'oct', k: Buffer.alloc(32, 9).toString('base64url'), kid: 'hs' };
const AUTH = { keys: { keys: [HS_SECRET] } };

interface Answer {
  status: number;
  body: unknown;
  text: string;
  contentType: string | null;
}

describe('admin API', () => {
  let dir: string;
  let repo: Repository;
  let server: Server;
  let pagePort: number;
  let api: AdminApi;
  let base: string;
  let adminToken: string;
  let registry: Registry;
  let now: number;

  const call = async (method: string, url: string, body?: unknown, token: string | null = adminToken): Promise<Answer> => {
    const headers: Record<string, string> = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const r = await fetch(`${base}${url}`, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
    const text = await r.text();
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
    return { status: r.status, body: parsed, text, contentType: r.headers.get('content-type') };
  };

  beforeEach(async () => {
    ({ dir, repo } = await repoWithData('ts', 'admin'));
    now = 0;
    ({ server, port: pagePort } = await startServer(repo, { auth: AUTH, clock: () => now }));
    registry = new Registry();
    api = new AdminApi(repo, { auth: AUTH, pageServer: server, registry });
    const a = await api.listen('127.0.0.1', 0);
    base = `http://127.0.0.1:${a.port}`;
    adminToken = await signToken(HS_SECRET, { scope: 'admin' });
  });

  afterEach(async () => {
    await api.close();
    await server.close();
    await repo.close();
    removeDir(dir);
  });

  it('refuses requests without an admin token: none (401), unverifiable (401), pageserver scope (403)', async () => {
    const none = await call('GET', '/v1/tenant', undefined, null);
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ error: { code: 'AUTH_FAILED', message: expect.stringMatching(/Authorization: Bearer/) } });
    const forged = await signToken({ ...HS_SECRET, k: Buffer.alloc(32, 1).toString('base64url') }, { scope: 'admin' });
    expect((await call('GET', '/v1/tenant', undefined, forged)).status).toBe(401);
    expect((await call('GET', '/v1/tenant', undefined, 'not-a-jwt')).status).toBe(401);
    const expired = await signToken(HS_SECRET, { scope: 'admin', expiresInSeconds: -60 });
    expect(await call('GET', '/v1/tenant', undefined, expired)).toMatchObject({ status: 401, body: { error: { message: 'the token has expired' } } });
    const page = await signToken(HS_SECRET, { scope: 'pageserver', tenantId: TENANT });
    const refused = await call('GET', '/metrics', undefined, page);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ error: { code: 'AUTH_FAILED', message: expect.stringMatching(/scope is "pageserver"; the admin API needs "admin"/) } });
    // Nothing happened: a refused DELETE deleted nothing.
    expect((await call('DELETE', `/v1/tenant/${TENANT}`, undefined, page)).status).toBe(403);
    expect(repo.listTenants()).toEqual([TENANT]);
    // And an admin token does not open the page port.
    await expect(StrataClient.connect({ host: '127.0.0.1', port: pagePort, tenantId: TENANT, timelineId: TIMELINE, token: adminToken })).rejects.toThrow(/AUTH_FAILED/);
  });

  it('tenants: create, list, get, state, delete — and 404/409 for what does not fit', async () => {
    expect((await call('GET', '/v1/tenant')).body).toEqual([
      { tenant_id: TENANT, state: 'active', reason: null, timelines: [TIMELINE], throttle: { limit: null, source: 'none' } },
    ]);
    const created = await call('POST', '/v1/tenant', { tenant_id: 'acme', throttle: { rate: 50, burst: 10 } });
    expect(created).toMatchObject({ status: 201, body: { tenant_id: 'acme', state: 'active', timelines: [], throttle: { limit: { rate: 50, burst: 10 }, source: 'tenant' } } });
    expect((await call('POST', '/v1/tenant', { tenant_id: 'acme' })).body).toMatchObject({ error: { code: 'TENANT_EXISTS' } });
    expect((await call('POST', '/v1/tenant', { tenant_id: TENANT })).status).toBe(409);
    expect(((await call('GET', '/v1/tenant')).body as Array<{ tenant_id: string }>).map((t) => t.tenant_id)).toEqual(['acme', TENANT]);
    expect((await call('GET', '/v1/tenant/acme')).body).toMatchObject({ tenant_id: 'acme', timelines: [] });
    expect(await call('GET', '/v1/tenant/nobody')).toMatchObject({ status: 404, body: { error: { code: 'TENANT_NOT_FOUND' } } });
    expect((await call('DELETE', '/v1/tenant/nobody')).status).toBe(404);
    // Delete: every timeline (branches first) and its files; the tenant is gone from the repository too.
    await call('POST', `/v1/tenant/${TENANT}/timeline`, { timeline_id: 'b1', ancestor_timeline_id: TIMELINE });
    const tenantDir = path.join(dir, 'tenants', TENANT, 'timelines');
    expect(fs.readdirSync(tenantDir).sort()).toEqual(['b1', TIMELINE]);
    const del = await call('DELETE', `/v1/tenant/${TENANT}`);
    expect(del).toMatchObject({ status: 200, body: { tenant_id: TENANT, deleted_timelines: ['b1', TIMELINE] } });
    expect(fs.readdirSync(tenantDir)).toEqual([]);
    expect(repo.listTenants()).toEqual([]);
    expect((await call('GET', `/v1/tenant/${TENANT}`)).status).toBe(404);
    expect((await call('DELETE', '/v1/tenant/acme')).body).toEqual({ tenant_id: 'acme', deleted_timelines: [] });
    expect((await call('GET', '/v1/tenant')).body).toEqual([]);
  });

  it('a tenant whose timeline failed a flush is broken, with the reason', async () => {
    const tl = repo.getTimeline(TENANT, TIMELINE);
    // Make the next flush fail, even for root: a plain file stands where the timeline directory
    // was, so the new layer file cannot be written (ENOTDIR). The directory is put back after.
    const tlDir = path.join(dir, 'tenants', TENANT, 'timelines', TIMELINE);
    fs.renameSync(tlDir, `${tlDir}.aside`);
    fs.writeFileSync(tlDir, 'not a directory');
    try {
      await expect(tl.flush()).rejects.toThrow(/IO_ERROR/);
    } finally {
      fs.rmSync(tlDir);
      fs.renameSync(`${tlDir}.aside`, tlDir);
    }
    const t = (await call('GET', `/v1/tenant/${TENANT}`)).body as { state: string; reason: string };
    expect(t.state).toBe('broken');
    expect(t.reason).toMatch(/IO_ERROR/);
  });

  it('timelines: create, branch at an LSN, list, get, compact, gc, delete', async () => {
    await call('POST', '/v1/tenant', { tenant_id: 'acme' });
    const made = await call('POST', '/v1/tenant/acme/timeline', { timeline_id: 'main' });
    expect(made).toMatchObject({ status: 201, body: { tenant_id: 'acme', timeline_id: 'main', ancestor_timeline_id: null, last_record_lsn: '0/0' } });
    expect((await call('POST', '/v1/tenant/ghost/timeline', { timeline_id: 'main' })).status).toBe(404);
    expect((await call('POST', '/v1/tenant/acme/timeline', { timeline_id: 'main' })).body).toMatchObject({ error: { code: 'TIMELINE_EXISTS' } });
    const branch = await call('POST', `/v1/tenant/${TENANT}/timeline`, { timeline_id: 'at200', ancestor_timeline_id: TIMELINE, ancestor_lsn: '0/200' });
    expect(branch).toMatchObject({ status: 201, body: { ancestor_timeline_id: TIMELINE, ancestor_lsn: '0/200', last_record_lsn: '0/200' } });
    // The branch reads its ancestor as of 0/200, not the newer patch at 0/300.
    const b = repo.getTimeline(TENANT, 'at200');
    expect((await b.getPage(KEYS[1], 0x200n)).equals(await repo.getTimeline(TENANT, TIMELINE).getPage(KEYS[1], 0x200n))).toBe(true);
    expect((await call('POST', `/v1/tenant/${TENANT}/timeline`, { timeline_id: 'x', ancestor_timeline_id: TIMELINE, ancestor_lsn: 'F/0' })).body)
      .toMatchObject({ error: { code: 'LSN_TIMEOUT' } });
    expect(((await call('GET', `/v1/tenant/${TENANT}/timeline`)).body as Array<{ timeline_id: string }>).map((t) => t.timeline_id)).toEqual(['at200', TIMELINE]);
    expect((await call('GET', `/v1/tenant/${TENANT}/timeline/${TIMELINE}`)).body).toMatchObject({ last_record_lsn: '0/300', layers: expect.any(Number) });
    expect((await call('GET', `/v1/tenant/${TENANT}/timeline/nope`)).body).toMatchObject({ error: { code: 'TIMELINE_NOT_FOUND' } });
    await repo.getTimeline(TENANT, TIMELINE).flush();
    const compacted = await call('POST', `/v1/tenant/${TENANT}/timeline/${TIMELINE}/compact`, { force: true });
    expect(compacted).toMatchObject({ status: 200, body: { l0_compacted: 2, bytes_written: expect.any(Number) } });
    const noBody = await call('POST', `/v1/tenant/${TENANT}/timeline/${TIMELINE}/compact`);
    expect(noBody.status).toBe(200);
    const gc = await call('POST', `/v1/tenant/${TENANT}/timeline/${TIMELINE}/gc`, { horizon: 0 });
    // The branch at 0/200 holds GC back: the cutoff stops at the branch point's history.
    expect(gc).toMatchObject({ status: 200, body: { cutoff_lsn: '0/300', layers_removed: expect.any(Number) } });
    // Delete: refused while a branch exists; then the branch, then the timeline.
    expect(await call('DELETE', `/v1/tenant/${TENANT}/timeline/${TIMELINE}`)).toMatchObject({ status: 400, body: { error: { message: expect.stringMatching(/has branches \(at200\)/) } } });
    expect((await call('DELETE', `/v1/tenant/${TENANT}/timeline/at200`)).body).toEqual({ tenant_id: TENANT, timeline_id: 'at200', deleted: true });
    expect(fs.existsSync(path.join(dir, 'tenants', TENANT, 'timelines', 'at200'))).toBe(false);
    expect((await call('DELETE', `/v1/tenant/${TENANT}/timeline/${TIMELINE}`)).status).toBe(200);
    // The tenant outlives its last timeline until it is deleted itself.
    expect((await call('GET', `/v1/tenant/${TENANT}`)).body).toMatchObject({ state: 'active', timelines: [] });
    expect(() => repo.getTimeline(TENANT, TIMELINE)).toThrow(/TIMELINE_NOT_FOUND/);
    expect(fs.readdirSync(path.join(dir, 'tenants', TENANT, 'timelines'))).toEqual([]);
  });

  it('validation errors answer 400 with a message naming the field', async () => {
    const cases: Array<[string, string, unknown, RegExp]> = [
      ['POST', '/v1/tenant', {}, /must have required property 'tenant_id'/],
      ['POST', '/v1/tenant', { tenant_id: 'a b' }, /tenant_id must match pattern/],
      ['POST', '/v1/tenant', { tenant_id: 'a', extra: 1 }, /must NOT have additional properties/],
      ['POST', '/v1/tenant', { tenant_id: 7 }, /tenant_id must be string/],
      ['POST', '/v1/tenant', { tenant_id: 'a', throttle: { rate: 0, burst: 1 } }, /rate must be > 0/],
      ['POST', '/v1/tenant', '{"tenant_id":', /JSON/i],
      ['POST', `/v1/tenant/${TENANT}/timeline`, { timeline_id: 'b', ancestor_timeline_id: TIMELINE, ancestor_lsn: '12' }, /ancestor_lsn must match pattern/],
      ['POST', `/v1/tenant/${TENANT}/timeline`, { timeline_id: 'b', ancestor_lsn: '0/1' }, /ancestor_lsn given without ancestor_timeline_id/],
      ['POST', `/v1/tenant/${TENANT}/timeline/${TIMELINE}/gc`, { horizon: -1 }, /horizon must be >= 0/],
      ['POST', `/v1/tenant/${TENANT}/timeline/${TIMELINE}/compact`, { force: 'yes' }, /force must be boolean/],
      ['PUT', `/v1/tenant/${TENANT}/throttle`, { rate: 10 }, /must have required property 'burst'/],
      ['PUT', `/v1/tenant/${TENANT}/throttle`, { rate: 10, burst: 1.5 }, /burst must be integer/],
      ['GET', `/v1/tenant/${'x'.repeat(65)}`, undefined, /tenant_id must match pattern/],
    ];
    for (const [method, url, body, message] of cases) {
      const r = await call(method, url, body);
      expect(r.status, `${method} ${url} ${JSON.stringify(body)}`).toBe(400);
      expect(r.body, `${method} ${url} ${JSON.stringify(body)}`).toMatchObject({ error: { code: 'BAD_ARGUMENT', message: expect.stringMatching(message) } });
    }
    expect((await call('GET', '/v2/nothing')).status).toBe(404);
    // Nothing was created by the refused requests.
    expect(repo.listTenants()).toEqual([TENANT]);
    expect(repo.listTimelines(TENANT).map((t) => t.timelineId)).toEqual([TIMELINE]);
  });

  it('a throttle set over HTTP takes effect on the page port at once; DELETE returns the tenant to the default', async () => {
    const token = await signToken(HS_SECRET, { scope: 'pageserver', tenantId: TENANT });
    const c = await StrataClient.connect({ host: '127.0.0.1', port: pagePort, tenantId: TENANT, timelineId: TIMELINE, token });
    try {
      for (let i = 0; i < 10; i++) await c.getPage(KEYS[i], LSN_LAST); // no limit yet
      expect((await call('GET', `/v1/tenant/${TENANT}/throttle`)).body).toEqual({ limit: null, source: 'none' });
      expect((await call('PUT', `/v1/tenant/${TENANT}/throttle`, { rate: 4, burst: 2 })).body).toEqual({ limit: { rate: 4, burst: 2 }, source: 'tenant' });
      await c.getPage(KEYS[0], LSN_LAST);
      await c.getPage(KEYS[0], LSN_LAST);
      const e = await c.getPage(KEYS[0], LSN_LAST).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ThrottledError);
      expect((e as ThrottledError).retryAfterMs).toBe(250);
      expect((await call('PUT', '/v1/tenant/nobody/throttle', { rate: 4, burst: 2 })).status).toBe(404);
      expect((await call('DELETE', `/v1/tenant/${TENANT}/throttle`)).body).toEqual({ limit: null, source: 'none' });
      expect((await c.getPage(KEYS[0], LSN_LAST)).length).toBe(PAGE_SIZE);
      // /metrics counts the throttled request under the tenant.
      const m = await call('GET', '/metrics');
      expect(m.text).toMatch(new RegExp(`strata_page_service_throttled_total\\{tenant_id="${TENANT}",kind="getPage"\\} 1\\n`));
      expect(m.text).toMatch(new RegExp(`strata_page_service_requests_total\\{tenant_id="${TENANT}",kind="getPage"\\} 14\\n`));
    } finally {
      await c.close();
    }
  });

  it('/metrics: the repository\'s families and per-tenant page service series, in the caller\'s registry beside its own', async () => {
    const mine = new Counter({ name: 'my_app_things_total', help: 'The embedding app\'s own metric.', registers: [registry] });
    mine.inc(3);
    const token = await signToken(HS_SECRET, { scope: 'pageserver', tenantId: TENANT });
    const c = await StrataClient.connect({ host: '127.0.0.1', port: pagePort, tenantId: TENANT, timelineId: TIMELINE, token });
    await c.getPages(KEYS.slice(0, 8), LSN_LAST);
    await c.getPage(KEYS[0], LSN_LAST);
    await expect(c.getPage({ ...KEYS[0], relNumber: 1 }, LSN_LAST)).rejects.toThrow(/PAGE_NOT_FOUND/);
    await c.close();
    const m = await call('GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const lines = m.text.split('\n');
    const value = (prefix: string): number => Number(lines.find((l) => l.startsWith(`${prefix} `))?.split(' ').pop());
    expect(value('my_app_things_total')).toBe(3);
    const tl = `tenant_id="${TENANT}",timeline_id="${TIMELINE}"`;
    expect(value(`strata_last_record_lsn{${tl}}`)).toBe(0x300);
    expect(m.text).toContain('# TYPE strata_layers_visited_per_read histogram');
    expect(value(`strata_layers_visited_per_read_count{${tl}}`)).toBe(value(`strata_reads_total{${tl}}`));
    expect(value(`strata_page_service_requests_total{tenant_id="${TENANT}",kind="getPages"}`)).toBe(1);
    expect(value(`strata_page_service_requests_total{tenant_id="${TENANT}",kind="getPage"}`)).toBe(2);
    expect(value(`strata_page_service_errors_total{tenant_id="${TENANT}",kind="getPage"}`)).toBe(1);
    expect(value(`strata_page_service_pages_total{tenant_id="${TENANT}"}`)).toBe(10);
    expect(value(`strata_page_service_request_duration_seconds_count{tenant_id="${TENANT}",kind="getPage"}`)).toBe(2);
    // Every family appears once, its samples together (a valid exposition).
    const typeLines = lines.filter((l) => l.startsWith('# TYPE '));
    expect(new Set(typeLines).size).toBe(typeLines.length);
    // The registry itself, read without HTTP, holds the same families (it is the caller's).
    const json = await registry.getMetricsAsJSON();
    expect(json.map((f) => f.name)).toEqual(expect.arrayContaining(['my_app_things_total', 'strata_reads_total', 'strata_page_service_requests_total']));
    // Deleting the tenant removes its series.
    await call('DELETE', `/v1/tenant/${TENANT}`);
    const after = (await call('GET', '/metrics')).text;
    expect(after).not.toContain(`tenant_id="${TENANT}"`);
    expect(after).toContain('my_app_things_total 3');
    // One repository's families per registry: a second registration is refused, and leaves the first intact.
    expect(() => registerRepositoryMetrics(repo, registry)).toThrow(/BAD_ARGUMENT.*already has strata_page_cache_hits_total/);
    expect((await call('GET', '/metrics')).text).toContain('strata_page_cache_hits_total{implementation="ts"}');
    // Closing the API unregisters Strata's metrics from the caller's registry and leaves the caller's.
    await api.close();
    expect((await registry.getMetricsAsJSON()).map((f) => f.name)).toEqual(['my_app_things_total']);
  });

  it('tenants without timelines and throttle limits survive a restart (service/tenants.json); a deleted tenant is forgotten; a corrupt file is refused', async () => {
    expect((await call('POST', '/v1/tenant', { tenant_id: 'empty_one', throttle: { rate: 50, burst: 5 } })).status).toBe(201);
    expect((await call('PUT', `/v1/tenant/${TENANT}/throttle`, { rate: 123, burst: 7 })).status).toBe(200);
    expect((await call('POST', '/v1/tenant', { tenant_id: 'gone' })).status).toBe(201);
    expect((await call('DELETE', '/v1/tenant/gone')).status).toBe(200);
    await api.close();
    await server.close();

    // A new server and admin API on the same repository, as after a restart.
    ({ server, port: pagePort } = await startServer(repo, { auth: AUTH, clock: () => now }));
    api = new AdminApi(repo, { auth: AUTH, pageServer: server, registry: new Registry() });
    base = `http://127.0.0.1:${(await api.listen('127.0.0.1', 0)).port}`;
    expect((await call('GET', '/v1/tenant/empty_one')).body).toMatchObject({ tenant_id: 'empty_one', timelines: [], throttle: { limit: { rate: 50, burst: 5 }, source: 'tenant' } });
    expect((await call('GET', `/v1/tenant/${TENANT}/throttle`)).body).toEqual({ limit: { rate: 123, burst: 7 }, source: 'tenant' });
    expect(server.throttle.limitOf(TENANT)).toEqual({ rate: 123, burst: 7 });
    expect((await call('GET', '/v1/tenant/gone')).status).toBe(404);
    // DELETE …/throttle returns the tenant to the default, and that is kept too.
    expect((await call('DELETE', `/v1/tenant/${TENANT}/throttle`)).status).toBe(200);
    const file = path.join(repo.dir, 'service', 'tenants.json');
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({ version: 1, tenants: { empty_one: { throttle: { rate: 50, burst: 5 } }, [TENANT]: { throttle: null } } });

    fs.writeFileSync(file, '{"version": 1, "tenants": {"x": {"throttle": {"rate": -1, "burst": 1}}}}');
    expect(() => new AdminApi(repo, { auth: AUTH, pageServer: server, registry: new Registry() })).toThrow(/CORRUPT_MANIFEST.*tenants\.json.*rate/);
    fs.writeFileSync(file, 'not json');
    expect(() => new AdminApi(repo, { auth: AUTH, pageServer: server, registry: new Registry() })).toThrow(/CORRUPT_MANIFEST/);
    fs.rmSync(file);
  });
});
