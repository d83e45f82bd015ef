/**
 * Tenant attach and detach over the admin API (Neon's Attaching → Active lifecycle): node B
 * attaches a tenant node A uploaded to a shared remote directory; the tenant shows 'attaching',
 * then 'active', and B's page port serves A's pages; a failed attach leaves the tenant 'broken'
 * with the reason until a good one; detach hands the tenant back and forgets it here.
 */
import * as fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Repository, StrataClient, type Timeline } from '../../lib';
import { AdminApi } from '../../lib/service/admin_api';
import type { Server } from '../../lib/service/page_server';
import { tmpDir } from '../helpers/layers';
import { KEYS, LSN_LAST, removeDir, repoWithData, startServer, TENANT, TIMELINE } from '../helpers/service';

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function call(base: string, method: string, url: string, body?: unknown): Promise<Answer> {
  const r = await fetch(`${base}${url}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: JSON.parse(await r.text()) as Record<string, unknown> };
}

describe('admin API: attach and detach', () => {
  const dirs: string[] = [];
  let remotePath: string;
  let repoA: Repository;
  let tlA: Timeline;
  let repoB: Repository;
  let server: Server;
  let port: number;
  let api: AdminApi;
  let base: string;

  beforeEach(async () => {
    remotePath = tmpDir('svc-attach-remote');
    // Node A: the usual data, then opened again with the remote so it uploads it at generation 1.
    const seeded = await repoWithData('native', 'attach-a');
    await seeded.tl.flush();
    await seeded.repo.close();
    dirs.push(seeded.dir, remotePath);
    repoA = await Repository.open(seeded.dir, { remote: { type: 'local', path: remotePath } });
    tlA = repoA.getTimeline(TENANT, TIMELINE);
    await tlA.syncRemote();
    const dirB = tmpDir('svc-attach-b');
    dirs.push(dirB);
    repoB = await Repository.open(dirB, { remote: { type: 'local', path: remotePath } });
    ({ server, port } = await startServer(repoB));
    api = new AdminApi(repoB, { auth: { disabled: true }, pageServer: server, persistSettings: false });
    base = `http://127.0.0.1:${(await api.listen('127.0.0.1', 0)).port}`;
  });

  afterEach(async () => {
    await api.close();
    await server.close();
    await repoB.close();
    await repoA.close();
    for (const d of dirs.splice(0)) removeDir(d);
  });

  it('attaching, then active: B serves A\'s pages; A is fenced off', async () => {
    expect((await call(base, 'GET', `/v1/tenant/${TENANT}`)).status).toBe(404);
    const started = await call(base, 'POST', `/v1/tenant/${TENANT}/attach`, {});
    expect(started).toMatchObject({ status: 202, body: { tenant_id: TENANT, state: 'attaching', reason: null } });
    expect((await call(base, 'POST', `/v1/tenant/${TENANT}/attach`, {})).status).toBe(409); // one at a time
    await api.attachSettled(TENANT);
    expect((await call(base, 'GET', `/v1/tenant/${TENANT}`)).body).toMatchObject({ state: 'active', reason: null, timelines: [TIMELINE] });
    expect(repoB.tenantGeneration(TENANT)).toBe(2);
    const c = await StrataClient.connect({ host: '127.0.0.1', port, tenantId: TENANT, timelineId: TIMELINE });
    try {
      const got = await c.getPages(KEYS, LSN_LAST);
      const want = await tlA.getPages(KEYS, LSN_LAST);
      for (let i = 0; i < KEYS.length; i++) expect(got[i].equals(want[i]), `page ${i}`).toBe(true);
    } finally {
      await c.close();
    }
    // A writes on at generation 1: its next index upload is refused.
    tlA.ingest([{ lsn: LSN_LAST + 0x10n, key: KEYS[0], kind: 'patch', offset: 0, data: Uint8Array.of(7) }]);
    await tlA.flush();
    await expect(tlA.syncRemote()).rejects.toThrow(/STALE_GENERATION/);
  });

  it('a failed attach leaves the tenant broken with the reason; a good attach clears it; detach forgets it', async () => {
    await call(base, 'POST', `/v1/tenant/${TENANT}/attach`, {});
    await api.attachSettled(TENANT);
    // Generation 1 is not above the 2 remote storage now holds.
    expect((await call(base, 'POST', `/v1/tenant/${TENANT}/attach`, { generation: 1 })).status).toBe(202);
    await api.attachSettled(TENANT);
    const broken = await call(base, 'GET', `/v1/tenant/${TENANT}`);
    expect(broken.body).toMatchObject({ state: 'broken', reason: expect.stringMatching(/attach failed: STALE_GENERATION/) });
    await call(base, 'POST', `/v1/tenant/${TENANT}/attach`, {});
    await api.attachSettled(TENANT);
    expect((await call(base, 'GET', `/v1/tenant/${TENANT}`)).body).toMatchObject({ state: 'active', reason: null });
    const detached = await call(base, 'POST', `/v1/tenant/${TENANT}/detach`);
    expect(detached).toMatchObject({ status: 200, body: { tenant_id: TENANT, detached_timelines: [TIMELINE], stale: false } });
    expect((await call(base, 'GET', `/v1/tenant/${TENANT}`)).status).toBe(404);
    expect(repoB.listTenants()).toEqual([]);
    expect(fs.existsSync(remotePath)).toBe(true);
    expect((await call(base, 'POST', `/v1/tenant/${TENANT}/detach`)).status).toBe(404);
  });

  it('bad bodies are 400; a repository without remote storage refuses attach and detach', async () => {
    expect((await call(base, 'POST', `/v1/tenant/${TENANT}/attach`, { generation: 0 })).status).toBe(400);
    expect((await call(base, 'POST', `/v1/tenant/${TENANT}/attach`, { download: 'lazy' })).status).toBe(400);
    expect((await call(base, 'POST', `/v1/tenant/${TENANT}/attach`, { extra: 1 })).status).toBe(400);
    expect((await call(base, 'GET', `/v1/tenant/${TENANT}`)).status).toBe(404); // nothing started
    const plain = await repoWithData('ts', 'attach-plain');
    dirs.push(plain.dir);
    const plainApi = new AdminApi(plain.repo, { auth: { disabled: true }, persistSettings: false });
    try {
      const b = `http://127.0.0.1:${(await plainApi.listen('127.0.0.1', 0)).port}`;
      expect(await call(b, 'POST', '/v1/tenant/other/attach', {})).toMatchObject({ status: 400, body: { error: { code: 'BAD_ARGUMENT', message: expect.stringMatching(/no remote storage/) } } });
      expect((await call(b, 'POST', `/v1/tenant/${TENANT}/detach`)).status).toBe(400);
    } finally {
      await plainApi.close();
      await plain.repo.close();
    }
  });
});
