/**
 * Read heat for heat-driven image creation (issue 11, step 7; docs/ARCHITECTURE.md, "Heat-driven
 * images"). Neon images a partition once enough delta layers stack over it, whatever its reads;
 * here the read path also remembers, per key, the records it had to apply (reads × chain length,
 * decayed), and each compaction pass images the hottest small key ranges whose expected saving
 * justifies the bytes, under a byte budget that is a fraction of the bytes the timeline wrote
 * otherwise (flushes, compaction, partition images) since the last pass.
 *
 * Hot images cover the hot keys themselves and their close neighbours (at most HOT_RANGE_PAGES
 * keys), not a whole partition: a partition is compactionTargetSize of pages (16384 by default),
 * so imaging one for a handful of hot keys would write 128 MiB to save a few reads, and a fixed
 * grid of key runs would pay a whole run for each scattered hot key. They are ordinary image
 * layers (docs/FORMAT.md): reads, GC and remote storage treat them like any other.
 */
import { KEY_SIZE, keyToHex } from '../key';
import { yieldToEventLoop } from '../core/entry_batch';
import { type CompactionHost, type CompactionReport, keySuccessor, newestCoveringImageLsn } from './compaction';
import { KeySteps, type RefillableKeys } from './key_stream';

/** Reads that applied fewer records are not tracked: an image would save them next to nothing. */
export const HEAT_MIN_APPLIED = 3;
/** Most keys one hot image spans, first to last (≤ 256 KiB of pages before compression). */
export const HOT_RANGE_PAGES = 32;
/** Other keys allowed between two heated ones in one hot image (an image holds every key of its range). */
export const HOT_RANGE_MAX_GAP = 4;
/** What a layer file costs beyond its pages (summary and B-tree blocks), in pages, for the policy. */
export const HOT_IMAGE_OVERHEAD_PAGES = 2;
/** A range qualifies when its decayed records-applied sum is at least this per page it costs. */
export const HEAT_MIN_SAVING_PER_PAGE = 8;
/** Factor applied to every key's heat at each pass: a read counts half as much one pass later. */
export const HEAT_DECAY = 0.5;
/** Keys tracked at most (18-byte key + a number each); past it new keys wait for the next decay. */
export const HEAT_MAX_TRACKED_KEYS = 65_536;
/** Default bytes of hot images per byte the timeline otherwise writes (option heatImageBudget). */
export const DEFAULT_HEAT_IMAGE_BUDGET = 0.2;

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
  /** Bytes of hot images the budget allows now (grows with bytes written, spent by images; may go negative). */
  credit = 0;
  private writtenSeen = 0;

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
   * Add `ratio` of the bytes written since the last call (`writtenTotal` is the running total of
   * flushes, compaction and partition images; a stats reset that lowers it counts from zero) to
   * the credit, capped at `capBytes`.
   */
  earn(writtenTotal: number, ratio: number, capBytes: number): void {
    const fresh = writtenTotal >= this.writtenSeen ? writtenTotal - this.writtenSeen : writtenTotal;
    this.writtenSeen = writtenTotal;
    this.credit = Math.min(capBytes, this.credit + fresh * ratio);
  }

  /** Spend on a hot image of `bytes`, which also stays out of the next earn's basis. */
  spend(bytes: number): void {
    this.credit -= bytes;
    this.writtenSeen += bytes;
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
 * The policy: place the heated keys in the sorted keyspace `keys`, group keys that lie close
 * together (at most HOT_RANGE_MAX_GAP other keys between neighbours, at most HOT_RANGE_PAGES keys
 * from first to last) when the group saves more per page written than its parts, and return the
 * groups whose heat reaches HEAT_MIN_SAVING_PER_PAGE for every page the image would write plus
 * HOT_IMAGE_OVERHEAD_PAGES for its file's fixed blocks, best heat per written page first (the caller writes them while its byte budget lasts). A group's range is
 * [its first key, just past its last key), so it holds exactly the keys between, as an image must.
 */
export function chooseHotRanges(keys: () => Iterable<Buffer>, heat: ReadonlyMap<string, number>): HotRange[] {
  const chooser = new HotRangeChooser(heat);
  for (const k of keys()) if (!chooser.push(k)) break;
  return chooser.finish();
}

/**
 * chooseHotRanges over the timeline's key stream in steps (KeySteps: the event loop runs between
 * them, and a background stream's layer keys are listed off it), for the compaction's heat pass.
 */
export async function chooseHotRangesInSteps(keys: Iterator<Buffer> | RefillableKeys, heat: ReadonlyMap<string, number>, pause: () => Promise<void>): Promise<HotRange[]> {
  if (heat.size === 0) return [];
  const chooser = new HotRangeChooser(heat);
  const steps = new KeySteps(keys, pause);
  await steps.start();
  for (let r = keys.next(); r.done !== true; r = keys.next()) {
    if (!chooser.push(r.value)) break;
    const endOfStep = steps.pulled();
    if (endOfStep !== null) await endOfStep;
  }
  return chooser.finish();
}

/** A group of heated keys at positions [first, last] of the key stream, and its summed heat. */
interface Group {
  first: number;
  last: number;
  score: number;
}

/** Pages a group's image writes, plus its file's fixed blocks. */
function cost(g: Group): number {
  return g.last - g.first + 1 + HOT_IMAGE_OVERHEAD_PAGES;
}

function density(g: Group): number {
  return g.score / cost(g);
}

/**
 * The policy in one pass over the ascending keys: the open group keeps its keys from its first on
 * (at most HOT_RANGE_PAGES + HOT_RANGE_MAX_GAP of them) while a later heated key could still join
 * it; a group that can grow no more is kept, with its keys, if its heat reaches the minimum. A
 * heated id that is no longer a key of the timeline is never met, so it is dropped. Ids are
 * latin1, so they sort as the keys do.
 */
class HotRangeChooser {
  private readonly ids: string[];
  private nextId = 0;
  private pos = 0;
  private open: Group | null = null;
  private openKeys: Buffer[] = [];
  private readonly kept: Array<{ g: Group; keys: Buffer[] }> = [];

  constructor(private readonly heat: ReadonlyMap<string, number>) {
    this.ids = [...heat.keys()].sort();
  }

  /** The next key; false once no later key can change the answer. */
  push(k: Buffer): boolean {
    const pos = this.pos++;
    const h = this.heatOf(k);
    const g = this.open;
    if (g !== null && !this.canReach(g, pos)) this.close();
    if (h === null) {
      if (this.open !== null) this.openKeys.push(Buffer.from(k));
      return this.open !== null || this.nextId < this.ids.length;
    }
    const alone: Group = { first: pos, last: pos, score: h };
    if (this.open !== null) {
      const joint: Group = { first: this.open.first, last: pos, score: this.open.score + h };
      // Join only when the joint image saves at least as much per page as the better part alone:
      // a lukewarm neighbour must not dilute a hot key into a bigger image the budget skips.
      if (density(joint) >= Math.max(density(this.open), density(alone))) {
        this.open = joint;
        this.openKeys.push(Buffer.from(k));
        return true;
      }
      this.close();
    }
    this.open = alone;
    this.openKeys = [Buffer.from(k)];
    return true;
  }

  /** The groups chosen, best heat per written page first. */
  finish(): HotRange[] {
    this.close();
    return this.kept
      .sort((a, b) => density(b.g) - density(a.g) || a.g.first - b.g.first)
      .map(({ g, keys }) => ({ keyStart: keys[0], keyEnd: keySuccessor(keys[keys.length - 1]), keys, score: g.score }));
  }

  /** The key's heat when it is a heated one (ids are met in order), else null. */
  private heatOf(k: Buffer): number | null {
    if (this.nextId >= this.ids.length) return null;
    const id = k.toString('latin1', 0, KEY_SIZE);
    while (this.nextId < this.ids.length && this.ids[this.nextId] < id) this.nextId++;
    if (this.nextId >= this.ids.length || this.ids[this.nextId] !== id) return null;
    this.nextId++;
    return this.heat.get(id) as number;
  }

  /** A heated key at `pos` (or later) could still join `g`. */
  private canReach(g: Group, pos: number): boolean {
    return pos - g.last <= HOT_RANGE_MAX_GAP + 1 && pos - g.first < HOT_RANGE_PAGES;
  }

  private close(): void {
    const g = this.open;
    if (g === null) return;
    this.open = null;
    if (g.score >= HEAT_MIN_SAVING_PER_PAGE * cost(g)) this.kept.push({ g, keys: this.openKeys.slice(0, g.last - g.first + 1) });
    this.openKeys = [];
  }
}

/** What the timeline hands the heat pass besides the compaction host. */
export interface HeatPassOptions {
  heat: ReadHeat;
  /** heatImageBudget: hot-image bytes allowed per byte otherwise written. */
  ratio: number;
  /** Bytes written by this timeline so far (flushes, compaction, images; hot images are spent, not earned on). */
  writtenTotal: number;
  /** Most credit kept for later: a long quiet spell does not buy a burst of images. */
  creditCapBytes: number;
}

/**
 * The heat pass of a compaction: earn budget, image the chosen hot ranges at diskConsistentLsn,
 * best first, while the credit is positive (skipping a range images at or above that LSN already
 * cover together, or with no delta above the LSN at which images cover it, newestCoveringImageLsn:
 * its heat came from records still in memory), charge what each image really cost, then decay. A
 * page's compressed size is unknown until it is written, so the last image may overdraw the
 * credit; the debt is repaid from later writes, so over time hot-image bytes stay within ratio ×
 * the other bytes written plus one range. Runs after the partition images, so a partition just
 * imaged is skipped here.
 */
export async function createHotImages(host: CompactionHost, o: HeatPassOptions, report: CompactionReport): Promise<void> {
  o.heat.earn(o.writtenTotal, o.ratio, o.creditCapBytes);
  const lsn = host.diskConsistentLsn;
  // Listing the keys costs a walk of every layer's index: only when heat and credit are there.
  if (lsn >= host.imageFloorLsn && o.heat.tracked.size > 0 && o.heat.credit > 0) {
    const layers = host.layers();
    for (const r of await chooseHotRangesInSteps(host.backgroundKeys(), o.heat.tracked, yieldToEventLoop)) {
      if (o.heat.credit <= 0) break;
      const start = keyToHex(r.keyStart);
      const end = keyToHex(r.keyEnd);
      const newestImage = newestCoveringImageLsn(layers, start, end);
      if (lsn <= newestImage) continue;
      if (!layers.some((l) => l.kind === 'delta' && l.lsnEnd > newestImage + 1n && l.keyStart < end && start < l.keyEnd)) continue;
      const info = await host.writeImage(lsn, r, r.keys);
      o.heat.spend(info.sizeBytes);
      o.heat.forget(r.keys);
      report.imageLayersCreated.push(info);
      report.hotImageLayersCreated.push(info.fileName);
      report.bytesWritten += info.sizeBytes;
    }
  }
  o.heat.decay();
}
