/**
 * `strata dump-layer`: one layer file's summary (through the selected core, which validates it as
 * a read would), index statistics and its entries. Entries are walked with the TypeScript layer
 * reader (read-only use of layer_file / disk_btree / block_io): the core contract has no entry
 * iterator, and a dump should not need one.
 */
import type { Core, LayerSummary } from '../core/core';
import { BtreeCursor } from '../core/ts/disk_btree';
import { BLOB_HEADER_SIZE, BLOCK_SIZE, btreeFanout } from '../core/format';
import { RecordArena, RecordSlot } from '../core/ts/block_io';
import { KEY_SIZE, keyToHex } from '../key';
import { openLayerFile, type Layer } from '../core/ts/layer_file';
import { formatLsn } from '../lsn';
import { MIN_PAGE_CACHE_PAGES } from '../core/core';
import { PageCache } from '../core/ts/page_cache';
import { MAX_RECORD_SIZE, PATCH_HEADER_SIZE, RECORD_TAG_IMAGE, RECORD_TAG_PATCH, RECORD_TAG_VALUE, RECORD_TAG_ZERO } from '../record';
import { describeKey } from './util';

export interface LayerEntry {
  key: string;        // spc/db/rel.fork#block
  keyHex: string;     // 36 hex digits
  lsn: string;        // X/Y; an image layer's entries carry the image LSN
  willInit: boolean;
  record: 'image' | 'zero' | 'patch' | 'value' | 'unknown';
  /** Patch only: where the data goes in the page and how long it is. */
  patchOffset?: number;
  patchLength?: number;
  recordBytes: number;
  /** Bytes the blob takes in the value stream (header included, compressed or not). */
  storedBytes: number;
  compressed: boolean;
  valueOffset: number;
}

export interface IndexStats {
  height: number;
  fanout: number;
  leaves: number;
  internalNodes: number;
  /** Entries per leaf slot: how full the leaves are (1 = every leaf full). */
  leafFill: number;
  valueBlocks: number;
}

export interface EntryStats {
  entries: number;
  distinctKeys: number;
  images: number;
  zeros: number;
  patches: number;
  compressedBlobs: number;
  recordBytes: number;
  storedBytes: number;
}

export interface LayerDump {
  file: string;
  sizeBytes: number;
  summary: LayerSummary;
  index: IndexStats;
  stats: EntryStats;
  /** The first `limit` entries in index order (key, then LSN). */
  entries: LayerEntry[];
  truncated: boolean;
}

const RECORD_NAMES: Record<number, LayerEntry['record']> = { [RECORD_TAG_IMAGE]: 'image', [RECORD_TAG_ZERO]: 'zero', [RECORD_TAG_PATCH]: 'patch', [RECORD_TAG_VALUE]: 'value' };

export function dumpLayer(core: Core, file: string, limit: number): LayerDump {
  const handle = core.openLayer(file);
  let summary: LayerSummary;
  try {
    summary = core.layerSummary(handle);
  } finally {
    core.closeLayer(handle);
  }
  const layer = openLayerFile(file, 1, new PageCache(MIN_PAGE_CACHE_PAGES * BLOCK_SIZE));
  try {
    const { stats, entries } = walkEntries(layer, limit);
    return {
      file, sizeBytes: summary.totalBlocks * BLOCK_SIZE, summary, index: indexStats(layer), stats, entries, truncated: stats.entries > entries.length,
    };
  } finally {
    layer.close();
  }
}

function indexStats(layer: Layer): IndexStats {
  const s = layer.summary;
  const fanout = btreeFanout(s.keySize);
  return {
    height: s.indexHeight,
    fanout,
    leaves: s.indexLeafCount,
    internalNodes: s.indexBlkCount - s.indexLeafCount,
    leafFill: s.indexLeafCount === 0 ? 0 : s.entryCount / (s.indexLeafCount * fanout),
    valueBlocks: s.valueBlkCount,
  };
}

/** One pass over every entry: statistics for all, details for the first `limit`. */
function walkEntries(layer: Layer, limit: number): { stats: EntryStats; entries: LayerEntry[] } {
  const stats: EntryStats = { entries: 0, distinctKeys: 0, images: 0, zeros: 0, patches: 0, compressedBlobs: 0, recordBytes: 0, storedBytes: 0 };
  const entries: LayerEntry[] = [];
  const cur = new BtreeCursor();
  const arena = new RecordArena(MAX_RECORD_SIZE);
  const slot = new RecordSlot();
  let prevKey = '';
  for (let ok = layer.btree.first(cur); ok; ok = layer.btree.next(cur)) {
    const e = readEntry(layer, cur, arena, slot);
    stats.entries++;
    if (e.keyHex !== prevKey) stats.distinctKeys++;
    prevKey = e.keyHex;
    if (e.record === 'image') stats.images++;
    else if (e.record === 'zero') stats.zeros++;
    else if (e.record === 'patch') stats.patches++;
    if (e.compressed) stats.compressedBlobs++;
    stats.recordBytes += e.recordBytes;
    stats.storedBytes += e.storedBytes;
    if (entries.length < limit) entries.push(e);
  }
  return { stats, entries };
}

function readEntry(layer: Layer, cur: BtreeCursor, arena: RecordArena, slot: RecordSlot): LayerEntry {
  const s = layer.summary;
  const off = cur.keyOff();
  const key = cur.node.subarray(off, off + KEY_SIZE);
  const lsn = layer.isImage ? s.lsnStart : cur.node.readBigUInt64BE(off + KEY_SIZE);
  const value = cur.value();
  const valueOffset = Math.floor(value / 2);
  arena.reset();
  layer.file.readBlob(valueOffset, s.valueBytes, arena, slot);
  const rec = slot.buf.subarray(slot.off, slot.off + slot.len);
  const kind = RECORD_NAMES[rec[0]] ?? 'unknown';
  const entry: LayerEntry = {
    key: describeKey(key), keyHex: keyToHex(key), lsn: formatLsn(lsn), willInit: value % 2 === 1, record: kind,
    recordBytes: rec.length, storedBytes: slot.blobLen, compressed: isCompressed(slot.blobLen, rec.length), valueOffset,
  };
  if (kind === 'patch') {
    entry.patchOffset = rec.readUInt16BE(1);
    entry.patchLength = rec.length - PATCH_HEADER_SIZE;
  }
  return entry;
}

/**
 * A raw blob is exactly header + record; the writer keeps a compressed one only when it is smaller
 * than that (FORMAT.md, "Blobs"), so any other length means compressed.
 */
function isCompressed(blobLen: number, recordLen: number): boolean {
  return blobLen !== BLOB_HEADER_SIZE + recordLen;
}
