/**
 * Compaction: L0 → L1 merges and image layer creation (docs/ARCHITECTURE.md).
 *
 * L0 → L1: a streaming k-way merge of L0 delta layers in (key, LSN) order into L1 delta layers that
 * each cover a narrow key range and the whole merged LSN range, cut at compactionTargetSize on key
 * boundaries. Values move as stored (still compressed), so compaction neither decodes nor
 * re-encodes them. The merge itself is the core's (Core.compactDeltas): the native core runs it
 * in C++ on a libuv worker thread, the TS core with the TS layer reader on the event loop
 * (lib/core/ts/compaction.ts); both write byte-identical outputs. This module picks the inputs
 * and reports; the timeline names the outputs and swaps them in (CompactionHost).
 *
 * Images: per keyspace partition, when delta layers stack up above the partition's newest image.
 * The timeline hands in a CompactionHost; the swap itself is its job.
 */
import * as path from 'node:path';
import { exclusiveKeyEnd, keyToHex } from '../key';
import type { Lsn } from '../lsn';
import type { LayerDesc } from './manifest';
import { yieldToEventLoop } from '../core/entry_batch';
import { type RefillableKeys, keyPartitions } from './key_stream';

/** A layer's key range: keys in [keyStart, keyEnd). */
export interface KeyRange {
  keyStart: Buffer;
  keyEnd: Buffer;
}

/** The exclusive end of a range whose last key is `key` (read_heat.ts cuts its image ranges so). */
export const keySuccessor = exclusiveKeyEnd;

/**
 * The most delta layers stacked over any one key: the number of layers a read of the worst key
 * may visit above the newest image. Ranges are 36-hex-digit strings, which sort as the keys do.
 */
export function maxStackDepth(layers: readonly { keyStart: string; keyEnd: string }[]): number {
  const events: Array<[string, number]> = [];
  for (const l of layers) events.push([l.keyStart, 1], [l.keyEnd, -1]);
  // At equal positions ends come first: [a, b) and [b, c) do not overlap.
  events.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
  let depth = 0;
  let max = 0;
  for (const [, d] of events) {
    depth += d;
    if (depth > max) max = depth;
  }
  return max;
}

/**
 * The newest LSN at which image layers together cover every key of [start, end): for each key the
 * newest image over it, the oldest of those over the range; -1n when some key has no image. One
 * image need not cover the range alone: image creation run twice at one LSN with other partitions
 * (keys added above it meanwhile), or hot images, tile it with several. Ranges are same-length hex
 * strings. Images newest first erase their ranges from the uncovered set; the one that empties it
 * gives the LSN.
 */
export function newestCoveringImageLsn(layers: readonly LayerDesc[], start: string, end: string): Lsn {
  const images = layers
    .filter((l) => l.kind === 'image' && l.keyStart < end && start < l.keyEnd)
    .sort((a, b) => (a.lsnStart > b.lsnStart ? -1 : a.lsnStart < b.lsnStart ? 1 : 0));
  let uncovered: StringRange[] = [[start, end]];
  for (const i of images) {
    uncovered = subtractRange(uncovered, i.keyStart, i.keyEnd);
    if (uncovered.length === 0) return i.lsnStart;
  }
  return -1n;
}

/** [start, end) over hex key strings. */
type StringRange = [string, string];

/** The parts of the sorted, disjoint `ranges` outside [start, end). */
function subtractRange(ranges: readonly StringRange[], start: string, end: string): StringRange[] {
  const out: StringRange[] = [];
  for (const [s, e] of ranges) {
    if (e <= start || end <= s) {
      out.push([s, e]);
      continue;
    }
    if (s < start) out.push([s, start]);
    if (end < e) out.push([end, e]);
  }
  return out;
}

/** What one compact() did, for the caller's logs. */
export interface CompactionReport {
  l0Compacted: string[];
  layersCreated: LayerDesc[];
  layersRemoved: string[];
  imageLayersCreated: LayerDesc[];
  /** The images among imageLayersCreated that read heat asked for (read_heat.ts), by file name. */
  hotImageLayersCreated: string[];
  bytesRead: number;
  bytesWritten: number;
}

export interface CompactOptions {
  /** Compact whatever L0 layers exist (≥ 1) and image every partition with a delta above its newest image. */
  force?: boolean;
}

export function emptyCompactionReport(): CompactionReport {
  return { l0Compacted: [], layersCreated: [], layersRemoved: [], imageLayersCreated: [], hotImageLayersCreated: [], bytesRead: 0, bytesWritten: 0 };
}

/** The compaction knobs (TimelineConfig has them all). */
export interface CompactionConfig {
  compactionThreshold: number;
  compactionUpperLimit: number;
  compactionTargetSize: number;
  imageCreationThreshold: number;
}

/** What a timeline lets compaction see and do (timeline.ts builds it from closures). */
export interface CompactionHost {
  dir: string;
  config: CompactionConfig;
  diskConsistentLsn: Lsn;
  /** Images may not go below this LSN (the GC cutoff, or just above the branch point). */
  imageFloorLsn: Lsn;
  layers(): readonly LayerDesc[];
  /** Every key the timeline can see, ascending, streamed (key_stream.ts). */
  keys(): Iterator<Buffer>;
  /** The same keys with the layer files' listed off the event loop, refilled before each step. */
  backgroundKeys(): RefillableKeys;
  /**
   * Merge delta layer files into L1 layers of [lsnStart, lsnEnd) (Core.compactDeltas), each
   * durable under its final name but not yet in the manifest; replaceLayers swaps them in.
   */
  compactDeltas(paths: readonly string[], lsnStart: Lsn, lsnEnd: Lsn): Promise<{ created: LayerDesc[]; bytesRead: number }>;
  /** Write and commit one image layer. */
  writeImage(lsn: Lsn, range: KeyRange, keys: Iterable<Buffer>): Promise<LayerDesc>;
  /** Write an image layer's file without committing it (commitImages swaps a batch in). */
  stageImage(lsn: Lsn, range: KeyRange, keys: Iterable<Buffer>): Promise<LayerDesc>;
  commitImages(descs: readonly LayerDesc[]): Promise<void>;
  /** Swap layers atomically (manifest, then layer map), then delete the removed files. */
  replaceLayers(removed: readonly string[], added: readonly LayerDesc[]): Promise<void>;
}

/** L0 delta layers, oldest first. */
export function level0(layers: readonly LayerDesc[]): LayerDesc[] {
  return layers.filter((l) => l.kind === 'delta' && l.level === 0).sort((a, b) => (a.lsnStart < b.lsnStart ? -1 : 1));
}

/** Merge the oldest L0 layers into L1 layers, then swap them in. */
export async function compactLevel0(host: CompactionHost, force: boolean, report: CompactionReport): Promise<void> {
  const l0 = level0(host.layers());
  if (l0.length === 0 || (!force && l0.length < host.config.compactionThreshold)) return;
  const inputs = l0.slice(0, host.config.compactionUpperLimit);
  const paths = inputs.map((l) => path.join(host.dir, l.fileName));
  const lsnStart = inputs[0].lsnStart;
  const lsnEnd = inputs[inputs.length - 1].lsnEnd;
  const { created, bytesRead } = await host.compactDeltas(paths, lsnStart, lsnEnd);
  report.bytesRead += bytesRead;
  await host.replaceLayers(inputs.map((l) => l.fileName), created);
  report.l0Compacted.push(...inputs.map((l) => l.fileName));
  report.layersRemoved.push(...inputs.map((l) => l.fileName));
  report.layersCreated.push(...created.map((d) => ({ ...d })));
  report.bytesWritten += created.reduce((n, d) => n + d.sizeBytes, 0);
}

/**
 * Image creation, per partition of the keyspace (about compactionTargetSize of pages each, as
 * Neon repartitions): a partition gets an image layer at diskConsistentLsn when
 * imageCreationThreshold delta layers stack over some key of it above the LSN at which images
 * cover it (newestCoveringImageLsn; every L0 counts once, L1 generations count where their ranges
 * overlap), or with `force` when any delta lies above that LSN. Neither mode images a partition
 * that images already cover at diskConsistentLsn.
 */
export async function createImageLayers(host: CompactionHost, force: boolean, report: CompactionReport): Promise<void> {
  const lsn = host.diskConsistentLsn;
  if (lsn < host.imageFloorLsn) return;
  const layers = host.layers();
  const staged: LayerDesc[] = [];
  const commit = async (): Promise<void> => {
    const batch = staged.splice(0);
    if (batch.length === 0) return;
    await host.commitImages(batch);
    for (const info of batch) {
      report.imageLayersCreated.push(info);
      report.bytesWritten += info.sizeBytes;
    }
  };
  for await (const part of keyPartitions(host.backgroundKeys(), host.config.compactionTargetSize, yieldToEventLoop)) {
    const start = keyToHex(part.keyStart);
    const end = keyToHex(part.keyEnd);
    const newestImage = newestCoveringImageLsn(layers, start, end);
    if (lsn <= newestImage) continue;
    const above = layers
      .filter((l) => l.kind === 'delta' && l.lsnEnd > newestImage + 1n && l.keyStart < end && start < l.keyEnd)
      .map((l) => ({ keyStart: l.keyStart > start ? l.keyStart : start, keyEnd: l.keyEnd < end ? l.keyEnd : end }));
    if (above.length === 0) continue;
    if (!force && maxStackDepth(above) < host.config.imageCreationThreshold) continue;
    staged.push(await host.stageImage(lsn, part, part.keys));
    if (staged.length >= IMAGE_COMMIT_LAYERS) await commit();
  }
  await commit();
}

/**
 * Partition images swapped in per manifest write: each commit costs a manifest fsync (image
 * creation committed every partition alone, a third of a small timeline's fsyncs), and a crash
 * loses at most this many written images (orphans the next open removes).
 */
export const IMAGE_COMMIT_LAYERS = 16;
