/**
 * The keys of a timeline, streamed in ascending byte order without holding them all: each layer
 * file is paged through (core.layerKeys with a limit, from the key after the last one), the
 * in-memory layers' keys (bounded by checkpointDistance) are taken sorted at the start, and the
 * sources are merged with duplicates dropped. Image creation cuts the stream into partitions
 * (keyPartitions), so its memory is one partition's keys plus one page of keys per layer, not the
 * timeline's key count (it used to build a Map and a sorted array of every key: ≈ 500 bytes a key).
 */
import { KEY_MAX, KEY_MIN, KEY_SIZE } from '../key';
import { PAGE_SIZE } from '../record';
import { KeyList } from './key_list';

/** A key range [keyStart, keyEnd) of the keyspace and the keys in it, ascending. */
export interface KeyPartition {
  keyStart: Buffer;
  keyEnd: Buffer;
  keys: KeyList;
}

/** Keys asked of a layer file per call: 18 KB of keys held per layer while streaming. */
export const LAYER_KEYS_PAGE = 1024;

/** A layer file's keys in [from, end): at most `max` of them, packed. */
export type LayerKeyPager = (from: Buffer, end: Buffer, max: number) => Buffer;

/** A key range [start, end) a layer's keys are listed over. */
export interface KeyInterval {
  start: Buffer;
  end: Buffer;
}

/** The one interval [start, KEY_MAX): a layer's keys from `start` on. */
export function keysFrom(start: Buffer): KeyInterval[] {
  return [{ start, end: KEY_MAX }];
}

/** The key right after `key` in byte order, or null after the largest one. */
export function keySuccessor(key: Buffer): Buffer | null {
  const next = Buffer.from(key);
  for (let i = KEY_SIZE - 1; i >= 0; i--) {
    if (next[i] !== 0xff) {
      next[i]++;
      return next;
    }
    next[i] = 0;
  }
  return null;
}

/**
 * Keys asked of a layer file in its first call. A merge takes every source's first key in one
 * step, and at 1024 keys a call that step held the event loop ≈ 25 ms over W7's hundred-odd
 * layers; pages then double up to the full size.
 */
export const LAYER_KEYS_FIRST_PAGE = 32;

/**
 * A sorted run of keys read in place: after advance() returns true the current key is the 18 bytes
 * of `buf` at `at`. The merge reads a layer's keys where its page holds them and makes a Buffer
 * only for each key it gives out: a subarray per key read made 2 M short-lived Buffers per image
 * creation over W7's hundred-odd layers, a fifth of the storm's late timers then being GC.
 */
export interface KeyCursor {
  buf: Buffer;
  at: number;
  advance(): boolean;
}

/**
 * The pages of one layer file's keys over ascending, disjoint intervals: where the next page starts,
 * and which interval it is in. A page shorter than asked ends its interval.
 */
class IntervalPages {
  private i = 0;
  /** Where the next page starts; null once the last interval is listed. */
  from: Buffer | null;

  constructor(private readonly intervals: readonly KeyInterval[]) {
    this.from = intervals.length > 0 ? intervals[0].start : null;
  }

  get end(): Buffer {
    return this.intervals[this.i].end;
  }

  /** Moves past a page of `got` keys (packed in `page`) of the `asked`. */
  took(page: Buffer, got: number, asked: number): void {
    if (got < asked) {
      this.i++;
      this.from = this.i < this.intervals.length ? this.intervals[this.i].start : null;
    } else {
      this.from = keySuccessor(page.subarray((got - 1) * KEY_SIZE));
      if (this.from === null) this.i = this.intervals.length;
    }
  }
}

function wholeKeys(packed: Buffer): number {
  if (packed.length % KEY_SIZE !== 0) throw new RangeError(`layer key page of ${packed.length} bytes is not whole ${KEY_SIZE}-byte keys`);
  return packed.length / KEY_SIZE;
}

/** One layer file's keys, a page at a time: LAYER_KEYS_FIRST_PAGE first, doubling up to pageKeys. */
export class LayerKeyCursor implements KeyCursor, Iterable<Buffer> {
  buf: Buffer = Buffer.alloc(0);
  at = -KEY_SIZE;
  private readonly pages: IntervalPages;
  private ask: number;

  constructor(private readonly page: LayerKeyPager, intervals: readonly KeyInterval[] = keysFrom(KEY_MIN), private readonly pageKeys = LAYER_KEYS_PAGE) {
    this.pages = new IntervalPages(intervals);
    this.ask = Math.min(LAYER_KEYS_FIRST_PAGE, pageKeys);
  }

  advance(): boolean {
    this.at += KEY_SIZE;
    if (this.at < this.buf.length) return true;
    for (;;) {
      const from = this.pages.from;
      if (from === null) return false;
      const packed = this.page(from, this.pages.end, this.ask);
      const n = wholeKeys(packed);
      this.pages.took(packed, n, this.ask);
      this.ask = Math.min(2 * this.ask, this.pageKeys);
      if (n > 0) {
        this.buf = packed;
        this.at = 0;
        return true;
      }
    }
  }

  *[Symbol.iterator](): Iterator<Buffer> {
    while (this.advance()) yield this.buf.subarray(this.at, this.at + KEY_SIZE);
  }
}

/** A layer file's keys in [from, end), at most `max`, listed off the calling thread (Core.layerKeysInBackground). */
export type BackgroundLayerKeyPager = (from: Buffer, end: Buffer, max: number) => Promise<Buffer>;

/**
 * One layer file's keys for a background task, fetched ahead off the event loop: fill(n) fetches
 * pages of `pageKeys` keys until n are buffered (or the layer's last one is), and advance() walks
 * only what was fetched, so the merge over such cursors stays synchronous. BackgroundKeyStream
 * fills every cursor before each step of pulls; a cursor that runs dry mid-step is a bug in that
 * bookkeeping, and says so rather than end the stream early.
 */
export class PrefetchedLayerKeys implements KeyCursor {
  buf: Buffer = Buffer.alloc(0);
  at = -KEY_SIZE;
  private readonly ahead: Buffer[] = [];
  private aheadKeys = 0;
  private readonly pages: IntervalPages;

  constructor(private readonly fetch: BackgroundLayerKeyPager, intervals: readonly KeyInterval[] = keysFrom(KEY_MIN), private readonly pageKeys = LAYER_KEYS_PAGE) {
    this.pages = new IntervalPages(intervals);
  }

  advance(): boolean {
    this.at += KEY_SIZE;
    if (this.at < this.buf.length) return true;
    const page = this.ahead.shift();
    if (page === undefined) {
      if (this.pages.from === null) return false;
      throw new Error('a layer key cursor ran past the keys fetched ahead of it: fill it before each step of pulls');
    }
    this.aheadKeys -= page.length / KEY_SIZE;
    this.buf = page;
    this.at = 0;
    return true;
  }

  /** Keys fetched and not yet reached by advance(). */
  get buffered(): number {
    return Math.max(0, (this.buf.length - this.at - KEY_SIZE) / KEY_SIZE) + this.aheadKeys;
  }

  /** Fetch pages until `n` keys are buffered or the layer has no more; stops early once `stale()`. */
  async fill(n: number, stale: () => boolean): Promise<void> {
    for (let from = this.pages.from; from !== null && this.buffered < n && !stale(); from = this.pages.from) {
      const packed = await this.fetch(from, this.pages.end, this.pageKeys);
      const got = wholeKeys(packed);
      this.pages.took(packed, got, this.pageKeys);
      if (got === 0) continue;
      this.ahead.push(packed);
      this.aheadKeys += got;
    }
  }
}

/** One layer file's keys over `intervals` (LayerKeyCursor). */
export function pagedLayerKeys(page: LayerKeyPager, intervals: readonly KeyInterval[] = keysFrom(KEY_MIN), pageKeys = LAYER_KEYS_PAGE): LayerKeyCursor {
  return new LayerKeyCursor(page, intervals, pageKeys);
}

/** Keys given one Buffer each (the in-memory layers', tests'), as a cursor. */
class IteratorKeyCursor implements KeyCursor {
  buf: Buffer = Buffer.alloc(0);
  at = 0;

  constructor(private readonly it: Iterator<Buffer>) {}

  advance(): boolean {
    const r = this.it.next();
    if (r.done === true) return false;
    if (r.value.length !== KEY_SIZE) throw new RangeError(`a key source gave a ${r.value.length}-byte key`);
    this.buf = r.value;
    return true;
  }
}

/** A source of the merge: a cursor, or keys one Buffer each. */
export type KeySource = KeyCursor | Iterator<Buffer>;

function asCursor(s: KeySource): KeyCursor {
  return 'advance' in s ? s : new IteratorKeyCursor(s);
}

/**
 * A source's cursor and its slot in the merge's word table: one entry of mergeKeys' heap. The
 * current key's 18 bytes are held as three 48-bit numbers (bytes 0–5, 6–11, 12–17), which order as
 * the bytes do: the merge compares heads a few times per key read, and Buffer.compare (a call into
 * C++ each time) made it 25–50 µs a key over W7's hundred-layer timelines. The numbers live in a
 * Float64Array, not in object fields or locals, where each would be a boxed heap number: that was
 * 400 MB of garbage in a W7 storm round.
 */
interface Head {
  cursor: KeyCursor;
  /** Index of the key's first word in the merge's Float64Array. */
  w: number;
}

const WORDS_PER_KEY = 3;
/** 2^32 and 2^40, to place a key's leading bytes above a u32 in a 48-bit number (exact in a double). */
const TWO_32 = 2 ** 32;
const TWO_40 = 2 ** 40;

/** Six bytes from `at` as one number, big-endian. */
function word48(k: Buffer, at: number): number {
  const low32 = ((k[at + 2] << 24) | (k[at + 3] << 16) | (k[at + 4] << 8) | k[at + 5]) >>> 0;
  return k[at] * TWO_40 + k[at + 1] * TWO_32 + low32;
}

/** Load the cursor's current key into its words. */
function load(words: Float64Array, h: Head): void {
  const { buf, at } = h.cursor;
  words[h.w] = word48(buf, at);
  words[h.w + 1] = word48(buf, at + 6);
  words[h.w + 2] = word48(buf, at + 12);
}

/** Key at word index a < key at b in byte order. */
function less(words: Float64Array, a: number, b: number): boolean {
  if (words[a] !== words[b]) return words[a] < words[b];
  if (words[a + 1] !== words[b + 1]) return words[a + 1] < words[b + 1];
  return words[a + 2] < words[b + 2];
}

function equal(words: Float64Array, a: number, b: number): boolean {
  return words[a] === words[b] && words[a + 1] === words[b + 1] && words[a + 2] === words[b + 2];
}

/**
 * Sorted key sources merged into one ascending stream, each key once. A binary min-heap of the
 * sources' current keys: a timeline chain may stream a hundred layers, and scanning every head for
 * each key made the merge the largest cost of image creation.
 */
export function* mergeKeys(sources: ReadonlyArray<KeySource>): Generator<Buffer> {
  // One slot per source, then the last key given (all −1 at first: no key's words are negative).
  const words = new Float64Array((sources.length + 1) * WORDS_PER_KEY);
  const LAST = sources.length * WORDS_PER_KEY;
  words.fill(-1, LAST);
  const heap: Head[] = [];
  for (const source of sources) {
    const cursor = asCursor(source);
    if (!cursor.advance()) continue;
    const h: Head = { cursor, w: heap.length * WORDS_PER_KEY };
    load(words, h);
    heap.push(h);
    siftUp(words, heap, heap.length - 1);
  }
  while (heap.length > 0) {
    const top = heap[0];
    const repeat = equal(words, top.w, LAST);
    // The Buffer is made before the cursor moves on (a new page replaces buf; the old one stays valid).
    const key = repeat ? null : top.cursor.buf.subarray(top.cursor.at, top.cursor.at + KEY_SIZE);
    words.copyWithin(LAST, top.w, top.w + WORDS_PER_KEY);
    if (top.cursor.advance()) {
      load(words, top);
      siftDown(words, heap, 0);
    } else {
      const tail = heap.pop() as Head; // the top itself when it was the last source
      if (heap.length > 0) {
        heap[0] = tail;
        siftDown(words, heap, 0);
      }
    }
    if (key !== null) yield key;
  }
}

/**
 * Exchange two heap entries. A destructuring swap allocated an array per call in the generator:
 * ≈ 300 MB a W7 storm round.
 */
function swap(heap: Head[], a: number, b: number): void {
  const t = heap[a];
  heap[a] = heap[b];
  heap[b] = t;
}

function siftUp(words: Float64Array, heap: Head[], at: number): void {
  let i = at;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!less(words, heap[i].w, heap[parent].w)) return;
    swap(heap, i, parent);
    i = parent;
  }
}

function siftDown(words: Float64Array, heap: Head[], at: number): void {
  let i = at;
  for (;;) {
    const left = 2 * i + 1;
    if (left >= heap.length) return;
    const right = left + 1;
    const child = right < heap.length && less(words, heap[right].w, heap[left].w) ? right : left;
    if (!less(words, heap[child].w, heap[i].w)) return;
    swap(heap, i, child);
    i = child;
  }
}

/**
 * A merged key stream that survives layer swaps. Image creation yields between batches, and
 * meanwhile a compaction (this timeline's flush, or an ancestor's compaction, which no queue
 * orders against it) may replace layer files and close the handles a pager reads. Before each
 * pull the layer sets' version is compared; when it moved, the sources are opened again on the
 * current layers from just after the last key given. No key is lost or repeated: a swap moves
 * keys between layers, it never drops one a reader can see.
 */
export function* resumableKeys(open: (from: Buffer) => ReadonlyArray<KeySource>, version: () => number): Generator<Buffer> {
  let seen = version();
  let lastGiven: Buffer | null = null;
  let merged = mergeKeys(open(KEY_MIN));
  for (;;) {
    if (version() !== seen) {
      seen = version();
      const from = lastGiven === null ? KEY_MIN : keySuccessor(lastGiven);
      if (from === null) return;
      merged = mergeKeys(open(from));
    }
    const r = merged.next();
    if (r.done === true) return;
    lastGiven = r.value;
    yield r.value;
  }
}

/**
 * A key stream whose layer-file sources are PrefetchedLayerKeys: refill(n) fetches every source's
 * keys for the next step off the event loop, then up to n keys are pulled synchronously.
 * Layer swaps are seen at refill() (the only point where this stream awaits): when the layer sets'
 * version moved, the sources are opened again from just after the last key given, as
 * resumableKeys does. Keys pulled after a swap but before the next refill come from pages fetched
 * before it: keys a reader could see then, and a swap moves keys between layers, it drops none.
 */
export class BackgroundKeyStream implements Iterator<Buffer> {
  private seen: number;
  private sources: ReadonlyArray<KeySource>;
  private merged: Generator<Buffer>;
  private lastGiven: Buffer | null = null;
  private ended = false;

  constructor(private readonly open: (from: Buffer) => ReadonlyArray<KeySource>, private readonly version: () => number) {
    this.seen = version();
    this.sources = open(KEY_MIN);
    this.merged = mergeKeys(this.sources);
  }

  /** Make the next `pulls` pulls possible without awaiting. */
  async refill(pulls: number): Promise<void> {
    // A pull may advance each source once more than the keys it gives (the merge's lookahead),
    // and the step's first pull is taken before its count starts.
    const need = pulls + 2;
    const stale = (): boolean => this.version() !== this.seen;
    for (;;) {
      if (stale()) this.reopen();
      if (this.ended) return;
      const fills = this.sources.filter((s): s is PrefetchedLayerKeys => s instanceof PrefetchedLayerKeys).map((c) => c.fill(need, stale));
      await Promise.all(fills);
      if (!stale()) return;
    }
  }

  next(): IteratorResult<Buffer> {
    if (this.ended) return { done: true, value: undefined };
    const r = this.merged.next();
    if (r.done === true) {
      this.ended = true;
      return r;
    }
    this.lastGiven = r.value;
    return r;
  }

  private reopen(): void {
    this.seen = this.version();
    const from = this.lastGiven === null ? KEY_MIN : keySuccessor(this.lastGiven);
    if (from === null) {
      this.ended = true;
      return;
    }
    this.sources = this.open(from);
    this.merged = mergeKeys(this.sources);
  }
}

/** A key stream that must be refilled for each step of pulls (BackgroundKeyStream). */
export interface RefillableKeys extends Iterator<Buffer> {
  refill(pulls: number): Promise<void>;
}

function nextOf(it: Iterator<Buffer>): Buffer | null {
  const r = it.next();
  return r.done === true ? null : r.value;
}

/**
 * The most keys keyPartitions pulls from its merged stream between two pauses: pulling one
 * partition's keys in one go (16,384 at the default target size) held the event loop 12–16 ms in
 * W7's storm.
 */
export const PARTITION_KEYS_PER_STEP = 1024;

/**
 * The most time keyPartitions pulls keys between two pauses, checked every STEP_CLOCK_KEYS keys.
 * A key's cost depends on how many layers hold it (each copy is merged): 1024 keys took about 1 ms
 * over a few layers, and 25–50 ms over the hundred-odd layers of W7's 20,000-page storm.
 */
export const PARTITION_STEP_MS = 1;
export const STEP_CLOCK_KEYS = 32;

/**
 * The steps of a synchronous pull loop over a key stream: after PARTITION_KEYS_PER_STEP pulls or
 * PARTITION_STEP_MS of pulling (by `now`, checked every STEP_CLOCK_KEYS pulls), whichever comes
 * first, the loop awaits `pause` so the caller can let the event loop run; a RefillableKeys stream
 * is refilled at start() and after each pause.
 */
export class KeySteps {
  private readonly refill: (() => Promise<void>) | null;
  private stepStart = 0;
  private pulls = 0;

  constructor(keys: Iterator<Buffer> | RefillableKeys, private readonly pause: () => Promise<void>, private readonly now: () => number = () => performance.now()) {
    this.refill = 'refill' in keys ? (): Promise<void> => keys.refill(PARTITION_KEYS_PER_STEP) : null;
  }

  /** Before the first pull. */
  async start(): Promise<void> {
    if (this.refill !== null) await this.refill();
    this.stepStart = this.now();
  }

  /** Count one pull: a promise to await before the next one when the step is over, else null. */
  pulled(): Promise<void> | null {
    ++this.pulls;
    if (this.pulls === PARTITION_KEYS_PER_STEP || (this.pulls % STEP_CLOCK_KEYS === 0 && this.now() - this.stepStart >= PARTITION_STEP_MS)) return this.nextStep();
    return null;
  }

  private async nextStep(): Promise<void> {
    await this.pause();
    if (this.refill !== null) await this.refill();
    this.pulls = 0;
    this.stepStart = this.now();
  }
}

/**
 * Cut the ascending key stream into ranges of about targetBytes / 8192 keys that together tile
 * [KEY_MIN, KEY_MAX), each with its keys (an image says a key of its range it lacks does not
 * exist): a range ends where the next one's first key starts. No keys: one range, empty.
 * Awaits `pause` after PARTITION_KEYS_PER_STEP keys or PARTITION_STEP_MS of pulling (by `now`),
 * whichever comes first, so the caller can let the event loop run; a RefillableKeys stream is
 * refilled before the first pull and after each pause.
 */
export async function* keyPartitions(
  keys: Iterator<Buffer> | RefillableKeys,
  targetBytes: number,
  pause: () => Promise<void>,
  now: () => number = () => performance.now(),
): AsyncGenerator<KeyPartition> {
  const perPartition = Math.max(1, Math.floor(targetBytes / PAGE_SIZE));
  const steps = new KeySteps(keys, pause, now);
  await steps.start();
  let next = nextOf(keys);
  let keyStart = KEY_MIN;
  do {
    const chunk = new KeyList(Math.min(perPartition, PARTITION_KEYS_PER_STEP));
    while (next !== null && chunk.length < perPartition) {
      chunk.push(next);
      next = nextOf(keys);
      const endOfStep = steps.pulled();
      if (endOfStep !== null) await endOfStep;
    }
    const keyEnd = next ?? KEY_MAX;
    yield { keyStart, keyEnd, keys: chunk };
    keyStart = keyEnd;
  } while (next !== null);
}
