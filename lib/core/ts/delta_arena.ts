/**
 * TS twin of native/delta_arena.cc: the walk of a frozen in-memory layer's arena (../delta_arena.ts)
 * in (key, LSN) order, as batches for a layer writer. The same entries, and the same BAD_ARGUMENT
 * cases, as the native walk.
 */
import { copyBytes } from '../../bytes';
import { StrataError } from '../../errors';
import { KEY_SIZE } from '../../key';
import { recordWillInit, recordWillInitFits } from '../../record';
import {
  ARENA_ENTRY_BYTES, ARENA_ENTRY_U32S, ARENA_LENGTH, ARENA_OFFSET, ARENA_PREV, ARENA_SLAB, type DeltaArena, NO_PREVIOUS, NOT_PACKED,
} from '../delta_arena';
import { EntryBatch, yieldToEventLoop } from '../entry_batch';
import { BLOB_RAW_LEN_SIZE, CODEC_NONE, DELTA_INDEX_KEY_SIZE, type CodecId } from '../format';

const LSN_BYTES = 8;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The arena's entries as batches for a layer writer (the same batch refilled after each yield:
 * hand it over before the next step). BAD_ARGUMENT naming the record for a malformed arena, as the
 * native walk does, before anything of that batch is yielded.
 */
export function* arenaBatches(arena: DeltaArena, codec: CodecId): Generator<EntryBatch> {
  const { keys, heads, entries, slabs, packedAt, packed } = arena;
  const count = checkArenaShape(arena);
  const u32 = new Uint32Array(entries.buffer, entries.byteOffset, count * ARENA_ENTRY_U32S);
  const i32 = new Int32Array(entries.buffer, entries.byteOffset, count * ARENA_ENTRY_U32S);
  const batch = new EntryBatch(DELTA_INDEX_KEY_SIZE);
  const chain: number[] = [];
  for (let k = 0; k < heads.length; k++) {
    chain.length = 0;
    for (let ord = heads[k]; ord !== NO_PREVIOUS; ord = i32[ord * ARENA_ENTRY_U32S + ARENA_PREV]) {
      if (ord < 0 || ord >= count || (chain.length > 0 && ord >= chain[chain.length - 1])) {
        throw badArena(`key ${k}: record ordinal ${ord} out of range or not older than the one before`);
      }
      chain.push(ord);
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      const ord = chain[i];
      const w = ord * ARENA_ENTRY_U32S;
      const slabIndex = u32[w + ARENA_SLAB];
      const start = u32[w + ARENA_OFFSET];
      const len = u32[w + ARENA_LENGTH];
      const slab = slabs[slabIndex];
      if (slab === undefined || len === 0 || start + len > slab.length) throw badArena(`record ${ord}: bytes outside its slab`);
      if (!recordWillInitFits(slab, start, len)) throw badArena(`record ${ord}: a PostgreSQL record shorter than its block references`);
      const at = batch.nextKeyAt();
      const out = batch.keyBuffer;
      copyBytes(keys, k * KEY_SIZE, out, at, KEY_SIZE);
      const e = ord * ARENA_ENTRY_BYTES;
      // The LSN's 8 bytes, most significant first, from the entry's native-order bytes.
      for (let b = 0; b < LSN_BYTES; b++) out[at + KEY_SIZE + b] = entries[e + (LITTLE_ENDIAN ? LSN_BYTES - 1 - b : b)];
      const plen = packedAt[ord * 2 + 1];
      let packedView: Buffer | null = null;
      if (plen !== NOT_PACKED) {
        if (codec === CODEC_NONE) throw badArena(`record ${ord}: a compressed form in an uncompressed layer`);
        const poff = packedAt[ord * 2];
        if (plen < 0 || poff < 0 || poff + plen > packed.length || plen + BLOB_RAW_LEN_SIZE >= len) throw badArena(`record ${ord}: compressed form out of range`);
        packedView = Buffer.from(packed.buffer, packed.byteOffset + poff, plen);
      }
      batch.encodePacked(codec, slab, start, start + len, packedView, recordWillInit(slab, start));
      if (batch.isFull()) {
        yield batch;
        batch.reset();
      }
    }
  }
  yield batch;
}

/** What appendArena writes to: a layer writer's append. */
export interface ArenaSink {
  append(indexKeys: Buffer, blobs: Buffer, willInit: Uint8Array): void;
}

/** Append the arena's entries to `writer`, yielding to the event loop between batches. */
export async function appendArena(writer: ArenaSink, arena: DeltaArena, codec: CodecId): Promise<void> {
  for (const batch of arenaBatches(arena, codec)) {
    if (batch.count > 0) writer.append(batch.indexKeys(), batch.blobs(), batch.willInit());
    if (batch.isFull()) await yieldToEventLoop();
  }
}

/** The record count, after checking the arrays' sizes agree. */
function checkArenaShape(arena: DeltaArena): number {
  const { keys, heads, entries, packedAt } = arena;
  if (entries.length % ARENA_ENTRY_BYTES !== 0 || entries.byteOffset % ARENA_ENTRY_BYTES !== 0) throw badArena('entries are not whole aligned entries');
  const count = entries.length / ARENA_ENTRY_BYTES;
  if (keys.length !== heads.length * KEY_SIZE) throw badArena(`${keys.length} key bytes for ${heads.length} keys`);
  if (packedAt.length !== count * 2) throw badArena(`packedAt holds ${packedAt.length} numbers for ${count} records`);
  return count;
}

function badArena(what: string): StrataError {
  return new StrataError('BAD_ARGUMENT', `flush of an in-memory layer: ${what}`);
}
