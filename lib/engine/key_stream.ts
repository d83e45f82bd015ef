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

/** A key range [keyStart, keyEnd) of the keyspace and the keys in it, ascending. */
export interface KeyPartition {
  keyStart: Buffer;
  keyEnd: Buffer;
  keys: Buffer[];
}

/** Keys asked of a layer file per call: 18 KB of keys held per layer while streaming. */
export const LAYER_KEYS_PAGE = 1024;

/** A layer file's keys in [start, end): at most `max` of them from `from` on, packed. */
export type LayerKeyPager = (from: Buffer, max: number) => Buffer;

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

/** One layer file's keys, a page at a time. */
export function* pagedLayerKeys(page: LayerKeyPager, start: Buffer = KEY_MIN, pageKeys = LAYER_KEYS_PAGE): Generator<Buffer> {
  let from: Buffer | null = start;
  while (from !== null) {
    const packed = page(from, pageKeys);
    const n = packed.length / KEY_SIZE;
    for (let i = 0; i < n; i++) yield packed.subarray(i * KEY_SIZE, (i + 1) * KEY_SIZE);
    if (n < pageKeys) return;
    from = keySuccessor(packed.subarray((n - 1) * KEY_SIZE));
  }
}

/**
 * A source's next key, and the source: one entry of mergeKeys' heap. The key's 18 bytes are also
 * held as three 48-bit numbers (bytes 0–5, 6–11, 12–17), which order as the bytes do: the merge
 * compares heads a few times per key pulled, and Buffer.compare (a call into C++ each time) made
 * it 25–50 µs a key over W7's hundred-layer timelines.
 */
interface Head {
  key: Buffer;
  source: Iterator<Buffer>;
  hi: number;
  mid: number;
  lo: number;
}

/** 2^32 and 2^40, to place a key's leading bytes above a u32 in a 48-bit number (exact in a double). */
const TWO_32 = 2 ** 32;
const TWO_40 = 2 ** 40;

/** Six bytes from `at` as one number, big-endian. */
function word48(k: Buffer, at: number): number {
  const low32 = ((k[at + 2] << 24) | (k[at + 3] << 16) | (k[at + 4] << 8) | k[at + 5]) >>> 0;
  return k[at] * TWO_40 + k[at + 1] * TWO_32 + low32;
}

function setKey(h: Head, key: Buffer): void {
  h.key = key;
  h.hi = word48(key, 0);
  h.mid = word48(key, 6);
  h.lo = word48(key, 12);
}

/** a < b in key byte order. */
function less(a: Head, b: Head): boolean {
  return a.hi !== b.hi ? a.hi < b.hi : a.mid !== b.mid ? a.mid < b.mid : a.lo < b.lo;
}

function sameKey(a: Head, hi: number, mid: number, lo: number): boolean {
  return a.hi === hi && a.mid === mid && a.lo === lo;
}

/**
 * Sorted key sources merged into one ascending stream, each key once. A binary min-heap of the
 * sources' next keys: a timeline chain may stream a hundred layers, and scanning every head for
 * each key made the merge the largest cost of image creation.
 */
export function* mergeKeys(sources: ReadonlyArray<Iterator<Buffer>>): Generator<Buffer> {
  const heap: Head[] = [];
  for (const source of sources) {
    const key = nextOf(source);
    if (key === null) continue;
    if (key.length !== KEY_SIZE) throw new RangeError(`mergeKeys: a source gave a ${key.length}-byte key`);
    const h: Head = { key, source, hi: 0, mid: 0, lo: 0 };
    setKey(h, key);
    heap.push(h);
    siftUp(heap, heap.length - 1);
  }
  let lastHi = -1;
  let lastMid = -1;
  let lastLo = -1;
  while (heap.length > 0) {
    const top = heap[0];
    const key = top.key;
    const repeat = sameKey(top, lastHi, lastMid, lastLo);
    lastHi = top.hi;
    lastMid = top.mid;
    lastLo = top.lo;
    const next = nextOf(top.source);
    if (next !== null) {
      if (next.length !== KEY_SIZE) throw new RangeError(`mergeKeys: a source gave a ${next.length}-byte key`);
      setKey(top, next);
      siftDown(heap, 0);
    } else {
      const tail = heap.pop() as Head; // the top itself when it was the last source
      if (heap.length > 0) {
        heap[0] = tail;
        siftDown(heap, 0);
      }
    }
    if (!repeat) yield key;
  }
}

function siftUp(heap: Head[], at: number): void {
  let i = at;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!less(heap[i], heap[parent])) return;
    [heap[i], heap[parent]] = [heap[parent], heap[i]];
    i = parent;
  }
}

function siftDown(heap: Head[], at: number): void {
  let i = at;
  for (;;) {
    const left = 2 * i + 1;
    if (left >= heap.length) return;
    const right = left + 1;
    const child = right < heap.length && less(heap[right], heap[left]) ? right : left;
    if (!less(heap[child], heap[i])) return;
    [heap[i], heap[child]] = [heap[child], heap[i]];
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
export function* resumableKeys(open: (from: Buffer) => ReadonlyArray<Iterator<Buffer>>, version: () => number): Generator<Buffer> {
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
 * Cut the ascending key stream into ranges of about targetBytes / 8192 keys that together tile
 * [KEY_MIN, KEY_MAX), each with its keys (an image says a key of its range it lacks does not
 * exist): a range ends where the next one's first key starts. No keys: one range, empty.
 * Awaits `pause` after PARTITION_KEYS_PER_STEP keys or PARTITION_STEP_MS of pulling (by `now`),
 * whichever comes first, so the caller can let the event loop run.
 */
export async function* keyPartitions(
  keys: Iterator<Buffer>,
  targetBytes: number,
  pause: () => Promise<void>,
  now: () => number = () => performance.now(),
): AsyncGenerator<KeyPartition> {
  const perPartition = Math.max(1, Math.floor(targetBytes / PAGE_SIZE));
  let stepStart = now();
  let next = nextOf(keys);
  let keyStart = KEY_MIN;
  let pulled = 0;
  do {
    const chunk: Buffer[] = [];
    while (next !== null && chunk.length < perPartition) {
      chunk.push(next);
      next = nextOf(keys);
      ++pulled;
      if (pulled === PARTITION_KEYS_PER_STEP || (pulled % STEP_CLOCK_KEYS === 0 && now() - stepStart >= PARTITION_STEP_MS)) {
        await pause();
        pulled = 0;
        stepStart = now();
      }
    }
    const keyEnd = next ?? KEY_MAX;
    yield { keyStart, keyEnd, keys: chunk };
    keyStart = keyEnd;
  } while (next !== null);
}
