/**
 * Where a tenant's objects live in remote storage and what a timeline's index holds
 * (docs/REMOTE.md, "Object layout"). Keys carry the generation that wrote them as 8 hex digits,
 * as Neon's RFC 025 does, so two attachments of a tenant never write the same key and key order
 * is generation order.
 */
import { StrataError } from '../errors';
import { parseJsonObject } from '../json_object';
import { decodeManifest, encodeManifest, type Manifest } from './manifest';

/** Generations are positive 32-bit integers (8 hex digits in keys). */
export const MAX_GENERATION = 0xffff_ffff;
export const INDEX_NAME = 'index_part.json';
export const INDEX_FORMAT = 1;
const GEN_SUFFIX = /^(.+)-([0-9a-f]{8})$/;

function isGeneration(g: unknown): g is number {
  return typeof g === 'number' && Number.isSafeInteger(g) && g >= 1 && g <= MAX_GENERATION;
}

export function checkGeneration(g: unknown, what: string): number {
  if (!isGeneration(g)) {
    throw new StrataError('BAD_ARGUMENT', `${what} must be an integer in 1..${MAX_GENERATION}: got ${String(g)}`);
  }
  return g;
}

export function genHex(g: number): string {
  return g.toString(16).padStart(8, '0');
}

export function tenantPrefix(tenantId: string): string {
  return `tenants/${tenantId}/timelines/`;
}

export function timelinePrefix(tenantId: string, timelineId: string): string {
  return `${tenantPrefix(tenantId)}${timelineId}/`;
}

export function layerKey(tenantId: string, timelineId: string, fileName: string, generation: number): string {
  return `${timelinePrefix(tenantId, timelineId)}${fileName}-${genHex(generation)}`;
}

export function indexKey(tenantId: string, timelineId: string, generation: number): string {
  return `${timelinePrefix(tenantId, timelineId)}${INDEX_NAME}-${genHex(generation)}`;
}

/** `<name>-<gen8hex>` → its parts, or null for a key of another shape. */
export function splitGeneration(objectName: string): { name: string; generation: number } | null {
  const m = GEN_SUFFIX.exec(objectName);
  if (m === null) return null;
  const generation = parseInt(m[2], 16);
  return generation >= 1 ? { name: m[1], generation } : null;
}

/**
 * A timeline's index (`index_part.json-<gen>`): the manifest as the local disk holds it (checksummed,
 * so attach validates it the same way), and for each layer the generation whose key holds it.
 */
export interface IndexPart {
  generation: number;
  manifest: Manifest;
  layerGenerations: Map<string, number>;
}

interface IndexJson {
  format: number;
  generation: number;
  manifest: string;
  layerGenerations: Record<string, number>;
}

export function encodeIndex(p: IndexPart): Buffer {
  const json: IndexJson = {
    format: INDEX_FORMAT,
    generation: p.generation,
    manifest: encodeManifest(p.manifest),
    layerGenerations: Object.fromEntries(p.manifest.layers.map((l) => [l.fileName, p.layerGenerations.get(l.fileName) as number])),
  };
  return Buffer.from(JSON.stringify(json) + '\n');
}

export function decodeIndex(key: string, bytes: Buffer): IndexPart {
  const fail = (why: string): never => { throw new StrataError('CORRUPT_MANIFEST', `remote index ${key}: ${why}`); };
  let j: IndexJson;
  try {
    j = parseJsonObject(bytes.toString('utf8')) as unknown as IndexJson;
  } catch (e) {
    return fail(`bad JSON: ${(e as Error).message}`);
  }
  if (j.format !== INDEX_FORMAT) fail(`unsupported index format ${String(j.format)}`);
  if (typeof j.manifest !== 'string' || typeof j.layerGenerations !== 'object' || j.layerGenerations === null) fail('missing manifest or layerGenerations');
  const manifest = decodeManifest(key, j.manifest);
  const layerGenerations = new Map<string, number>();
  for (const l of manifest.layers) {
    const g = j.layerGenerations[l.fileName];
    if (!isGeneration(g)) fail(`layer ${l.fileName} has no valid generation`);
    layerGenerations.set(l.fileName, g);
  }
  // A bad generation here is a corrupt object, not a caller's BAD_ARGUMENT.
  const generation = j.generation;
  if (!isGeneration(generation)) return fail(`bad generation ${String(generation)}`);
  return { generation, manifest, layerGenerations };
}
