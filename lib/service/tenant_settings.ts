/**
 * The admin API's tenant settings on disk, so they survive a restart: which tenants exist without a
 * timeline yet, and each tenant's own throttle limit. One JSON file in the repository directory
 * (`service/tenants.json`), replaced atomically and durably (write, fsync, rename, fsync the
 * directory) before the admin API acknowledges a change. The repository's own files never refer
 * to it; a repository copied without it just loses these settings.
 *
 *   { "version": 1, "tenants": { "<tenant id>": { "throttle": { "rate": 5000, "burst": 64 } | null } } }
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StrataError } from '../errors';
import { mkdirDurable, writeFileAtomic } from '../fs_util';
import { checkThrottleLimit, type ThrottleLimit } from './throttle';

export const TENANT_SETTINGS_FILE = path.join('service', 'tenants.json');
const TENANT_SETTINGS_VERSION = 1;
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export interface TenantSettings {
  /** The tenant's own throttle limit; null: the server's default. */
  throttle: ThrottleLimit | null;
}

export class TenantSettingsStore {
  readonly file: string;
  private readonly tenants = new Map<string, TenantSettings>();

  /** Read `<repoDir>/service/tenants.json` if it exists; CORRUPT_MANIFEST when it cannot be parsed. */
  constructor(repoDir: string) {
    this.file = path.join(repoDir, TENANT_SETTINGS_FILE);
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new StrataError('IO_ERROR', `${this.file}: read: ${(e as Error).message}`, { cause: e });
    }
    const bad = (why: string): never => {
      throw new StrataError('CORRUPT_MANIFEST', `${this.file}: ${why}`);
    };
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      return bad(`not JSON: ${(e as Error).message}`);
    }
    const d = doc as { version?: unknown; tenants?: unknown };
    if (d === null || typeof d !== 'object' || d.version !== TENANT_SETTINGS_VERSION || d.tenants === null || typeof d.tenants !== 'object') {
      bad(`not a version ${TENANT_SETTINGS_VERSION} tenant settings file`);
    }
    for (const [id, v] of Object.entries(d.tenants as Record<string, { throttle?: unknown }>)) {
      if (!ID_PATTERN.test(id) || v === null || typeof v !== 'object') bad(`bad entry for tenant ${JSON.stringify(id)}`);
      const t = v.throttle ?? null;
      try {
        this.tenants.set(id, { throttle: t === null ? null : checkThrottleLimit(t as ThrottleLimit, `tenant ${id}`) });
      } catch (e) {
        bad((e as Error).message);
      }
    }
  }

  /** Every tenant the file knows, with its settings. */
  entries(): Array<[string, TenantSettings]> {
    return [...this.tenants.entries()];
  }

  /** Record (or replace) a tenant's settings and write the file. */
  set(tenantId: string, s: TenantSettings): void {
    this.tenants.set(tenantId, { throttle: s.throttle === null ? null : { ...s.throttle } });
    this.save();
  }

  has(tenantId: string): boolean {
    return this.tenants.has(tenantId);
  }

  /** Forget a deleted tenant and write the file. */
  delete(tenantId: string): void {
    if (this.tenants.delete(tenantId)) this.save();
  }

  private save(): void {
    const doc = { version: TENANT_SETTINGS_VERSION, tenants: Object.fromEntries([...this.tenants.entries()].sort(([a], [b]) => a.localeCompare(b))) };
    mkdirDurable(path.dirname(this.file));
    writeFileAtomic(this.file, `${JSON.stringify(doc, null, 2)}\n`);
  }
}
