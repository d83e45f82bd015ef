/**
 * The cluster settings that change how PostgreSQL writes pages during redo, kept per LSN as an aux
 * file (keyspace.ts, AUX_CLUSTER_STATE) so that a record redone at read time gets the settings in
 * force when it was written: data checksums (fixed at initdb) and wal_log_hints (changed by
 * XLOG_PARAMETER_CHANGE). Together they are PostgreSQL's XLogHintBitIsNeeded. Each stored record
 * carries them as its cluster flags (docs/POSTGRES.md, "Stored record").
 */
import { StrataError } from '../errors';
import { CLUSTER_FLAG_CHECKSUMS, CLUSTER_FLAG_WAL_LOG_HINTS } from './wal_record';

export interface ClusterState {
  dataChecksums: boolean;
  walLogHints: boolean;
}

const STATE_FORMAT = 1;
const STATE_BYTES = 2;

export function encodeClusterState(s: ClusterState): Buffer {
  return Buffer.of(STATE_FORMAT, clusterFlagsOf(s));
}

export function decodeClusterState(bytes: Uint8Array): ClusterState {
  if (bytes.length < STATE_BYTES || bytes[0] !== STATE_FORMAT) {
    throw new StrataError('CORRUPT_LAYER', `cluster state of ${bytes.length} bytes, format ${bytes[0]}: not one this Strata writes`);
  }
  return { dataChecksums: (bytes[1] & CLUSTER_FLAG_CHECKSUMS) !== 0, walLogHints: (bytes[1] & CLUSTER_FLAG_WAL_LOG_HINTS) !== 0 };
}

/** The stored records' cluster flags byte. */
export function clusterFlagsOf(s: ClusterState): number {
  return (s.dataChecksums ? CLUSTER_FLAG_CHECKSUMS : 0) | (s.walLogHints ? CLUSTER_FLAG_WAL_LOG_HINTS : 0);
}
