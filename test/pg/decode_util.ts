/**
 * Helpers for the decoder tests: run a WAL byte stream through either core with a given chunking
 * and collect every entry, the final state and the error, if any.
 */
import * as fs from 'fs';
import type { ImplementationName } from '../../lib/core/core';
import { createWalDecoder, type DecodeStateName, type WalDecoderOptions } from '../../lib/core/pg_decoder';
import { isStrataError } from '../../lib/errors';
import { planWalSegments } from '../../lib/pg/wal_source';

export interface DecodeOutcome {
  entries: Buffer;
  count: number;
  nextLsn: bigint;
  state: DecodeStateName | 'error';
  error: { code: string; message: string } | null;
}

/** Chunk sizes for feeding: a fixed size, or a generator of sizes. */
export type Chunking = number | (() => number);

/** Decodes `wal` (bytes from opts.startLsn) fed in chunks, decoding `maxRecords` at a time after each feed. */
export function decodeBytes(impl: ImplementationName, wal: Uint8Array, opts: WalDecoderOptions, chunking: Chunking = 1 << 20,
  maxRecords: () => number = () => 100_000): DecodeOutcome {
  const d = createWalDecoder(impl, opts);
  const parts: Buffer[] = [];
  let count = 0;
  let nextLsn = opts.startLsn;
  let state = 'need-more' as DecodeStateName; // set by drain()
  const drain = (): void => {
    for (;;) {
      const r = d.decode(maxRecords());
      parts.push(r.entries);
      count += r.count;
      nextLsn = r.nextLsn;
      state = r.state;
      if (r.state !== 'full') return;
    }
  };
  try {
    for (let o = 0; o < wal.length && state !== 'end';) {
      const n = typeof chunking === 'number' ? chunking : chunking();
      d.feed(wal.subarray(o, o + n));
      o += n;
      drain();
    }
    if (state !== 'end') {
      d.finish();
      drain();
    }
  } catch (e) {
    if (!isStrataError(e)) throw e;
    return { entries: Buffer.concat(parts), count, nextLsn, state: 'error', error: { code: e.code, message: e.message } };
  }
  return { entries: Buffer.concat(parts), count, nextLsn, state, error: null };
}

/** Every byte of a WAL directory from `startLsn` to the end of its last segment, as one buffer. */
export function readWalDir(dir: string, startLsn: bigint, maxBytes = Infinity): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  let offset = Number(startLsn % 0x1000000n);
  for (const seg of planWalSegments(dir, { startLsn })) {
    const b = fs.readFileSync(seg.file).subarray(offset);
    offset = 0;
    parts.push(b);
    total += b.length;
    if (total >= maxBytes) break;
  }
  const all = Buffer.concat(parts);
  return all.length > maxBytes ? all.subarray(0, maxBytes) : all;
}
