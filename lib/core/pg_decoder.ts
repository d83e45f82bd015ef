/**
 * The PostgreSQL 15 WAL decoder contract, implemented by both cores: `native`
 * (native/pg/xlogreader.cc through the addon's PgWalDecoder) and `ts` (ts/pg/xlogreader.ts). Same
 * input, same entry bytes (docs/POSTGRES.md, "Decoded record"), same error codes and messages.
 * The engine feeds WAL bytes and decodes batches; one batch crosses the native boundary once.
 * The rules for end of WAL versus WAL_CORRUPT are at the top of either implementation and in
 * docs/POSTGRES.md, "End of WAL".
 */
import type { ImplementationName } from './core';
import { StrataError, toStrataError } from '../errors';
import { loadNativeBinding, nativeLoadError, type NativeBinding } from './native';
import { TsWalDecoder, type DecodeBatch, type DecodeStateName, type WalDecoderOptions } from './ts/pg/xlogreader';

export type { DecodeBatch, DecodeStateName, WalDecoderOptions };

export interface WalDecoder {
  readonly implementation: ImplementationName;
  /** Appends the next WAL bytes (contiguous with what came before, starting at the start LSN). */
  feed(bytes: Uint8Array): void;
  /** No more input: an incomplete record at the end is the clean end of WAL. */
  finish(): void;
  /**
   * Up to maxRecords entries. state: 'full' (call again), 'need-more' (feed or finish), 'end'
   * (clean end of WAL, or the end LSN reached). Throws WAL_CORRUPT / WAL_UNSUPPORTED.
   */
  decode(maxRecords: number): DecodeBatch;
}

/** What the addon's PgWalDecoder exposes (native/pg/pg_addon.cc). */
interface NativeWalDecoderHandle {
  feed(bytes: Uint8Array): void;
  finish(): void;
  decode(maxRecords: number): { entries: Buffer; count: number; nextLsn: bigint; state: number };
}

/** The pg part of the addon's exports. */
export interface NativePgBinding {
  PgWalDecoder: new (startLsn: bigint, endLsn: bigint, systemId: bigint, timeline: number) => NativeWalDecoderHandle;
  /** CRC-32C (zlib-style continuation), for tests. */
  pgCrc32c(data: Uint8Array, value?: number): number;
  /** CRC-32C by the tables whatever the CPU, for tests. */
  pgCrc32cTables(data: Uint8Array): number;
  /** Whether the addon uses the SSE4.2 instruction on this CPU. */
  pgCrc32cHardware: boolean;
  /** pglz decompression to exactly rawLen bytes; BAD_ARGUMENT on malformed input. */
  pgPglzDecompress(src: Uint8Array, rawLen: number): Buffer;
}

const NATIVE_STATES: readonly DecodeStateName[] = ['full', 'need-more', 'end'];

function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw toStrataError(e);
  }
}

/** The addon's pg exports; NATIVE_UNAVAILABLE when the addon does not load or predates them. */
export function loadNativePg(): NativePgBinding {
  const err = nativeLoadError();
  if (err !== null) throw new StrataError('NATIVE_UNAVAILABLE', `the native addon cannot load: ${err.message}`, { cause: err });
  const b = loadNativeBinding() as NativeBinding & Partial<NativePgBinding>;
  if (typeof b.PgWalDecoder !== 'function' || typeof b.pgCrc32c !== 'function' || typeof b.pgPglzDecompress !== 'function') {
    throw new StrataError('NATIVE_UNAVAILABLE', 'the loaded native addon has no PostgreSQL decoder (rebuild it)');
  }
  return b as NativeBinding & NativePgBinding;
}

class NativeWalDecoder implements WalDecoder {
  readonly implementation = 'native' as const;
  constructor(private readonly d: NativeWalDecoderHandle) {}

  feed(bytes: Uint8Array): void {
    call(() => this.d.feed(bytes));
  }

  finish(): void {
    call(() => this.d.finish());
  }

  decode(maxRecords: number): DecodeBatch {
    const r = call(() => this.d.decode(maxRecords));
    const state = NATIVE_STATES[r.state];
    if (state === undefined) throw new StrataError('BAD_ARGUMENT', `addon reported unknown decoder state ${r.state}`);
    return { entries: r.entries, count: r.count, nextLsn: r.nextLsn, state };
  }
}

class TsDecoderAdapter implements WalDecoder {
  readonly implementation = 'ts' as const;
  constructor(private readonly d: TsWalDecoder) {}
  feed(bytes: Uint8Array): void {
    this.d.feed(bytes);
  }
  finish(): void {
    this.d.finish();
  }
  decode(maxRecords: number): DecodeBatch {
    return this.d.decode(maxRecords);
  }
}

/** A WAL decoder of the given core; BAD_ARGUMENT for a start LSN that cannot start a record. */
export function createWalDecoder(impl: ImplementationName, options: WalDecoderOptions): WalDecoder {
  if (impl === 'ts') return new TsDecoderAdapter(new TsWalDecoder(options));
  const b = loadNativePg();
  const h = call(() => new b.PgWalDecoder(options.startLsn, options.endLsn ?? 0n, options.systemId ?? 0n, options.timeline ?? 0));
  return new NativeWalDecoder(h);
}

/** CRC-32C for the engine's own PostgreSQL files (pg_control): the TS twin's, which both cores match. */
export { crc32c } from './ts/pg/crc32c';

/**
 * What ingest needs to know about redo, from the TS twin (both cores dispatch the same records and
 * compute the same checksums — the redo differential tests hold them to it): the page checksum of
 * a checksummed cluster, the record types the cores redo, and pg_waldump's name of a record type.
 */
export { pgChecksumPage } from './ts/pg/checksum';
export { redoSupported as pgRedoSupported, rmgrInfoName as pgRmgrInfoName } from './ts/pg/rmgr';
