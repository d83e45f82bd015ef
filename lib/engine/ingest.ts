/**
 * Ingest's admission rules (docs/ARCHITECTURE.md, "Ingest"): a batch is validated and serialized
 * completely before anything of it is applied, so a rejected batch changes nothing.
 *   - the first LSN is above lastRecordLsn, later ones never go backwards;
 *   - one LSN may carry records for several pages, never two for one page;
 *   - no record may sit at LSN_MAX: a layer ends one past its last record, and that end must fit
 *     in 64 bits.
 */
import { StrataError } from '../errors';
import { encodeCheckedKey, encodeKey, formatEncodedKey, KEY_SIZE } from '../key';
import { formatLsn, LSN_MAX, type Lsn } from '../lsn';
import { checkRecord, serializeRecord, type WalRecord } from '../record';

/** The largest LSN a record may carry (a layer's exclusive end LSN is one above its last record). */
export const MAX_RECORD_LSN: Lsn = LSN_MAX - 1n;

/** A batch ready for the in-memory layer: encoded keys, LSNs and serialized records, in order. */
export interface PreparedBatch {
  keys: Buffer[];
  lsns: Lsn[];
  values: Buffer[];
}

/**
 * Public records checked by checkRecords, ready to be written straight into the open in-memory
 * layer (InMemoryLayer.putChecked): record i has its key encoded at keys[i × KEY_SIZE, +KEY_SIZE),
 * its LSN at records[i].lsn and its serialized length in sizes[i]. `keys` and `sizes` are scratch
 * space reused by the timeline's next batch: read them before that.
 */
export interface CheckedRecords {
  records: readonly WalRecord[];
  count: number;
  keys: Buffer;
  sizes: Uint32Array;
}

/** Reusable buffers for checkRecords, grown to the largest batch seen. */
export class IngestScratch {
  keys: Buffer = Buffer.alloc(0);
  sizes = new Uint32Array(0);

  reserve(count: number): void {
    if (this.sizes.length >= count) return;
    this.keys = Buffer.allocUnsafeSlow(count * KEY_SIZE);
    this.sizes = new Uint32Array(count);
  }
}

/**
 * Runs of records at one LSN up to this long are checked for two records of one page by comparing
 * keys pairwise (no allocation); a longer run, as a bulk import at one LSN writes, uses a Set.
 */
const SAME_LSN_PAIRWISE_MAX = 8;

/**
 * Validate public records in one pass, encoding their keys into scratch (BAD_RECORD, BAD_ARGUMENT,
 * LSN_ORDER): nothing is allocated per record. As when each record was serialized before the LSN
 * rules were checked, a malformed record anywhere in the batch wins over an LSN error.
 */
export function checkRecords(records: readonly WalRecord[], lastRecordLsn: Lsn, name: string, scratch: IngestScratch): CheckedRecords {
  if (!Array.isArray(records)) {
    throw new StrataError('BAD_ARGUMENT', `${name}: ingest expects an array of records, got ${records === null ? 'null' : typeof records}`);
  }
  const n = records.length;
  scratch.reserve(n);
  const { keys, sizes } = scratch;
  let orderError: StrataError | null = null;
  let prev = lastRecordLsn;
  let runStart = 0;
  let runIds: Set<string> | null = null;
  for (let i = 0; i < n; i++) {
    const r = records[i];
    sizes[i] = checkRecord(r);
    encodeCheckedKey(r.key, keys, i * KEY_SIZE); // checkRecord checked the key
    if (orderError !== null) continue;
    const lsn = r.lsn;
    if (lsn !== prev || i === 0) {
      orderError = lsnOrderError(i, lsn, prev, name);
      runStart = i;
      runIds = null;
    } else {
      orderError = sameLsnError(keys, runStart, i, runIds, lsn, name);
      if (runIds === null && i - runStart >= SAME_LSN_PAIRWISE_MAX) runIds = runKeyIds(keys, runStart, i + 1);
    }
    prev = lsn;
  }
  if (orderError !== null) throw orderError;
  return { records, count: n, keys, sizes };
}

/** Serialize and validate public records (BAD_RECORD, BAD_ARGUMENT, LSN_ORDER). */
export function prepareRecords(records: readonly WalRecord[], lastRecordLsn: Lsn, name: string): PreparedBatch {
  if (!Array.isArray(records)) {
    throw new StrataError('BAD_ARGUMENT', `${name}: ingest expects an array of records, got ${records === null ? 'null' : typeof records}`);
  }
  const batch: PreparedBatch = { keys: new Array<Buffer>(records.length), lsns: new Array<Lsn>(records.length), values: new Array<Buffer>(records.length) };
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    batch.values[i] = serializeRecord(r);
    batch.keys[i] = encodeKey(r.key);
    batch.lsns[i] = r.lsn;
  }
  checkBatchOrder(batch, lastRecordLsn, name);
  return batch;
}

/** The LSN rules above, for batches built by the engine's own ingest paths too (PostgreSQL WAL). */
export function checkBatchOrder(batch: PreparedBatch, lastRecordLsn: Lsn, name: string): void {
  let prev = lastRecordLsn;
  let sameLsnKeys = new Set<string>();
  for (let i = 0; i < batch.lsns.length; i++) {
    const lsn = batch.lsns[i];
    const err = lsnOrderError(i, lsn, prev, name);
    if (err !== null) throw err;
    if (lsn !== prev) sameLsnKeys = new Set<string>();
    const id = batch.keys[i].toString('latin1');
    if (sameLsnKeys.has(id)) throw duplicateError(batch.keys[i], lsn, name);
    sameLsnKeys.add(id);
    prev = lsn;
  }
}

/** The error for record i's LSN after `prev` (lastRecordLsn for the first record), or null. */
function lsnOrderError(i: number, lsn: Lsn, prev: Lsn, name: string): StrataError | null {
  if (lsn > MAX_RECORD_LSN) {
    return new StrataError('LSN_ORDER', `${name}: record ${i} has LSN ${formatLsn(lsn)}, above the largest storable LSN ${formatLsn(MAX_RECORD_LSN)}; nothing of the batch was applied`);
  }
  if (i === 0 ? lsn <= prev : lsn < prev) {
    return new StrataError('LSN_ORDER', `${name}: record ${i} has LSN ${formatLsn(lsn)}, ` +
      (i === 0 ? `not above lastRecordLsn ${formatLsn(prev)}` : `below the previous record's ${formatLsn(prev)}`) +
      '; nothing of the batch was applied');
  }
  return null;
}

function duplicateError(key: Uint8Array, lsn: Lsn, name: string): StrataError {
  return new StrataError('LSN_ORDER', `${name}: two records for page ${formatEncodedKey(key)} at LSN ${formatLsn(lsn)}; nothing of the batch was applied`);
}

/** Record i shares its LSN with records [runStart, i): an error if one of them has i's key. */
function sameLsnError(keys: Buffer, runStart: number, i: number, runIds: Set<string> | null, lsn: Lsn, name: string): StrataError | null {
  const at = i * KEY_SIZE;
  if (runIds !== null) {
    const id = keys.toString('latin1', at, at + KEY_SIZE);
    if (runIds.has(id)) return duplicateError(keys.subarray(at, at + KEY_SIZE), lsn, name);
    runIds.add(id);
    return null;
  }
  for (let j = runStart; j < i; j++) {
    if (keys.compare(keys, at, at + KEY_SIZE, j * KEY_SIZE, (j + 1) * KEY_SIZE) === 0) {
      return duplicateError(keys.subarray(at, at + KEY_SIZE), lsn, name);
    }
  }
  return null;
}

function runKeyIds(keys: Buffer, from: number, to: number): Set<string> {
  const ids = new Set<string>();
  for (let j = from; j < to; j++) ids.add(keys.toString('latin1', j * KEY_SIZE, (j + 1) * KEY_SIZE));
  return ids;
}
