/**
 * A frozen in-memory layer as the core writes it to an L0 delta (LayerWriter.finishArenaAsync):
 * the engine's arena (engine/inmemory_layer.ts) handed over as flat arrays, so the native core can
 * walk it on a libuv thread and the TS core in its twin (ts/delta_arena.ts), with the same entries
 * in the same order.
 *
 * The entries are the layer's records in (key, LSN) order: keys ascending by bytes, each key's
 * chain (newest first, through `prev`) walked back to ascending LSN. A record's blob is stored raw,
 * or compressed when `packedAt` gives its compressed form: the compressors are npm packages (the
 * bytes must be theirs, docs/FORMAT.md "Blobs"), so the engine compresses before the hand-over.
 */
import { BLOB_RAW_LEN_SIZE, CODEC_NONE, COMPRESS_MIN_BYTES, type CodecId } from './format';
import { WRITE_BATCH_BYTES, yieldToEventLoop } from './entry_batch';
import { compressRecord } from './compress';

/**
 * One record's entry in `DeltaArena.entries`, in the platform's byte order: u64 LSN at byte 0, then
 * u32 slab index, u32 offset in the slab, u32 length and i32 the key's previous record's ordinal
 * (NO_PREVIOUS at its oldest). One array of entries, so a chain walk reads one cache line per record.
 */
export const ARENA_ENTRY_BYTES = 24;
export const ARENA_ENTRY_U32S = ARENA_ENTRY_BYTES / 4;
export const ARENA_ENTRY_U64S = ARENA_ENTRY_BYTES / 8;
/** u32 fields of an entry, by index in its six u32 words (words 0–1 are the LSN). */
export const ARENA_SLAB = 2;
export const ARENA_OFFSET = 3;
export const ARENA_LENGTH = 4;
export const ARENA_PREV = 5;
/** `prev` of a key's oldest record. */
export const NO_PREVIOUS = -1;
/** packedAt's length of a record stored raw. */
export const NOT_PACKED = -1;

/**
 * Record bytes packArena compresses, and compressed bytes it gathers, between two yields to the
 * event loop: the bound every other step of a flush keeps (≈ 0.25 ms of lz4 here; at 256 KiB the
 * steps were ≈ 1 ms of lz4, and the gathering of a layer's compressed forms one copy of megabytes
 * into fresh memory, the largest share of W7's late timers).
 */
const PACK_STEP_BYTES = WRITE_BATCH_BYTES;

export interface DeltaArena {
  /** The layer's keys in ascending byte order, KEY_SIZE bytes each. */
  keys: Uint8Array;
  /** Per key, in the same order: its newest record's ordinal. */
  heads: Int32Array;
  /** ARENA_ENTRY_BYTES per record, by ordinal; a key's records have increasing ordinals and LSNs. */
  entries: Uint8Array;
  /** The record bytes the entries point into. */
  slabs: Uint8Array[];
  /**
   * Per ordinal, two numbers: the offset in `packed` of the record's compressed form and its
   * length, or NOT_PACKED where the record is stored raw (the codec was not tried, or did not
   * shrink it by more than the raw-length field).
   */
  packedAt: Int32Array;
  packed: Uint8Array;
}

/**
 * packedAt and packed for records of `entries` under `codec`, compressed as encodeBlob would:
 * records of COMPRESS_MIN_BYTES or more, kept when smaller by more than their raw-length field.
 * Walks the records in arrival order (sequential memory), not in key order, yielding to the event
 * loop every PACK_STEP_BYTES, and gathers the compressed forms the same way. The entries must not
 * change meanwhile (a frozen layer's).
 */
export async function packArena(codec: CodecId, entries: Uint8Array, count: number, slabs: readonly Uint8Array[]): Promise<{ packedAt: Int32Array; packed: Uint8Array }> {
  const packedAt = new Int32Array(count * 2).fill(NOT_PACKED);
  if (codec === CODEC_NONE) return { packedAt, packed: new Uint8Array(0) };
  const parts: Buffer[] = [];
  let total = 0;
  let sinceYield = 0;
  const u32 = new Uint32Array(entries.buffer, entries.byteOffset, count * ARENA_ENTRY_U32S);
  for (let ord = 0; ord < count; ord++) {
    const w = ord * ARENA_ENTRY_U32S;
    const len = u32[w + ARENA_LENGTH];
    if (len < COMPRESS_MIN_BYTES) continue;
    const slab = slabs[u32[w + ARENA_SLAB]];
    const off = u32[w + ARENA_OFFSET];
    const packed = compressRecord(codec, Buffer.from(slab.buffer, slab.byteOffset + off, len));
    sinceYield += len;
    if (sinceYield >= PACK_STEP_BYTES) {
      sinceYield = 0;
      await yieldToEventLoop();
    }
    if (packed.length + BLOB_RAW_LEN_SIZE >= len) continue;
    packedAt[ord * 2] = total;
    packedAt[ord * 2 + 1] = packed.length;
    parts.push(packed);
    total += packed.length;
  }
  return { packedAt, packed: await gather(parts, total) };
}

/** `parts` back to back in one buffer of `total` bytes, yielding every PACK_STEP_BYTES copied. */
async function gather(parts: readonly Buffer[], total: number): Promise<Uint8Array> {
  const out = Buffer.allocUnsafeSlow(total);
  let at = 0;
  let sinceYield = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
    sinceYield += part.length;
    if (sinceYield >= PACK_STEP_BYTES) {
      sinceYield = 0;
      await yieldToEventLoop();
    }
  }
  return out;
}
