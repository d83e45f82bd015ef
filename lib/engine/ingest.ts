/**
 * Ingest's admission rules (docs/ARCHITECTURE.md, "Ingest"): a batch is validated and serialized
 * completely before anything of it is applied, so a rejected batch changes nothing.
 *   - the first LSN is above lastRecordLsn, later ones never go backwards;
 *   - one LSN may carry records for several pages, never two for one page;
 *   - no record may sit at LSN_MAX: a layer ends one past its last record, and that end must fit
 *     in 64 bits.
 */
import { StrataError } from '../errors';
import { encodeKey, formatEncodedKey } from '../key';
import { formatLsn, LSN_MAX, type Lsn } from '../lsn';
import { serializeRecord, type WalRecord } from '../record';

/** The largest LSN a record may carry (a layer's exclusive end LSN is one above its last record). */
export const MAX_RECORD_LSN: Lsn = LSN_MAX - 1n;

/** A batch ready for the in-memory layer: encoded keys, LSNs and serialized records, in order. */
export interface PreparedBatch {
  keys: Buffer[];
  lsns: Lsn[];
  values: Buffer[];
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
    if (lsn > MAX_RECORD_LSN) {
      throw new StrataError('LSN_ORDER', `${name}: record ${i} has LSN ${formatLsn(lsn)}, above the largest storable LSN ${formatLsn(MAX_RECORD_LSN)}; nothing of the batch was applied`);
    }
    if (i === 0 ? lsn <= prev : lsn < prev) {
      throw new StrataError('LSN_ORDER', `${name}: record ${i} has LSN ${formatLsn(lsn)}, ` +
        (i === 0 ? `not above lastRecordLsn ${formatLsn(prev)}` : `below the previous record's ${formatLsn(prev)}`) +
        '; nothing of the batch was applied');
    }
    if (lsn !== prev) sameLsnKeys = new Set<string>();
    const id = batch.keys[i].toString('latin1');
    if (sameLsnKeys.has(id)) {
      throw new StrataError('LSN_ORDER', `${name}: two records for page ${formatEncodedKey(batch.keys[i])} at LSN ${formatLsn(lsn)}; nothing of the batch was applied`);
    }
    sameLsnKeys.add(id);
    prev = lsn;
  }
}
