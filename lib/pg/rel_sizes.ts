/**
 * Relation sizes of a PostgreSQL timeline at any LSN, and the read rules that depend on them
 * (docs/POSTGRES.md, "Relation sizes"): a block inside the relation that no record ever wrote
 * reads as zeros (PostgreSQL extends relations with zero pages without WAL), a block past the end
 * or of a relation that does not exist is PAGE_NOT_FOUND.
 *
 * Sizes are size keys (keyspace.ts) read through the engine like pages. A per-timeline cache, as
 * Neon's rel_size_cache, spares most of those reads: an entry says "this size holds from LSN
 * `validFrom` on", which is exact because ingest updates the entry whenever it writes a new size
 * for the relation, and a read fills the cache only when it read at the newest LSN.
 */
import { PAGE_STATUS_NOT_FOUND } from '../core/core';
import { DEFAULT_WAIT_LSN_TIMEOUT_MS, type TimelineImpl } from '../engine/timeline';
import { StrataError } from '../errors';
import { formatKey, type PageKey } from '../key';
import { formatLsn, type Lsn } from '../lsn';
import { PAGE_SIZE } from '../record';
import { decodeRelSize, FSM_FORKNUM, relId, relSizeKey, type RelTag } from './keyspace';

interface SizeEntry {
  validFrom: Lsn;
  /** null: the fork does not exist (never created, or dropped). */
  nblocks: number | null;
}

/** Cached relation sizes bounded by count; an evicted entry is simply read again. */
const MAX_CACHED_SIZES = 100_000;

export class RelSizes {
  private readonly cache = new Map<string, SizeEntry>();

  constructor(private readonly tl: TimelineImpl) {}

  /** Ingest wrote `nblocks` (null: dropped) for `rel` at `lsn`. */
  noteChange(rel: RelTag, lsn: Lsn, nblocks: number | null): void {
    const id = relId(rel);
    this.cache.delete(id); // re-insert at the back: Map order is our LRU order
    if (this.cache.size >= MAX_CACHED_SIZES) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(id, { validFrom: lsn, nblocks });
  }

  /** The size at the newest LSN, as ingest sees it (reads the size key on a cache miss). */
  async latest(rel: RelTag): Promise<number | null> {
    return this.at(rel, this.tl.lastRecordLsn);
  }

  /** smgrnblocks at `lsn` (waiting for it like a page read): null when the fork does not exist. */
  async at(rel: RelTag, lsn: Lsn): Promise<number | null> {
    if (rel.forkNum === FSM_FORKNUM) return null;
    const hit = this.cached(rel, lsn);
    if (hit !== undefined) return hit;
    const newest = lsn === this.tl.lastRecordLsn;
    const { out, status } = await this.tl.getPagesWithStatus([relSizeKey(rel)], lsn);
    const nblocks = status[0] === PAGE_STATUS_NOT_FOUND ? null : decodeRelSize(out);
    if (newest) this.fill(rel, lsn, nblocks);
    return nblocks;
  }

  /** The synchronous twin of `at`, for readPage; LSN_TIMEOUT above lastRecordLsn. */
  atSync(rel: RelTag, lsn: Lsn): number | null {
    if (rel.forkNum === FSM_FORKNUM) return null;
    const hit = this.cached(rel, lsn);
    if (hit !== undefined) return hit;
    const out = Buffer.allocUnsafe(PAGE_SIZE);
    const status = this.tl.readPagesIntoWithStatus([relSizeKey(rel)], lsn, out, 0);
    const nblocks = status !== null && status[0] === PAGE_STATUS_NOT_FOUND ? null : decodeRelSize(out);
    if (lsn === this.tl.lastRecordLsn) this.fill(rel, lsn, nblocks);
    return nblocks;
  }

  private cached(rel: RelTag, lsn: Lsn): number | null | undefined {
    const e = this.cache.get(relId(rel));
    return e !== undefined && e.validFrom <= lsn ? e.nblocks : undefined;
  }

  /** Cache what a read at the newest LSN found, unless ingest has recorded a newer size meanwhile. */
  private fill(rel: RelTag, lsn: Lsn, nblocks: number | null): void {
    const e = this.cache.get(relId(rel));
    if (e === undefined || e.validFrom <= lsn) this.noteChange(rel, lsn, nblocks);
  }
}

const sizesByTimeline = new WeakMap<TimelineImpl, RelSizes>();

/** The size tracker of a timeline (one per timeline, shared by ingest and reads). */
export function relSizes(tl: TimelineImpl): RelSizes {
  let s = sizesByTimeline.get(tl);
  if (s === undefined) {
    s = new RelSizes(tl);
    sizesByTimeline.set(tl, s);
  }
  return s;
}

/** PAGE_NOT_FOUND for a block past the end of its relation (or of a relation that does not exist). */
function checkInside(key: PageKey, nblocks: number | null, lsn: Lsn, tl: TimelineImpl): void {
  if (nblocks === null) {
    throw new StrataError('PAGE_NOT_FOUND', `${tl.name}: no page ${formatKey(key)} at LSN ${formatLsn(lsn)}: the relation fork does not exist there`);
  }
  if (key.blockNum >= nblocks) {
    throw new StrataError('PAGE_NOT_FOUND', `${tl.name}: no page ${formatKey(key)} at LSN ${formatLsn(lsn)}: the relation fork has ${nblocks} blocks`);
  }
}

/** GetPage@LSN with PostgreSQL's rules: sizes first, then the pages, a never-written block as zeros. */
export async function pgGetPages(tl: TimelineImpl, keys: readonly PageKey[], lsn: Lsn, timeoutMs?: number): Promise<Buffer[]> {
  await tl.waitForLsn(lsn, timeoutMs ?? DEFAULT_WAIT_LSN_TIMEOUT_MS);
  const sizes = relSizes(tl);
  for (const k of keys) checkInside(k, await sizes.at(k, lsn), lsn, tl);
  const { out } = await tl.getPagesWithStatus(keys, lsn, { timeoutMs });
  const pages: Buffer[] = [];
  for (let i = 0; i < keys.length; i++) pages.push(out.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
  return pages;
}

/** The synchronous read into a caller buffer with the same rules (missing blocks come back zeroed). */
export function pgReadPagesInto(tl: TimelineImpl, keys: readonly PageKey[], lsn: Lsn, into: Uint8Array, offset: number): void {
  const sizes = relSizes(tl);
  for (const k of keys) checkInside(k, sizes.atSync(k, lsn), lsn, tl);
  tl.readPagesIntoWithStatus(keys, lsn, into, offset);
}
