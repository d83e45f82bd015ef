/**
 * Read-only views of a repository directory for the CLI: timelines from their manifests, and
 * `verify`. Nothing here opens a Repository: `Repository.open` deletes crash leftovers, and an
 * operator's inspection tool must not change what it inspects. Orphans are reported instead.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Core } from '../core/core';
import { isStrataError, StrataError, type StrataErrorCode } from '../errors';
import { TMP_SUFFIX } from '../fs_util';
import { keyToHex } from '../key';
import { formatLsn } from '../lsn';
import { type LayerDesc, type Manifest, MANIFEST_FILE, readManifest } from '../engine/manifest';

const REPO_MARKER = 'strata.json';
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export interface TimelineEntry {
  tenantId: string;
  timelineId: string;
  dir: string;
  manifestFile: string;
  /** null when the manifest could not be read; `error` says why. */
  manifest: Manifest | null;
  error: StrataError | null;
}

/** NOT_A_REPOSITORY (exit 4) unless `dir` holds a Strata repository (its marker file). */
export function requireRepository(dir: string): void {
  if (!fs.existsSync(path.join(dir, REPO_MARKER))) {
    throw new StrataError('NOT_A_REPOSITORY', `${dir}: not a Strata repository (no ${REPO_MARKER})`);
  }
}

function listIds(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() && ID_PATTERN.test(d.name)).map((d) => d.name).sort();
}

export function timelineDir(repoDir: string, tenantId: string, timelineId: string): string {
  return path.join(repoDir, 'tenants', tenantId, 'timelines', timelineId);
}

/**
 * Every timeline directory with its manifest. A directory without a manifest is a createTimeline
 * that crashed before its commit point: the timeline never existed, so it is left out.
 */
export function scanTimelines(repoDir: string): TimelineEntry[] {
  const out: TimelineEntry[] = [];
  const tenantsDir = path.join(repoDir, 'tenants');
  for (const tenantId of listIds(tenantsDir)) {
    for (const timelineId of listIds(path.join(tenantsDir, tenantId, 'timelines'))) {
      const dir = timelineDir(repoDir, tenantId, timelineId);
      const manifestFile = path.join(dir, MANIFEST_FILE);
      if (!fs.existsSync(manifestFile)) continue;
      try {
        out.push({ tenantId, timelineId, dir, manifestFile, manifest: readManifest(manifestFile), error: null });
      } catch (e) {
        if (!(e instanceof StrataError)) throw e;
        out.push({ tenantId, timelineId, dir, manifestFile, manifest: null, error: e });
      }
    }
  }
  return out;
}

/** One timeline's manifest, or TIMELINE_NOT_FOUND / the manifest's own error. */
export function readTimelineManifest(repoDir: string, tenantId: string, timelineId: string): { dir: string; manifest: Manifest } {
  const dir = timelineDir(repoDir, tenantId, timelineId);
  const file = path.join(dir, MANIFEST_FILE);
  if (!ID_PATTERN.test(tenantId) || !ID_PATTERN.test(timelineId) || !fs.existsSync(file)) {
    throw new StrataError('TIMELINE_NOT_FOUND', `no timeline ${tenantId}/${timelineId} in ${repoDir}`);
  }
  return { dir, manifest: readManifest(file) };
}

// ---------------------------------------------------------------------------------------------
// verify

export interface Fault {
  file: string;
  code: StrataErrorCode;
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  timelines: number;
  layers: number;
  layersVerified: number;
  bytes: number;
  entries: number;
  faults: Fault[];
  /** Crash leftovers (temp files, layers no manifest names): harmless, removed by the next open. */
  orphans: string[];
}

export interface VerifyProgress {
  /** Called before the first layer with the total, and after each layer with the bytes done. */
  (doneBytes: number, totalBytes: number, note: string): void;
}

/**
 * Check every manifest (checksum, ids, ancestor, LSN bounds, overlaps), every listed layer (present,
 * recorded size, every block's checksum and structure via the core's verifyLayer, summary agrees
 * with the manifest), and list orphans. Collects every fault rather than stopping at the first.
 */
export function verifyRepository(repoDir: string, core: Core, progress: VerifyProgress): VerifyReport {
  const timelines = scanTimelines(repoDir);
  const report: VerifyReport = { ok: true, timelines: timelines.length, layers: 0, layersVerified: 0, bytes: 0, entries: 0, faults: [], orphans: [] };
  const byId = new Map(timelines.map((t) => [`${t.tenantId}/${t.timelineId}`, t]));
  const totalBytes = timelines.reduce((sum, t) => sum + (t.manifest?.layers.reduce((s, l) => s + l.sizeBytes, 0) ?? 0), 0);
  progress(0, totalBytes, '');
  for (const t of timelines) {
    if (t.manifest === null) {
      report.faults.push(fault(t.manifestFile, t.error));
      continue;
    }
    report.faults.push(...checkManifest(t, t.manifest, byId));
    report.orphans.push(...findOrphans(t.dir, t.manifest));
    for (const desc of t.manifest.layers) {
      report.layers++;
      const f = verifyOneLayer(core, t.dir, desc, report);
      if (f !== null) report.faults.push(f);
      report.bytes += desc.sizeBytes;
      progress(report.bytes, totalBytes, `${t.tenantId}/${t.timelineId}`);
    }
  }
  report.ok = report.faults.length === 0;
  return report;
}

function fault(file: string, e: unknown): Fault {
  if (isStrataError(e)) return { file, code: e.code, message: e.message };
  return { file, code: 'IO_ERROR', message: `IO_ERROR: ${file}: ${e instanceof Error ? e.message : String(e)}` };
}

function manifestFault(file: string, why: string): Fault {
  return { file, code: 'CORRUPT_MANIFEST', message: `CORRUPT_MANIFEST: ${file}: ${why}` };
}

/** Manifest-level consistency: what Repository.open checks, plus LSN bounds and the branch point. */
function checkManifest(t: TimelineEntry, m: Manifest, byId: ReadonlyMap<string, TimelineEntry>): Fault[] {
  const out: Fault[] = [];
  const file = t.manifestFile;
  if (m.tenantId !== t.tenantId || m.timelineId !== t.timelineId) out.push(manifestFault(file, `names ${m.tenantId}/${m.timelineId}`));
  if (m.ancestorTimelineId !== null) {
    const anc = byId.get(`${m.tenantId}/${m.ancestorTimelineId}`)?.manifest;
    if (anc === undefined || anc === null) out.push(manifestFault(file, `ancestor ${m.ancestorTimelineId} is missing or unreadable`));
    else if (m.ancestorLsn !== null && anc.diskConsistentLsn < m.ancestorLsn) {
      out.push(manifestFault(file, `branch point ${formatLsn(m.ancestorLsn)} is above the ancestor's diskConsistentLsn ${formatLsn(anc.diskConsistentLsn)}`));
    }
  }
  for (const l of m.layers) {
    // A layer's records are durable, so none can lie above the durable LSN.
    if (l.lsnEnd - 1n > m.diskConsistentLsn) out.push(manifestFault(file, `layer ${l.fileName} ends above diskConsistentLsn ${formatLsn(m.diskConsistentLsn)}`));
  }
  const deltas = m.layers.filter((l) => l.kind === 'delta');
  for (let i = 0; i < deltas.length; i++) {
    for (let j = i + 1; j < deltas.length; j++) {
      const a = deltas[i];
      const b = deltas[j];
      if (a.keyStart < b.keyEnd && b.keyStart < a.keyEnd && a.lsnStart < b.lsnEnd && b.lsnStart < a.lsnEnd) {
        out.push(manifestFault(file, `delta layers ${a.fileName} and ${b.fileName} overlap`));
      }
    }
  }
  return out;
}

function findOrphans(dir: string, m: Manifest): string[] {
  const named = new Set(m.layers.map((l) => l.fileName));
  return fs.readdirSync(dir).filter((f) => f !== MANIFEST_FILE && (f.endsWith(TMP_SUFFIX) || !named.has(f))).map((f) => path.join(dir, f));
}

/** Present, of the recorded size, every block sound, and saying what the manifest says it is. */
function verifyOneLayer(core: Core, dir: string, desc: LayerDesc, report: VerifyReport): Fault | null {
  const file = path.join(dir, desc.fileName);
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    return manifestFault(path.join(dir, MANIFEST_FILE), `layer ${desc.fileName} is missing`);
  }
  if (size !== desc.sizeBytes) {
    return { file, code: 'CORRUPT_LAYER', message: `CORRUPT_LAYER: ${file}: ${size} bytes, the manifest says ${desc.sizeBytes}` };
  }
  let handle: number | null = null;
  try {
    handle = core.openLayer(file);
    report.entries += core.verifyLayer(handle);
    const s = core.layerSummary(handle);
    const mismatch = summaryMismatch(desc, s.kind, keyToHex(s.keyStart), keyToHex(s.keyEnd), s.lsnStart, s.lsnEnd);
    if (mismatch !== null) return manifestFault(path.join(dir, MANIFEST_FILE), `layer ${desc.fileName}: ${mismatch}`);
    report.layersVerified++;
    return null;
  } catch (e) {
    return fault(file, e);
  } finally {
    if (handle !== null) core.closeLayer(handle);
  }
}

function summaryMismatch(d: LayerDesc, kind: string, keyStart: string, keyEnd: string, lsnStart: bigint, lsnEnd: bigint): string | null {
  if (d.kind !== kind) return `manifest says ${d.kind}, the file is ${kind}`;
  if (d.keyStart !== keyStart || d.keyEnd !== keyEnd) return 'key range differs from the file\'s summary';
  if (d.lsnStart !== lsnStart || d.lsnEnd !== lsnEnd) return `LSN range ${formatLsn(d.lsnStart)}..${formatLsn(d.lsnEnd)} differs from the file's ${formatLsn(lsnStart)}..${formatLsn(lsnEnd)}`;
  return null;
}
