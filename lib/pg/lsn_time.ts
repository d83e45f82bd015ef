/**
 * LSN ↔ time (docs/POSTGRES.md, "LSN ↔ time"): the LSN of a PostgreSQL timeline that shows the
 * cluster as of a wall-clock time, with the kinds of Neon's find_lsn_for_timestamp
 * (pageserver/src/pgdatadir_mapping.rs).
 *
 * Ingest keeps one state value, AUX_LAST_COMMIT, written at every COMMIT and COMMIT PREPARED record:
 * the largest commit timestamp (xl_xact_commit.xact_time) seen so far on the timeline and its
 * ancestors, and the end LSN of that latest commit record. The largest rather than the latest
 * timestamp, because PostgreSQL takes xact_time before it inserts the record, so concurrent commits
 * reach the WAL slightly out of timestamp order; a running maximum is monotone in LSN, which is what
 * a binary search over LSNs needs. One probe is one small read, so a lookup costs O(log₂ of the
 * LSN range) reads (about 35 for 16 GiB of WAL).
 *
 * With M(x) the running maximum at LSN x, `at` a time and [min, last] the searchable LSNs
 * (min = the highest of the import LSN, the branch point and the GC cutoff; last = lastRecordLsn):
 *
 *   nodata   no commit record was ingested up to `last` (a fresh import; or WAL ingested by a Strata
 *            that did not keep the value)                                        lsn = min
 *   future   M(last) ≤ at: every commit so far is at or before `at`; later WAL may still
 *            add some                                                            lsn = last
 *   past     the first commit record in [min, last] (or, when commits before min are visible at
 *            min, M(min)) is after `at`: the timeline cannot go back that far    lsn = min
 *   present  otherwise: q = the first LSN with M(q) > at; the answer is the end LSN of the last commit
 *            record before q (raised to min if that commit lies below min)
 *
 * At a 'present' LSN every commit with timestamp ≤ at is visible and none after `at` is, for the
 * commits of the longest stretch of WAL whose commit timestamps are all ≤ at: a commit whose
 * timestamp is ≤ at but whose record follows one stamped after `at` (the out-of-order case above)
 * stays invisible. Neon returns the LSN just below q instead; the last commit's end LSN holds the
 * same commits and fewer changes of transactions still in progress (its FIXME). Neon counts a
 * commit stamped exactly `at` as after it; here it is visible ("as of `at`", inclusive).
 */
import type { TimelineImpl } from '../engine/timeline';
import { describeValue, StrataError } from '../errors';
import { formatLsn, type Lsn, parseLsn } from '../lsn';
import { readAuxFile } from './aux_files';
import { AUX_LAST_COMMIT } from './keyspace';
import { pgMicrosToUnixMs, unixMsToPgMicros } from './replication_protocol';

/** What lsnForTimestamp found (the module comment defines each kind and its LSN). */
export type LsnForTimestampKind = 'present' | 'past' | 'future' | 'nodata';

export interface LsnForTimestamp {
  kind: LsnForTimestampKind;
  lsn: Lsn;
}

/** The AUX_LAST_COMMIT value: times are PostgreSQL TimestampTz, µs since 2000-01-01 UTC. */
export interface LastCommit {
  /** The largest commit timestamp up to and including `lsn`. */
  maxTime: bigint;
  /** End LSN of the latest commit record. */
  lsn: Lsn;
}

const LAST_COMMIT_FORMAT = 1;
/** u8 format, 7 reserved, i64 LE maxTime, u64 LE lsn. */
const LAST_COMMIT_BYTES = 24;
const MICROS_PER_SECOND = 1_000_000n;

export function encodeLastCommit(v: LastCommit): Buffer {
  const b = Buffer.alloc(LAST_COMMIT_BYTES);
  b[0] = LAST_COMMIT_FORMAT;
  b.writeBigInt64LE(v.maxTime, 8);
  b.writeBigUInt64LE(v.lsn, 16);
  return b;
}

export function decodeLastCommit(b: Buffer): LastCommit {
  if (b.length !== LAST_COMMIT_BYTES || b[0] !== LAST_COMMIT_FORMAT) {
    throw new StrataError('CORRUPT_LAYER', `last-commit value of ${b.length} bytes, format ${b[0]}: expected ${LAST_COMMIT_BYTES} bytes, format ${LAST_COMMIT_FORMAT}`);
  }
  return { maxTime: b.readBigInt64LE(8), lsn: b.readBigUInt64LE(16) };
}

/** The value at `lsn`, or null when no commit record was ingested up to it. */
export async function lastCommitAt(tl: TimelineImpl, lsn: Lsn): Promise<LastCommit | null> {
  const v = await readAuxFile(tl, AUX_LAST_COMMIT, 0, 0, 0, lsn);
  return v === null ? null : decodeLastCommit(v);
}

/** A Date as PostgreSQL's TimestampTz (exact: a Date is whole milliseconds). */
export function dateToPgMicros(at: Date): bigint {
  return unixMsToPgMicros(at.getTime());
}

/** A TimestampTz as ISO-8601 UTC with its microseconds, e.g. 2026-12-01T10:30:37.123456Z. */
export function formatPgTimestamp(us: bigint): string {
  const frac = ((us % MICROS_PER_SECOND) + MICROS_PER_SECOND) % MICROS_PER_SECOND;
  const whole = new Date(pgMicrosToUnixMs(us - frac)).toISOString();
  return `${whole.slice(0, 19)}.${frac.toString().padStart(6, '0')}Z`;
}

/** The LSNs a search may return: [max(import LSN, branch point, GC cutoff), lastRecordLsn]. */
export function searchRange(tl: TimelineImpl): { min: Lsn; last: Lsn } {
  const ext = tl.extensions.pg;
  if (ext === undefined) throw new StrataError('BAD_ARGUMENT', `${tl.name}: lsnForTimestamp needs a PostgreSQL timeline: import a data directory into it first (importPgDatadir)`);
  const last = tl.lastRecordLsn;
  let min = tl.startLsn > tl.gcCutoffLsn ? tl.startLsn : tl.gcCutoffLsn;
  if (ext.importLsn !== undefined) {
    const imported = parseLsn(ext.importLsn);
    if (imported > min) min = imported;
  }
  return { min: min < last ? min : last, last };
}

function checkDate(at: unknown): asserts at is Date {
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new StrataError('BAD_ARGUMENT', `a time must be a valid Date: got ${describeValue(at)}`);
}

/** The LSN that shows the cluster as of `at` (the module comment defines the kinds). */
export async function lsnForTimestamp(tl: TimelineImpl, at: Date): Promise<LsnForTimestamp> {
  tl.checkOpen();
  checkDate(at);
  const atUs = dateToPgMicros(at);
  const { min, last } = searchRange(tl);
  const newest = await lastCommitAt(tl, last);
  if (newest === null) return { kind: 'nodata', lsn: min };
  if (newest.maxTime <= atUs) return { kind: 'future', lsn: last };
  // The first q in [min, last] with M(q) > at; M(last) > at, so one exists.
  const after = (v: LastCommit | null): boolean => v !== null && v.maxTime > atUs;
  let lo = min;
  let hi = last;
  while (lo < hi) {
    const mid = lo + (hi - lo) / 2n;
    if (after(await lastCommitAt(tl, mid))) hi = mid;
    else lo = mid + 1n;
  }
  if (lo === min) return { kind: 'past', lsn: min };
  const before = await lastCommitAt(tl, lo - 1n);
  if (before === null) return { kind: 'past', lsn: min };
  return { kind: 'present', lsn: before.lsn > min ? before.lsn : min };
}

/**
 * The commit times the timeline can tell apart, for messages: from M(min) (or the first commit
 * after min) to M(lastRecordLsn); null when it has no commit.
 */
export async function commitTimeRange(tl: TimelineImpl): Promise<{ from: bigint; to: bigint } | null> {
  const { min, last } = searchRange(tl);
  const newest = await lastCommitAt(tl, last);
  if (newest === null) return null;
  const atMin = await lastCommitAt(tl, min);
  if (atMin !== null) return { from: atMin.maxTime, to: newest.maxTime };
  let lo = min;
  let hi = last;
  while (lo < hi) {
    const mid = lo + (hi - lo) / 2n;
    if ((await lastCommitAt(tl, mid)) !== null) hi = mid;
    else lo = mid + 1n;
  }
  const first = (await lastCommitAt(tl, lo)) as LastCommit;
  return { from: first.maxTime, to: newest.maxTime };
}

/**
 * The branch point for createTimeline's ancestorTimestamp: the 'present' LSN, or BAD_ARGUMENT
 * naming the kind and the ancestor's commit-time range.
 */
export async function branchLsnForTimestamp(tl: TimelineImpl, at: Date): Promise<Lsn> {
  checkDate(at);
  const r = await lsnForTimestamp(tl, at);
  if (r.kind === 'present') return r.lsn;
  const range = await commitTimeRange(tl);
  const span = range === null
    ? 'it has no commit records since its import'
    : `its commits span ${formatPgTimestamp(range.from)} .. ${formatPgTimestamp(range.to)}`;
  const why: Record<Exclude<LsnForTimestampKind, 'present'>, string> = {
    past: 'is before the earliest commit it can branch at',
    future: 'is at or after its latest commit, and later WAL may still commit before it (branch at its lastRecordLsn with ancestorLsn instead)',
    nodata: 'cannot be placed',
  };
  const { min, last } = searchRange(tl);
  throw new StrataError('BAD_ARGUMENT',
    `${tl.name}: ancestorTimestamp ${formatPgTimestamp(dateToPgMicros(at))} is '${r.kind}': it ${why[r.kind]}; ${span} (LSNs ${formatLsn(min)} .. ${formatLsn(last)})`);
}
