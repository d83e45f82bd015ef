/**
 * The admin HTTP API (README, "Service"): tenants and timelines, branching, compaction, GC, each
 * tenant's throttle and state, and /metrics, on Fastify with a JSON schema for every body and
 * path parameter. Every route needs an admin-scope JWT (`Authorization: Bearer …`) unless auth is
 * disabled by name, as on the page port; a pageserver token is refused (403).
 *
 * Tenants: the repository knows a tenant by its timelines. A tenant created here with no timeline
 * yet, and each tenant's own throttle limit, are kept in the repository directory's
 * service/tenants.json (TenantSettingsStore), written durably before the change is acknowledged,
 * and applied again when an AdminApi opens on the repository. Errors answer `{ "error": { "code", "message" } }` with a StrataError code.
 */
import { fastify, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Registry } from 'prom-client';
import { isStrataError, StrataError, type StrataErrorCode } from '../errors';
import { formatLsn, parseLsn } from '../lsn';
import type { AttachTenantOptions, Repository } from '../repository';
import type { Timeline } from '../timeline';
import { Authenticator, type AuthConfig } from './auth';
import type { RequestOutcome, Server } from './page_server';
import { PageServiceMetrics, registerRepositoryMetrics } from './prom_metrics';
import { TenantSettingsStore } from './tenant_settings';
import type { ThrottleLimit } from './throttle';

/** Largest request body the admin API reads: its bodies are a few ids and numbers. */
const MAX_BODY_BYTES = 64 * 1024;
const ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';
const LSN_PATTERN = '^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$';

export interface AdminApiOptions {
  /** Token checking, as the page port's: `{ keysFile }`, `{ keys }` or `{ disabled: true }`. Required. */
  auth: AuthConfig;
  /** The page server on the same repository: its throttle is what `…/throttle` reads and sets, its requests feed the per-tenant metrics. */
  pageServer?: Server;
  /** Where metrics register (yours, to export Strata's beside your own); default a new Registry. */
  registry?: Registry;
  /**
   * Keep tenants without timelines and throttle limits in <repository>/service/tenants.json across
   * restarts (default true; false: in memory only, e.g. on a read-only repository).
   */
  persistSettings?: boolean;
}

export type TenantState = 'attaching' | 'active' | 'stopping' | 'broken';

export interface TenantInfo {
  tenant_id: string;
  state: TenantState;
  /** Why the tenant is broken (its failed attach, or the failed flush of one of its timelines), else null. */
  reason: string | null;
  timelines: string[];
  throttle: ThrottleInfo;
}

export interface ThrottleInfo {
  /** The limit in force: the tenant's own, the server's default, or null (not throttled / no page server). */
  limit: ThrottleLimit | null;
  source: 'tenant' | 'default' | 'none';
}

const HTTP_STATUS: Partial<Record<StrataErrorCode, number>> = {
  BAD_ARGUMENT: 400,
  TIMELINE_NOT_FOUND: 404,
  TIMELINE_EXISTS: 409,
  LSN_TIMEOUT: 409,
  LSN_GC_CUTOFF: 409,
  READ_ONLY: 409,
  // A DELETE of a timeline whose tenant another node attached since (docs/REMOTE.md, "Fencing").
  STALE_GENERATION: 409,
  CLOSED: 503,
  REMOTE_ERROR: 503,
};

const idParam = { type: 'string', pattern: ID_PATTERN } as const;
const tenantParams = { type: 'object', required: ['tenant_id'], additionalProperties: false, properties: { tenant_id: idParam } } as const;
const timelineParams = {
  type: 'object', required: ['tenant_id', 'timeline_id'], additionalProperties: false, properties: { tenant_id: idParam, timeline_id: idParam },
} as const;
const throttleBody = {
  type: 'object', required: ['rate', 'burst'], additionalProperties: false,
  properties: { rate: { type: 'number', exclusiveMinimum: 0, maximum: 1e9 }, burst: { type: 'integer', minimum: 1, maximum: 1e9 } },
} as const;

interface TenantParams { tenant_id: string }
interface TimelineParams { tenant_id: string; timeline_id: string }

/** compact and gc take an optional body: none at all (no Content-Type) means `{}`. */
async function emptyBodyIsObject(req: FastifyRequest): Promise<void> {
  if (req.body === undefined || req.body === null) req.body = {};
}

function fail(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).send({ error: { code, message } });
}

function timelineInfo(t: Timeline): Record<string, unknown> {
  return {
    tenant_id: t.tenantId,
    timeline_id: t.timelineId,
    ancestor_timeline_id: t.ancestor?.timelineId ?? null,
    ancestor_lsn: t.ancestorLsn === null ? null : formatLsn(t.ancestorLsn),
    last_record_lsn: formatLsn(t.lastRecordLsn),
    disk_consistent_lsn: formatLsn(t.diskConsistentLsn),
    gc_cutoff_lsn: formatLsn(t.gcCutoffLsn),
    layers: t.layers().length,
  };
}

export class AdminApi {
  readonly registry: Registry;
  private readonly app: FastifyInstance;
  private readonly auth: Authenticator;
  /** Tenants created here that have no timeline yet (the repository cannot know them). */
  private readonly emptyTenants = new Set<string>();
  /** Tenants being deleted or detached: state 'stopping', and refused for new timelines. */
  private readonly stopping = new Set<string>();
  /** Attaches under way (POST …/attach answers at once): state 'attaching'. */
  private readonly attaching = new Map<string, Promise<void>>();
  /** Attaches that failed, with why: state 'broken' until the next attach, detach or delete. */
  private readonly attachFailures = new Map<string, string>();
  private readonly pageMetrics: PageServiceMetrics;
  private readonly unregisterRepoMetrics: () => void;
  private readonly onRequest: ((r: RequestOutcome) => void) | null = null;
  private closing: Promise<void> | null = null;
  private readonly settings: TenantSettingsStore | null;

  constructor(readonly repository: Repository, private readonly options: AdminApiOptions) {
    if (options === undefined || options.auth === undefined) {
      throw new StrataError('BAD_ARGUMENT', 'AdminApi needs options.auth: { keysFile } or { keys } (or { disabled: true } to serve without auth)');
    }
    this.auth = Authenticator.fromConfig(options.auth);
    this.settings = options.persistSettings === false ? null : new TenantSettingsStore(repository.dir);
    this.registry = options.registry ?? new Registry();
    this.unregisterRepoMetrics = registerRepositoryMetrics(repository, this.registry);
    this.pageMetrics = new PageServiceMetrics(this.registry);
    for (const [id, st] of this.settings?.entries() ?? []) {
      this.emptyTenants.add(id); // dropped from this set once the tenant has timelines
      if (st.throttle !== null) options.pageServer?.throttle.setLimit(id, st.throttle);
    }
    if (options.pageServer !== undefined) {
      const m = this.pageMetrics;
      this.onRequest = (r) => m.observe(r);
      options.pageServer.addRequestListener(this.onRequest);
    }
    this.app = fastify({
      bodyLimit: MAX_BODY_BYTES,
      logger: false,
      // Unknown properties are an error (400), not silently dropped; types are not coerced.
      ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    });
    this.routes();
  }

  get authEnabled(): boolean {
    return this.auth.enabled;
  }

  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    try {
      await this.app.listen({ host, port });
    } catch (e) {
      throw new StrataError('IO_ERROR', `admin API: listen on ${host}:${port}: ${(e as Error).message}`, { cause: e });
    }
    return this.address as { host: string; port: number };
  }

  get address(): { host: string; port: number } | null {
    const a = this.app.server.address();
    return a === null || typeof a === 'string' ? null : { host: a.address, port: a.port };
  }

  /** Stop listening (requests in progress finish); metrics leave the registry. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.app.close();
      await Promise.all(this.attaching.values()); // an attach under way ends before the repository may close
      if (this.onRequest !== null) this.options.pageServer?.removeRequestListener(this.onRequest);
      this.unregisterRepoMetrics();
      this.pageMetrics.unregister();
    })();
    return this.closing;
  }

  /** What GET /v1/tenant/:id answers; null for a tenant that does not exist. */
  tenantInfo(tenantId: string): TenantInfo | null {
    const timelines = this.repository.listTimelines(tenantId);
    const attaching = this.attaching.has(tenantId);
    const attachFailure = this.attachFailures.get(tenantId) ?? null;
    if (timelines.length === 0 && !this.emptyTenants.has(tenantId) && !attaching && attachFailure === null) return null;
    if (timelines.length > 0) this.emptyTenants.delete(tenantId);
    const failure = attachFailure ?? timelines.map((t) => t.writeFailure).find((f) => f !== null)?.message ?? null;
    const state: TenantState = this.stopping.has(tenantId) ? 'stopping' : attaching ? 'attaching' : failure !== null ? 'broken' : 'active';
    return {
      tenant_id: tenantId,
      state,
      reason: failure,
      timelines: timelines.map((t) => t.timelineId).sort(),
      throttle: this.throttleInfo(tenantId),
    };
  }

  private throttleInfo(tenantId: string): ThrottleInfo {
    const t = this.options.pageServer?.throttle;
    if (t === undefined) return { limit: null, source: 'none' };
    const limit = t.limitOf(tenantId);
    return { limit, source: t.hasOwnLimit(tenantId) ? 'tenant' : limit === null ? 'none' : 'default' };
  }

  private tenantIds(): string[] {
    return [...new Set([...this.repository.listTenants(), ...this.emptyTenants, ...this.attaching.keys(), ...this.attachFailures.keys()])].sort();
  }

  /** Resolves once the tenant's attach (if one is under way) has ended, either way. */
  async attachSettled(tenantId: string): Promise<void> {
    await this.attaching.get(tenantId);
  }

  /** Attach in the background (Neon's Attaching state): reads see the tenant once it is active. */
  private startAttach(tenantId: string, o: AttachTenantOptions): void {
    this.attachFailures.delete(tenantId);
    const run = (async () => {
      try {
        await this.repository.attachTenant(tenantId, o);
        this.emptyTenants.delete(tenantId);
      } catch (e) {
        this.attachFailures.set(tenantId, `attach failed: ${e instanceof Error ? e.message : String(e)}`);
      } finally {
        this.attaching.delete(tenantId);
      }
    })();
    this.attaching.set(tenantId, run);
  }

  /** What a tenant leaving this node (delete or detach) leaves behind here: nothing. */
  private forgetTenant(id: string): void {
    this.emptyTenants.delete(id);
    this.attachFailures.delete(id);
    this.settings?.delete(id);
    this.options.pageServer?.throttle.forget(id);
    this.pageMetrics.removeTenant(id);
  }

  private routes(): void {
    const app = this.app;
    app.addHook('onRequest', async (req, reply) => {
      const r = await this.auth.checkAdminAccess(req.headers.authorization);
      if (!r.ok) return fail(reply, r.status, 'AUTH_FAILED', r.message);
      return undefined;
    });
    app.setErrorHandler((e: FastifyError, _req, reply) => {
      if (e.validation !== undefined) return fail(reply, 400, 'BAD_ARGUMENT', e.message);
      if (isStrataError(e)) return fail(reply, HTTP_STATUS[e.code] ?? 500, e.code, e.message.slice(e.code.length + 2));
      const status = typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
      return fail(reply, status, status === 500 ? 'SERVER_ERROR' : 'BAD_ARGUMENT', e.message);
    });
    app.setNotFoundHandler((req, reply) => fail(reply, 404, 'NOT_FOUND', `no route ${req.method} ${req.url}`));

    app.get('/metrics', async (_req, reply) => {
      const text = await this.registry.metrics();
      return reply.type(this.registry.contentType).send(text);
    });

    app.get('/v1/tenant', async () => this.tenantIds().map((id) => this.tenantInfo(id)).filter((t) => t !== null));

    app.post<{ Body: { tenant_id: string; throttle?: ThrottleLimit } }>('/v1/tenant', {
      schema: { body: { type: 'object', required: ['tenant_id'], additionalProperties: false, properties: { tenant_id: idParam, throttle: throttleBody } } },
    }, async (req, reply) => {
      const id = req.body.tenant_id;
      if (this.tenantInfo(id) !== null) return fail(reply, 409, 'TENANT_EXISTS', `tenant ${id} already exists`);
      if (req.body.throttle !== undefined) this.requirePageServer().throttle.setLimit(id, req.body.throttle);
      this.repository.listTimelines(id); // the repository is open (CLOSED otherwise)
      this.emptyTenants.add(id);
      this.persist(id);
      return reply.code(201).send(this.tenantInfo(id));
    });

    app.get<{ Params: TenantParams }>('/v1/tenant/:tenant_id', { schema: { params: tenantParams } }, async (req, reply) => {
      const info = this.tenantInfo(req.params.tenant_id);
      return info ?? fail(reply, 404, 'TENANT_NOT_FOUND', `no tenant ${req.params.tenant_id}`);
    });

    app.delete<{ Params: TenantParams }>('/v1/tenant/:tenant_id', { schema: { params: tenantParams } }, async (req, reply) => {
      const id = req.params.tenant_id;
      if (this.tenantInfo(id) === null) return fail(reply, 404, 'TENANT_NOT_FOUND', `no tenant ${id}`);
      if (this.stopping.has(id)) return fail(reply, 409, 'TENANT_STOPPING', `tenant ${id} is already being deleted`);
      this.stopping.add(id);
      const deleted: string[] = [];
      try {
        // Branches before their ancestors: deleteTimeline refuses a timeline that still has branches.
        const depth = (t: Timeline): number => (t.ancestor === null ? 0 : 1 + depth(t.ancestor));
        for (const t of this.repository.listTimelines(id).sort((a, b) => depth(b) - depth(a))) {
          await this.repository.deleteTimeline(id, t.timelineId);
          deleted.push(t.timelineId);
        }
      } finally {
        this.stopping.delete(id);
      }
      this.forgetTenant(id);
      return { tenant_id: id, deleted_timelines: deleted };
    });

    app.post<{ Params: TenantParams; Body: { generation?: number; download?: 'eager' | 'onDemand' } }>('/v1/tenant/:tenant_id/attach', {
      schema: {
        params: tenantParams,
        body: {
          type: ['object', 'null'], additionalProperties: false,
          properties: { generation: { type: 'integer', minimum: 1, maximum: 0xffffffff }, download: { type: 'string', enum: ['eager', 'onDemand'] } },
        },
      },
    }, async (req, reply) => {
      const id = req.params.tenant_id;
      if (!this.repository.hasRemoteStorage) return fail(reply, 400, 'BAD_ARGUMENT', `cannot attach ${id}: the repository has no remote storage (strata serve --remote-path DIR or --s3-bucket B)`);
      if (this.attaching.has(id)) return fail(reply, 409, 'TENANT_ATTACHING', `tenant ${id} is already being attached`);
      if (this.stopping.has(id)) return fail(reply, 409, 'TENANT_STOPPING', `tenant ${id} is being deleted or detached`);
      const b = req.body ?? {};
      this.startAttach(id, { ...(b.generation === undefined ? {} : { generation: b.generation }), ...(b.download === undefined ? {} : { download: b.download }) });
      return reply.code(202).send(this.tenantInfo(id));
    });

    app.post<{ Params: TenantParams }>('/v1/tenant/:tenant_id/detach', { schema: { params: tenantParams } }, async (req, reply) => {
      const id = req.params.tenant_id;
      if (!this.repository.hasRemoteStorage) return fail(reply, 400, 'BAD_ARGUMENT', `cannot detach ${id}: the repository has no remote storage to hand it to`);
      if (this.attaching.has(id)) return fail(reply, 409, 'TENANT_ATTACHING', `tenant ${id} is being attached`);
      if (this.stopping.has(id)) return fail(reply, 409, 'TENANT_STOPPING', `tenant ${id} is already being deleted or detached`);
      if (this.repository.listTimelines(id).length === 0) return fail(reply, 404, 'TENANT_NOT_FOUND', `no tenant ${id} attached here`);
      this.stopping.add(id);
      try {
        const r = await this.repository.detachTenant(id);
        this.forgetTenant(id);
        return { tenant_id: id, generation: r.generation, detached_timelines: r.timelines, stale: r.stale };
      } finally {
        this.stopping.delete(id);
      }
    });

    app.get<{ Params: TenantParams }>('/v1/tenant/:tenant_id/timeline', { schema: { params: tenantParams } }, async (req, reply) => {
      if (this.tenantInfo(req.params.tenant_id) === null) return fail(reply, 404, 'TENANT_NOT_FOUND', `no tenant ${req.params.tenant_id}`);
      return this.repository.listTimelines(req.params.tenant_id).sort((a, b) => a.timelineId.localeCompare(b.timelineId)).map(timelineInfo);
    });

    app.post<{ Params: TenantParams; Body: { timeline_id: string; ancestor_timeline_id?: string; ancestor_lsn?: string } }>('/v1/tenant/:tenant_id/timeline', {
      schema: {
        params: tenantParams,
        body: {
          type: 'object', required: ['timeline_id'], additionalProperties: false,
          properties: { timeline_id: idParam, ancestor_timeline_id: idParam, ancestor_lsn: { type: 'string', pattern: LSN_PATTERN } },
        },
      },
    }, async (req, reply) => {
      const tenantId = req.params.tenant_id;
      const b = req.body;
      if (this.tenantInfo(tenantId) === null) return fail(reply, 404, 'TENANT_NOT_FOUND', `no tenant ${tenantId}: create it first (POST /v1/tenant)`);
      if (this.stopping.has(tenantId)) return fail(reply, 409, 'TENANT_STOPPING', `tenant ${tenantId} is being deleted`);
      if (b.ancestor_lsn !== undefined && b.ancestor_timeline_id === undefined) {
        return fail(reply, 400, 'BAD_ARGUMENT', 'ancestor_lsn given without ancestor_timeline_id');
      }
      const tl = await this.repository.createTimeline({
        tenantId, timelineId: b.timeline_id,
        ...(b.ancestor_timeline_id === undefined ? {} : { ancestorTimelineId: b.ancestor_timeline_id }),
        ...(b.ancestor_lsn === undefined ? {} : { ancestorLsn: parseLsn(b.ancestor_lsn) }),
      });
      this.emptyTenants.delete(tenantId);
      return reply.code(201).send(timelineInfo(tl));
    });

    app.get<{ Params: TimelineParams }>('/v1/tenant/:tenant_id/timeline/:timeline_id', { schema: { params: timelineParams } }, async (req) => {
      return timelineInfo(this.repository.getTimeline(req.params.tenant_id, req.params.timeline_id));
    });

    app.delete<{ Params: TimelineParams }>('/v1/tenant/:tenant_id/timeline/:timeline_id', { schema: { params: timelineParams } }, async (req) => {
      const { tenant_id: tenantId, timeline_id: timelineId } = req.params;
      const last = this.repository.listTimelines(tenantId).length === 1;
      await this.repository.deleteTimeline(tenantId, timelineId);
      // The tenant outlives its last timeline: it was created, it is deleted by DELETE /v1/tenant/:id.
      if (last) {
        this.emptyTenants.add(tenantId);
        this.persist(tenantId);
      }
      return { tenant_id: tenantId, timeline_id: timelineId, deleted: true };
    });

    app.post<{ Params: TimelineParams; Body: { force?: boolean } }>('/v1/tenant/:tenant_id/timeline/:timeline_id/compact', {
      schema: { params: timelineParams, body: { type: 'object', additionalProperties: false, properties: { force: { type: 'boolean' } } } },
      preValidation: emptyBodyIsObject,
    }, async (req) => {
      const tl = this.repository.getTimeline(req.params.tenant_id, req.params.timeline_id);
      const r = await tl.compact({ force: req.body.force ?? false });
      return {
        l0_compacted: r.l0Compacted.length, layers_created: r.layersCreated.length, layers_removed: r.layersRemoved.length,
        image_layers_created: r.imageLayersCreated.length, bytes_read: r.bytesRead, bytes_written: r.bytesWritten,
      };
    });

    app.post<{ Params: TimelineParams; Body: { horizon?: number } }>('/v1/tenant/:tenant_id/timeline/:timeline_id/gc', {
      schema: { params: timelineParams, body: { type: 'object', additionalProperties: false, properties: { horizon: { type: 'integer', minimum: 0 } } } },
      preValidation: emptyBodyIsObject,
    }, async (req) => {
      const tl = this.repository.getTimeline(req.params.tenant_id, req.params.timeline_id);
      const h = req.body.horizon;
      const r = await tl.gc(h === undefined ? {} : { horizon: BigInt(h) });
      return { cutoff_lsn: formatLsn(r.cutoffLsn), layers_removed: r.layersRemoved, bytes_removed: r.bytesRemoved };
    });

    app.get<{ Params: TenantParams }>('/v1/tenant/:tenant_id/throttle', { schema: { params: tenantParams } }, async (req, reply) => {
      if (this.tenantInfo(req.params.tenant_id) === null) return fail(reply, 404, 'TENANT_NOT_FOUND', `no tenant ${req.params.tenant_id}`);
      return this.throttleInfo(req.params.tenant_id);
    });

    app.put<{ Params: TenantParams; Body: ThrottleLimit }>('/v1/tenant/:tenant_id/throttle', { schema: { params: tenantParams, body: throttleBody } }, async (req, reply) => {
      if (this.tenantInfo(req.params.tenant_id) === null) return fail(reply, 404, 'TENANT_NOT_FOUND', `no tenant ${req.params.tenant_id}`);
      this.requirePageServer().throttle.setLimit(req.params.tenant_id, { rate: req.body.rate, burst: req.body.burst });
      this.persist(req.params.tenant_id);
      return this.throttleInfo(req.params.tenant_id);
    });

    app.delete<{ Params: TenantParams }>('/v1/tenant/:tenant_id/throttle', { schema: { params: tenantParams } }, async (req, reply) => {
      if (this.tenantInfo(req.params.tenant_id) === null) return fail(reply, 404, 'TENANT_NOT_FOUND', `no tenant ${req.params.tenant_id}`);
      this.requirePageServer().throttle.setLimit(req.params.tenant_id, null);
      this.persist(req.params.tenant_id);
      return this.throttleInfo(req.params.tenant_id);
    });
  }

  /** Write the tenant's settings (its own limit, if any) before the change is acknowledged. */
  private persist(tenantId: string): void {
    if (this.settings === null) return;
    const t = this.options.pageServer?.throttle;
    this.settings.set(tenantId, { throttle: t !== undefined && t.hasOwnLimit(tenantId) ? t.limitOf(tenantId) : null });
  }

  private requirePageServer(): Server {
    const s = this.options.pageServer;
    if (s === undefined) throw new StrataError('BAD_ARGUMENT', 'this admin API has no page server: there is no throttle to set');
    return s;
  }
}
