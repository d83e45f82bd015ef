/**
 * Read heat for heat-driven image creation (issue 11, step 7; docs/ARCHITECTURE.md, "Heat-driven
 * images"). Neon images a partition once enough delta layers stack over it, whatever its reads;
 * here the read path also remembers, per key, the records it had to apply (reads × chain length,
 * decayed), and each compaction pass images the hottest small key ranges whose expected saving
 * justifies the bytes, under a byte budget that is a fraction of the bytes flushed since.
 *
 * Hot images cover HOT_RANGE_PAGES consecutive keys, not a whole partition: a partition is
 * compactionTargetSize of pages (16384 by default), so imaging one for a handful of hot keys would
 * write 128 MiB to save a few reads; a range of 32 pages costs 256 KiB at most before compression,
 * and keys read together tend to sit together (a relation's blocks). They are ordinary image
 * layers (docs/FORMAT.md): reads, GC and remote storage treat them like any other.
 */
import { compareBytes } from '../core/ts/disk_btree';
import { KEY_SIZE, keyToHex } from '../key';
import type { Lsn } from '../lsn';
import { type CompactionHost, type CompactionReport, keySuccessor } from './compaction';

/** Reads that applied fewer records are not tracked: an image would save them next to nothing. */
export const HEAT_MIN_APPLIED = 3;
/** Keys per hot image layer (≤ 256 KiB of pages before compression). */
export const HOT_RANGE_PAGES = 32;
/** A range qualifies when its decayed records-applied sum is at least this per page written. */
export const HEAT_MIN_SAVING_PER_PAGE = 4;
/** Factor applied to every key's heat at each pass: a read counts half as much one pass later. */
export const HEAT_DECAY = 0.5;
/** Keys tracked at most (18-byte key + a number each); past it new keys wait for the next decay. */
export const HEAT_MAX_TRACKED_KEYS = 65_536;
/** Default share of flushed bytes that hot images may add (option heatImageBudget). */
export const DEFAULT_HEAT_IMAGE_BUDGET = 0.1;

/** A key range chosen for a hot image: keys[i] for i in the range, in order, with its heat. */
export interface HotRange {
  keyStart: Buffer;
  keyEnd: Buffer;
  keys: Buffer[];
  score: number;
}

/** Per-key read heat of one timeline, fed by its read path (keys as 18-byte latin1 strings). */
export class ReadHeat {
  private readonly heat = new Map<string, number>();
  /** Bytes of hot images the budget allows now (grows with flushed bytes, spent by images; may go negative). */
  credit = 0;
  private flushedSeen = 0;

  /** One read of the key applied `applied` records. */
  note(keyId: string, applied: number): void {
    if (applied < HEAT_MIN_APPLIED) return;
    const h = this.heat.get(keyId);
    if (h !== undefined) this.heat.set(keyId, h + applied);
    else if (this.heat.size < HEAT_MAX_TRACKED_KEYS) this.heat.set(keyId, applied);
  }

  get tracked(): ReadonlyMap<string, number> {
    return this.heat;
  }

  /**
   * Add `ratio` of the bytes flushed since the last call (`flushedTotal` is the running total; a
   * stats reset that lowers it counts from zero) to the credit, capped at `capBytes`.
   */
  earn(flushedTotal: number, ratio: number, capBytes: number): void {
    const fresh = flushedTotal >= this.flushedSeen ? flushedTotal - this.flushedSeen : flushedTotal;
    this.flushedSeen = flushedTotal;
    this.credit = Math.min(capBytes, this.credit + fresh * ratio);
  }

  /** The keys of an imaged range start cold again: their chains are now short. */
  forget(keys: readonly Buffer[]): void {
    for (const k of keys) this.heat.delete(k.toString('latin1'));
  }

  /** Age every key's heat by HEAT_DECAY, dropping keys that fall below one record. */
  decay(): void {
    for (const [k, h] of this.heat) {
      const next = h * HEAT_DECAY;
      if (next < 1) this.heat.delete(k);
      else this.heat.set(k, next);
    }
  }
}

/**
 * The policy: cut the sorted keyspace `keys` into runs of `rangePages` keys, score each run by its
 * keys' heat, and return the runs scoring at least HEAT_MIN_SAVING_PER_PAGE per page, best score
 * per page first (the caller writes them while its byte budget lasts). A run's range goes from its
 * first key to the next run's first key (or just past its last), so it holds exactly its keys, as
 * an image must.
 */
export function chooseHotRanges(keys: readonly Buffer[], heat: ReadonlyMap<string, number>, rangePages = HOT_RANGE_PAGES): HotRange[] {
  if (keys.length === 0 || heat.size === 0) return [];
  const scores = new Map<number, number>();
  for (const [id, h] of heat) {
    const k = Buffer.from(id, 'latin1');
    const pos = lowerBound(keys, k);
    if (pos >= keys.length || compareBytes(keys[pos], 0, k, 0, KEY_SIZE) !== 0) continue; // not a key of this timeline
    const run = Math.floor(pos / rangePages);
    scores.set(run, (scores.get(run) ?? 0) + h);
  }
  return [...scores]
    .map(([run, score]) => ({ run, score, pages: Math.min(rangePages, keys.length - run * rangePages) }))
    .filter((c) => c.score >= HEAT_MIN_SAVING_PER_PAGE * c.pages)
    .sort((a, b) => b.score / b.pages - a.score / a.pages || a.run - b.run)
    .map((c) => {
      const first = c.run * rangePages;
      const runKeys = keys.slice(first, first + c.pages);
      const keyEnd = first + c.pages < keys.length ? keys[first + c.pages] : keySuccessor(runKeys[runKeys.length - 1]);
      return { keyStart: runKeys[0], keyEnd, keys: runKeys, score: c.score };
    });
}

function lowerBound(keys: readonly Buffer[], k: Buffer): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(keys[mid], 0, k, 0, KEY_SIZE) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** What the timeline hands the heat pass besides the compaction host. */
export interface HeatPassOptions {
  heat: ReadHeat;
  /** heatImageBudget: hot-image bytes allowed per flushed byte. */
  ratio: number;
  /** Bytes flushed by this timeline so far (the budget grows with it). */
  flushedTotal: number;
  /** Most credit kept for later: a long quiet spell does not buy a burst of images. */
  creditCapBytes: number;
}

/**
 * The heat pass of a compaction: earn budget, image the chosen hot ranges at diskConsistentLsn,
 * best first, while the credit is positive (skipping a range an image at or above that LSN already
 * covers, or with no delta above its newest image: its heat came from records still in memory),
 * charge what each image really cost, then decay. A page's compressed size is unknown until it is
 * written, so the last image may overdraw the credit; the debt is repaid from later flushes, so
 * over time hot-image bytes stay within ratio × flushed bytes plus one range. Runs after the
 * partition images, so a partition just imaged is skipped here.
 */
export async function createHotImages(host: CompactionHost, o: HeatPassOptions, report: CompactionReport): Promise<void> {
  o.heat.earn(o.flushedTotal, o.ratio, o.creditCapBytes);
  const lsn = host.diskConsistentLsn;
  if (lsn >= host.imageFloorLsn && o.heat.tracked.size > 0) {
    const layers = host.layers();
    for (const r of chooseHotRanges(host.allKeys(), o.heat.tracked)) {
      if (o.heat.credit <= 0) break;
      const start = keyToHex(r.keyStart);
      const end = keyToHex(r.keyEnd);
      const newestImage = layers
        .filter((l) => l.kind === 'image' && l.keyStart <= start && end <= l.keyEnd)
        .reduce<Lsn>((m, l) => (l.lsnStart > m ? l.lsnStart : m), -1n);
      if (lsn <= newestImage) continue;
      if (!layers.some((l) => l.kind === 'delta' && l.lsnEnd > newestImage + 1n && l.keyStart < end && start < l.keyEnd)) continue;
      const info = await host.writeImage(lsn, r, r.keys);
      o.heat.credit -= info.sizeBytes;
      o.heat.forget(r.keys);
      report.imageLayersCreated.push(info);
      report.hotImageLayersCreated.push(info.fileName);
      report.bytesWritten += info.sizeBytes;
    }
  }
  o.heat.decay();
}
