/**
 * Reading aux files (keyspace.ts: kind, spcOid, dbOid, id, chunks of 8188 bytes) at an LSN:
 * pg_control as imported, pg_filenode.map files, two-phase state files, and Strata's own state
 * values. A file exists at an LSN when its chunk 0 has a value there whose length is not
 * AUX_DELETED; its length says how many chunks follow.
 */
import { PAGE_STATUS_OK } from '../core/core';
import type { TimelineImpl } from '../engine/timeline';
import { StrataError } from '../errors';
import { formatLsn, type Lsn } from '../lsn';
import { PAGE_SIZE } from '../record';
import { AUX_CHUNK_BYTES, AUX_DELETED, auxKey, auxKindRange, decodeAuxKey } from './keyspace';

/** One aux file as read at an LSN. */
export interface AuxFile {
  spcOid: number;
  dbOid: number;
  id: number;
  bytes: Buffer;
}

/** Keys read per core call. */
const READ_BATCH = 256;
const LENGTH_BYTES = 4;

/** The file's bytes at `lsn`, or null when it does not exist there (never written, or deleted). */
export async function readAuxFile(tl: TimelineImpl, kind: number, spcOid: number, dbOid: number, id: number, lsn: Lsn): Promise<Buffer | null> {
  const [file] = await readFiles(tl, [{ kind, spcOid, dbOid, id }], lsn);
  return file;
}

/** Every file of `kind` that exists at `lsn`, in key order (spcOid, dbOid, id). */
export async function readAuxFiles(tl: TimelineImpl, kind: number, lsn: Lsn): Promise<AuxFile[]> {
  const range = auxKindRange(kind);
  const names = tl.keysInRange(range.start, range.end).map(decodeAuxKey).filter((k) => k.chunk === 0);
  const files = await readFiles(tl, names, lsn);
  const out: AuxFile[] = [];
  names.forEach((n, i) => {
    const bytes = files[i];
    if (bytes !== null) out.push({ spcOid: n.spcOid, dbOid: n.dbOid, id: n.id, bytes });
  });
  return out;
}

interface AuxName {
  kind: number;
  spcOid: number;
  dbOid: number;
  id: number;
}

async function readFiles(tl: TimelineImpl, names: readonly AuxName[], lsn: Lsn): Promise<Array<Buffer | null>> {
  const firsts = await readChunks(tl, names.map((n) => auxKey(n.kind, n.spcOid, n.dbOid, n.id, 0)), lsn);
  const out: Array<Buffer | null> = [];
  for (let i = 0; i < names.length; i++) {
    const chunk0 = firsts[i];
    if (chunk0 === null) {
      out.push(null);
      continue;
    }
    const length = chunk0.readUInt32LE(0);
    if (length === AUX_DELETED) {
      out.push(null);
      continue;
    }
    out.push(await assemble(tl, names[i], chunk0, length, lsn));
  }
  return out;
}

/** The file from its chunk 0 and, for a file over one chunk, the chunks after it. */
async function assemble(tl: TimelineImpl, n: AuxName, chunk0: Buffer, length: number, lsn: Lsn): Promise<Buffer> {
  const file = Buffer.alloc(length);
  chunk0.copy(file, 0, LENGTH_BYTES, LENGTH_BYTES + Math.min(length, AUX_CHUNK_BYTES));
  const more: Buffer[] = [];
  for (let c = 1; c * AUX_CHUNK_BYTES < length; c++) more.push(auxKey(n.kind, n.spcOid, n.dbOid, n.id, c));
  const chunks = await readChunks(tl, more, lsn);
  chunks.forEach((chunk, i) => {
    const c = i + 1;
    const want = Math.min(AUX_CHUNK_BYTES, length - c * AUX_CHUNK_BYTES);
    if (chunk === null || chunk.readUInt32LE(0) !== want) {
      throw new StrataError('CORRUPT_LAYER', `aux file ${n.kind}/${n.spcOid}/${n.dbOid}/${n.id} at ${formatLsn(lsn)}: chunk ${c} is missing or not ${want} bytes`);
    }
    chunk.copy(file, c * AUX_CHUNK_BYTES, LENGTH_BYTES, LENGTH_BYTES + want);
  });
  return file;
}

/** Each key's value at `lsn` (a copy), or null where the key has none there. */
async function readChunks(tl: TimelineImpl, keys: readonly Buffer[], lsn: Lsn): Promise<Array<Buffer | null>> {
  const out: Array<Buffer | null> = [];
  for (let start = 0; start < keys.length; start += READ_BATCH) {
    const batch = keys.slice(start, start + READ_BATCH);
    const { out: pages, status } = await tl.getPagesWithStatus(batch, lsn);
    batch.forEach((_, i) => out.push(status[i] === PAGE_STATUS_OK ? Buffer.from(pages.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE)) : null));
  }
  return out;
}
