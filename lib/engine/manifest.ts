/**
 * The per-timeline manifest: which layer files make up the timeline, how far it is durable, and
 * its ancestor. JSON plus a CRC-32 trailer line (docs/FORMAT.md, "Manifest"); replaced atomically.
 */
import * as fs from 'node:fs';
import { crc32 } from 'node:zlib';
import { StrataError } from '../errors';
import { parseJsonObject } from '../json_object';
import { BLOCK_SIZE, type CompressionName, CODEC_NAMES } from '../core/format';
import { writeFileAtomic, writeFileAtomicAsync } from '../fs_util';
import { keyFromHex, keyToHex } from '../key';
import { formatLsn, lsnToHex16, parseLsn, type Lsn } from '../lsn';
import type { LayerKind } from '../core/core';

export const MANIFEST_FILE = 'manifest';
export const MANIFEST_FORMAT = 1;

export interface LayerDesc {
  fileName: string;
  kind: LayerKind;
  level: number;
  keyStart: string;  // 36 hex digits
  keyEnd: string;
  lsnStart: bigint;
  lsnEnd: bigint;    // exclusive
  sizeBytes: number;
}

export interface Manifest {
  tenantId: string;
  timelineId: string;
  ancestorTimelineId: string | null;
  ancestorLsn: bigint | null;
  startLsn: bigint;
  diskConsistentLsn: bigint;
  /** Reads below this LSN fail with LSN_GC_CUTOFF; it only moves forward. */
  gcCutoffLsn: bigint;
  compression: CompressionName;
  layers: LayerDesc[];
  /**
   * What a subsystem records about the timeline, by subsystem name (e.g. `pg`: the PostgreSQL
   * cluster the timeline follows); the engine keeps it and branches inherit it.
   */
  extensions: ManifestExtensions;
}

/** Flat string fields per subsystem; the engine does not interpret them. */
export type ManifestExtensions = Readonly<Record<string, Readonly<Record<string, string>>>>;

/** The fields a layer swap may move along with the layer list. */
export type ManifestPatch = Partial<Pick<Manifest, 'diskConsistentLsn' | 'gcCutoffLsn'>>;

interface LayerJson {
  fileName: string; kind: LayerKind; level: number; keyStart: string; keyEnd: string;
  lsnStart: string; lsnEnd: string; sizeBytes: number;
}

interface ManifestJson {
  format: number; tenantId: string; timelineId: string; ancestorTimelineId: string | null;
  ancestorLsn: string | null; startLsn: string; diskConsistentLsn: string; gcCutoffLsn?: string; compression: string;
  layers: LayerJson[]; extensions?: Record<string, Record<string, string>>;
}

const TRAILER = /^crc32 ([0-9a-f]{8})\n$/;

export function encodeManifest(m: Manifest): string {
  const json: ManifestJson = {
    format: MANIFEST_FORMAT,
    tenantId: m.tenantId,
    timelineId: m.timelineId,
    ancestorTimelineId: m.ancestorTimelineId,
    ancestorLsn: m.ancestorLsn === null ? null : formatLsn(m.ancestorLsn),
    startLsn: formatLsn(m.startLsn),
    diskConsistentLsn: formatLsn(m.diskConsistentLsn),
    gcCutoffLsn: formatLsn(m.gcCutoffLsn),
    compression: m.compression,
    layers: m.layers.map((l) => ({
      fileName: l.fileName, kind: l.kind, level: l.level, keyStart: l.keyStart, keyEnd: l.keyEnd,
      lsnStart: formatLsn(l.lsnStart), lsnEnd: formatLsn(l.lsnEnd), sizeBytes: l.sizeBytes,
    })),
    ...(Object.keys(m.extensions).length > 0 ? { extensions: m.extensions } : {}),
  };
  const body = JSON.stringify(json, null, 1);
  return `${body}\ncrc32 ${crc32(body).toString(16).padStart(8, '0')}\n`;
}

export function writeManifest(file: string, m: Manifest): void {
  writeFileAtomic(file, encodeManifest(m));
}

/** writeManifest with the write, fsyncs and rename on the libuv pool (a layer swap's commit). */
export function writeManifestAsync(file: string, m: Manifest): Promise<void> {
  return writeFileAtomicAsync(file, encodeManifest(m));
}

export function readManifest(file: string): Manifest {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new StrataError('CORRUPT_MANIFEST', `${file}: cannot read: ${(e as Error).message}`, { cause: e });
  }
  return decodeManifest(file, text);
}

export function decodeManifest(file: string, text: string): Manifest {
  const fail = (why: string): never => { throw new StrataError('CORRUPT_MANIFEST', `${file}: ${why}`); };
  const cut = text.lastIndexOf('\ncrc32 ');
  if (cut < 0) fail('missing checksum trailer (truncated?)');
  const body = text.slice(0, cut);
  const m = TRAILER.exec(text.slice(cut + 1));
  if (!m) fail('malformed checksum trailer');
  const stored = parseInt(m![1], 16);
  const actual = crc32(body);
  if (stored !== actual) fail(`checksum mismatch (stored ${m![1]}, computed ${actual.toString(16).padStart(8, '0')})`);
  let j: ManifestJson;
  try {
    j = parseJsonObject(body) as unknown as ManifestJson;
  } catch (e) {
    return fail(`bad JSON: ${(e as Error).message}`);
  }
  if (j.format !== MANIFEST_FORMAT) fail(`unsupported manifest format ${String(j.format)}`);
  if (!CODEC_NAMES.includes(j.compression as CompressionName)) fail(`unknown compression ${j.compression}`);
  try {
    return {
      tenantId: j.tenantId,
      timelineId: j.timelineId,
      ancestorTimelineId: j.ancestorTimelineId,
      ancestorLsn: j.ancestorLsn === null ? null : parseLsn(j.ancestorLsn),
      startLsn: parseLsn(j.startLsn),
      diskConsistentLsn: parseLsn(j.diskConsistentLsn),
      gcCutoffLsn: j.gcCutoffLsn === undefined ? 0n : parseLsn(j.gcCutoffLsn),
      compression: j.compression as CompressionName,
      extensions: checkExtensions(j.extensions),
      layers: j.layers.map((l) => checkLayerDesc({
        fileName: l.fileName, kind: l.kind, level: l.level, keyStart: l.keyStart, keyEnd: l.keyEnd,
        lsnStart: parseLsn(l.lsnStart), lsnEnd: parseLsn(l.lsnEnd), sizeBytes: l.sizeBytes,
      })),
    };
  } catch (e) {
    return fail(`bad field: ${(e as Error).message}`);
  }
}

const KEY_HEX = /^[0-9A-F]{36}$/;

function checkExtensions(x: unknown): ManifestExtensions {
  if (x === undefined) return {};
  const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isRecord(x)) throw new Error('extensions must be an object');
  for (const [name, fields] of Object.entries(x)) {
    if (!isRecord(fields) || Object.values(fields).some((v) => typeof v !== 'string')) throw new Error(`extension ${name} must map names to strings`);
  }
  return x as ManifestExtensions;
}

/**
 * A layer entry must describe a file this engine could have written: known kind and level, its
 * ranges well formed, and its file name exactly the one its fields give. Names are used as paths
 * (open, delete), so nothing else — no `..`, no separator — may get through.
 */
function checkLayerDesc(d: LayerDesc): LayerDesc {
  const fail = (why: string): never => { throw new Error(`layer ${JSON.stringify(d.fileName)}: ${why}`); };
  if (d.kind !== 'delta' && d.kind !== 'image') fail(`unknown kind ${JSON.stringify(d.kind)}`);
  if (!(d.level === 0 || (d.kind === 'delta' && d.level === 1))) fail(`bad level ${JSON.stringify(d.level)}`);
  if (typeof d.keyStart !== 'string' || !KEY_HEX.test(d.keyStart) || typeof d.keyEnd !== 'string' || !KEY_HEX.test(d.keyEnd)) fail('keys must be 36 upper-case hex digits');
  if (d.keyStart >= d.keyEnd || d.lsnStart >= d.lsnEnd) fail('empty key or LSN range');
  if (!Number.isSafeInteger(d.sizeBytes) || d.sizeBytes <= 0 || d.sizeBytes % BLOCK_SIZE !== 0) fail(`bad size ${JSON.stringify(d.sizeBytes)}`);
  const keyStart = keyFromHex(d.keyStart);
  const keyEnd = keyFromHex(d.keyEnd);
  const expected = d.kind === 'delta' ? deltaFileName(keyStart, keyEnd, d.lsnStart, d.lsnEnd) : imageFileName(keyStart, keyEnd, d.lsnStart);
  if (d.kind === 'image' && d.lsnEnd !== d.lsnStart + 1n) fail('an image layer spans exactly one LSN');
  if (d.fileName !== expected) fail(`file name does not match its ranges (expected ${expected})`);
  // JSON's `-0` passes `=== 0` but would not survive a rewrite (it encodes as `0`): keep the canonical value.
  return { ...d, level: d.level === 0 ? 0 : 1 };
}

/** Layer file names carry key and LSN ranges, as Neon's do (docs/FORMAT.md, "File names"). */
export function deltaFileName(keyStart: Buffer, keyEnd: Buffer, lsnStart: Lsn, lsnEnd: Lsn): string {
  return `${keyToHex(keyStart)}-${keyToHex(keyEnd)}__${lsnToHex16(lsnStart)}-${lsnToHex16(lsnEnd)}`;
}

export function imageFileName(keyStart: Buffer, keyEnd: Buffer, lsn: Lsn): string {
  return `${keyToHex(keyStart)}-${keyToHex(keyEnd)}__${lsnToHex16(lsn)}`;
}
