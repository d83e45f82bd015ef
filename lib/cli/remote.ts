/**
 * `strata remote status`, `strata attach`, `strata detach` (README "CLI", docs/REMOTE.md): the
 * repository's remote storage comes from flags (`--remote-path DIR` or `--s3-bucket B` with
 * `--s3-endpoint`, `--s3-region`, `--s3-prefix`, `--s3-path-style`; S3 credentials from the AWS
 * SDK's standard chain). `remote status` reads the repository's files and remote storage without
 * opening the repository, so it runs beside a live writer; attach and detach open it for writing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StrataError } from '../errors';
import { parseJsonObject } from '../json_object';
import { formatLsn, type Lsn } from '../lsn';
import { type AttachmentRecord, readAttachment } from '../engine/attachment';
import type { Manifest } from '../engine/manifest';
import { decodeIndex, INDEX_NAME, splitGeneration, timelinePrefix } from '../engine/remote_layout';
import { openRemoteStorage } from '../remote/open_remote_storage';
import type { RemoteConfig, RemoteStorage } from '../remote/remote_storage';
import { Repository } from '../repository';
import type { ImplementationChoice } from '../core/select';
import { requireRepository, scanTimelines } from './repo';
import { CliError, EXIT, formatBytes, table } from './util';

/** The remote flags as parsed. */
export interface RemoteFlags {
  remotePath: string | undefined;
  s3Bucket: string | undefined;
  s3Endpoint: string | undefined;
  s3Region: string | undefined;
  s3Prefix: string | undefined;
  s3PathStyle: boolean;
  generation: number | undefined;
  json: boolean;
  impl: ImplementationChoice | undefined;
}

type Print = (text: string) => number;
type PrintJson = (v: unknown) => number;

/** `--remote-path` or `--s3-bucket` (with its companions), exactly one of them. */
export function remoteConfigFrom(f: RemoteFlags): RemoteConfig {
  const s3Extras = f.s3Endpoint !== undefined || f.s3Region !== undefined || f.s3Prefix !== undefined || f.s3PathStyle;
  if (f.remotePath !== undefined) {
    if (f.s3Bucket !== undefined || s3Extras) throw new CliError(EXIT.USAGE, '--remote-path and --s3-* options exclude each other');
    return { type: 'local', path: f.remotePath };
  }
  if (f.s3Bucket === undefined) {
    throw new CliError(EXIT.USAGE, s3Extras ? '--s3-* options need --s3-bucket' : 'the remote storage is needed: --remote-path DIR or --s3-bucket BUCKET [--s3-endpoint URL] [--s3-region R] [--s3-prefix P] [--s3-path-style]');
  }
  return {
    type: 's3', bucket: f.s3Bucket, endpoint: f.s3Endpoint, region: f.s3Region, prefix: f.s3Prefix,
    forcePathStyle: f.s3PathStyle ? true : undefined,
  };
}

// ---- attach / detach --------------------------------------------------------------------------

export async function runAttach([dir, tenantId]: string[], f: RemoteFlags, print: Print, printJson: PrintJson): Promise<number> {
  const remote = remoteConfigFrom(f);
  const repo = await Repository.open(dir, { implementation: f.impl, remote });
  try {
    // Eager: the CLI's other commands open the directory without the remote (read-only ones cannot
    // have one), so layers left in remote storage would be unreadable to them (LAYER_NOT_LOCAL).
    const report = await repo.attachTenant(tenantId, { generation: f.generation, download: 'eager' });
    // The new generation's indexes up before returning: the attach is then visible to every node.
    for (const tl of repo.listTimelines(tenantId)) await tl.syncRemote();
    if (f.json) return printJson(report);
    const got = report.timelines.length === 0
      ? 'already held here'
      : `${report.timelines.length} timeline(s) (${report.timelines.join(', ')}), ${report.layersDownloaded} layer(s), ${formatBytes(report.bytesDownloaded)} downloaded`;
    return print(`attached ${tenantId} at generation ${report.generation}: ${got}\n`);
  } finally {
    await repo.close();
  }
}

export async function runDetach([dir, tenantId]: string[], f: RemoteFlags, print: Print, printJson: PrintJson): Promise<number> {
  requireRepository(dir);
  const remote = remoteConfigFrom(f);
  const repo = await Repository.open(dir, { implementation: f.impl, remote });
  try {
    const report = await repo.detachTenant(tenantId);
    if (f.json) return printJson(report);
    const how = report.stale
      ? 'it was stale (a newer generation holds it), so nothing was uploaded'
      : 'everything was uploaded first';
    return print(`detached ${tenantId} (generation ${report.generation}, timelines ${report.timelines.join(', ')}): ${how}; local files removed\n`);
  } finally {
    await repo.close();
  }
}

// ---- remote status ----------------------------------------------------------------------------

export interface TimelineRemoteStatus {
  tenantId: string;
  timelineId: string;
  /** This node's generation for the tenant, or null when it never attached it to remote storage. */
  generation: number | null;
  /** The attachment object names another (newer) attachment. */
  stale: boolean;
  diskConsistentLsn: Lsn;
  /** diskConsistentLsn of the newest index of a generation up to ours in remote storage, or null. */
  remoteConsistentLsn: Lsn | null;
  /** Layers the local manifest names that the remote index does not (yet), and their bytes. */
  pendingLayers: number;
  pendingBytes: number;
  /** The newest local manifest is not the uploaded index yet (layers, or LSNs / GC cutoff). */
  behind: boolean;
}

export interface RemoteStatus {
  storage: string;
  tenants: Array<{ tenantId: string; generation: number | null; stale: boolean; attachment: AttachmentRecord | null }>;
  timelines: TimelineRemoteStatus[];
}

export async function remoteStatus(dir: string, storage: RemoteStorage): Promise<RemoteStatus> {
  const entries = scanTimelines(dir);
  const out: RemoteStatus = { storage: storage.description, tenants: [], timelines: [] };
  for (const tenantId of [...new Set(entries.map((e) => e.tenantId))].sort()) {
    const local = readLocalAttachment(dir, tenantId);
    const att = await readAttachment(storage, tenantId);
    const stale = local !== null && att !== null
      && (att.record.generation > local.generation || (att.record.generation === local.generation && local.attachmentId !== undefined && att.record.attachmentId !== local.attachmentId));
    out.tenants.push({ tenantId, generation: local?.generation ?? null, stale, attachment: att?.record ?? null });
    for (const e of entries.filter((x) => x.tenantId === tenantId)) {
      if (e.manifest === null) throw e.error as StrataError;
      out.timelines.push(await timelineStatus(storage, e.manifest, local?.generation ?? null, stale));
    }
  }
  return out;
}

async function timelineStatus(storage: RemoteStorage, m: Manifest, generation: number | null, stale: boolean): Promise<TimelineRemoteStatus> {
  const prefix = timelinePrefix(m.tenantId, m.timelineId);
  let newest: { key: string; generation: number } | null = null;
  for (const o of await storage.list(prefix)) {
    const p = splitGeneration(o.key.slice(prefix.length));
    if (p === null || p.name !== INDEX_NAME || (generation !== null && p.generation > generation)) continue;
    if (newest === null || p.generation > newest.generation) newest = { key: o.key, generation: p.generation };
  }
  const idx = newest === null ? null : decodeIndex(newest.key, await storage.get(newest.key));
  const remoteSizes = new Map((idx?.manifest.layers ?? []).map((l) => [l.fileName, l.sizeBytes]));
  const pending = m.layers.filter((l) => remoteSizes.get(l.fileName) !== l.sizeBytes);
  const behind = idx === null || pending.length > 0 || idx.manifest.layers.length !== m.layers.length
    || idx.manifest.diskConsistentLsn !== m.diskConsistentLsn || idx.manifest.gcCutoffLsn !== m.gcCutoffLsn;
  return {
    tenantId: m.tenantId, timelineId: m.timelineId, generation, stale,
    diskConsistentLsn: m.diskConsistentLsn, remoteConsistentLsn: idx?.manifest.diskConsistentLsn ?? null,
    pendingLayers: pending.length, pendingBytes: pending.reduce((n, l) => n + l.sizeBytes, 0), behind,
  };
}

function readLocalAttachment(dir: string, tenantId: string): { generation: number; attachmentId?: string } | null {
  const file = path.join(dir, 'tenants', tenantId, 'remote.json');
  if (!fs.existsSync(file)) return null;
  try {
    return parseJsonObject(fs.readFileSync(file, 'utf8')) as { generation: number; attachmentId?: string };
  } catch (e) {
    throw new StrataError('CORRUPT_MANIFEST', `${file}: unreadable: ${(e as Error).message}`, { cause: e });
  }
}

export async function runRemoteStatus([dir]: string[], f: RemoteFlags, print: Print, printJson: PrintJson): Promise<number> {
  requireRepository(dir);
  const storage = await openRemoteStorage(remoteConfigFrom(f));
  let st: RemoteStatus;
  try {
    st = await remoteStatus(dir, storage);
  } finally {
    await storage.close();
  }
  if (f.json) return printJson(st);
  if (st.timelines.length === 0) return print(`no timelines (remote storage ${st.storage})\n`);
  const rows = st.timelines.map((t) => [
    t.tenantId, t.timelineId, t.generation === null ? '-' : String(t.generation), t.stale ? 'STALE' : 'ok',
    formatLsn(t.diskConsistentLsn), t.remoteConsistentLsn === null ? '-' : formatLsn(t.remoteConsistentLsn),
    t.behind ? `${t.pendingLayers} layer(s) + index, ${formatBytes(t.pendingBytes)}` : 'in sync',
  ]);
  const holders = st.tenants.map((t) => `${t.tenantId}: attachment object ${t.attachment === null ? 'absent' : `generation ${t.attachment.generation} (${t.attachment.node}, ${t.attachment.time})`}`);
  return print(table([['TENANT', 'TIMELINE', 'GEN', 'FENCE', 'DISK_CONSISTENT_LSN', 'REMOTE_CONSISTENT_LSN', 'PENDING'], ...rows]) + holders.join('\n') + '\n');
}
