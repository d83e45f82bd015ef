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

/** A source's next key, and the source: one entry of mergeKeys' heap. */
interface Head {
  key: Buffer;
  source: Iterator<Buffer>;
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
    if (key !== null) {
      heap.push({ key, source });
      siftUp(heap, heap.length - 1);
    }
  }
  let last: Buffer | null = null;
  while (heap.length > 0) {
    const top = heap[0];
    const key = top.key;
    const next = nextOf(top.source);
    if (next !== null) {
      top.key = next;
      siftDown(heap, 0);
    } else {
      const tail = heap.pop() as Head; // the top itself when it was the last source
      if (heap.length > 0) {
        heap[0] = tail;
        siftDown(heap, 0);
      }
    }
    if (last !== null && key.equals(last)) continue;
    last = key;
    yield key;
  }
}

function siftUp(heap: Head[], at: number): void {
  let i = at;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (Buffer.compare(heap[i].key, heap[parent].key) >= 0) return;
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
    const child = right < heap.length && Buffer.compare(heap[right].key, heap[left].key) < 0 ? right : left;
    if (Buffer.compare(heap[child].key, heap[i].key) >= 0) return;
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
 * Keys keyPartitions pulls from its merged stream between two pauses: pulling one partition's
 * keys in one go (16,384 at the default target size) held the event loop 12–16 ms in W7's storm;
 * 1024 keys are about 1 ms.
 */
export const PARTITION_KEYS_PER_STEP = 1024;

/**
 * Cut the ascending key stream into ranges of about targetBytes / 8192 keys that together tile
 * [KEY_MIN, KEY_MAX), each with its keys (an image says a key of its range it lacks does not
 * exist): a range ends where the next one's first key starts. No keys: one range, empty.
 * Awaits `pause` every PARTITION_KEYS_PER_STEP keys, so the caller can let the event loop run.
 */
export async function* keyPartitions(keys: Iterator<Buffer>, targetBytes: number, pause: () => Promise<void>): AsyncGenerator<KeyPartition> {
  const perPartition = Math.max(1, Math.floor(targetBytes / PAGE_SIZE));
  let next = nextOf(keys);
  let keyStart = KEY_MIN;
  let pulled = 0;
  do {
    const chunk: Buffer[] = [];
    while (next !== null && chunk.length < perPartition) {
      chunk.push(next);
      next = nextOf(keys);
      if (++pulled % PARTITION_KEYS_PER_STEP === 0) await pause();
    }
    const keyEnd = next ?? KEY_MAX;
    yield { keyStart, keyEnd, keys: chunk };
    keyStart = keyEnd;
  } while (next !== null);
}
