/**
 * The messages of PostgreSQL's physical streaming replication protocol that travel inside CopyData
 * once START_REPLICATION has switched the connection to CopyBoth (PostgreSQL 15's protocol
 * documentation, "Streaming Replication Protocol"; docs/POSTGRES.md, "Following a primary").
 * All integers are big-endian, unlike WAL itself. The CopyData framing is pg-copy-streams' job.
 *
 *   server → client  'w' XLogData           u64 start LSN of the bytes, u64 server WAL end,
 *                                            i64 send time, then WAL bytes
 *                    'k' primary keepalive  u64 server WAL end, i64 send time, u8 reply requested
 *   client → server  'r' standby status     u64 written, u64 flushed, u64 applied, i64 client time,
 *                                            u8 reply requested (34 bytes in all)
 *
 * Times are microseconds since 2000-01-01 00:00 UTC (PostgreSQL's epoch).
 */
import { StrataError } from '../errors';
import { formatLsn, type Lsn } from '../lsn';

const MSG_XLOG_DATA = 0x77; // 'w'
const MSG_KEEPALIVE = 0x6b; // 'k'
const MSG_STATUS_UPDATE = 0x72; // 'r'
const XLOG_DATA_HEADER_BYTES = 25;
const KEEPALIVE_BYTES = 18;
export const STATUS_UPDATE_BYTES = 34;
/** Milliseconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00 UTC). */
const PG_EPOCH_UNIX_MS = 946_684_800_000;

export interface XLogData {
  kind: 'xlogdata';
  /** LSN of the first byte of `wal`. */
  start: Lsn;
  /** The server's WAL end (flush position) when it sent this. */
  serverWalEnd: Lsn;
  /** Send time, µs since PostgreSQL's epoch. */
  sendTime: bigint;
  /** The WAL bytes: a view into the message. */
  wal: Buffer;
}

export interface Keepalive {
  kind: 'keepalive';
  serverWalEnd: Lsn;
  sendTime: bigint;
  /** The server wants a status update now (else it may end the connection at wal_sender_timeout). */
  replyRequested: boolean;
}

export type ReplicationMessage = XLogData | Keepalive;

/** One CopyData payload from the server. REPLICATION_LOST for a message this protocol does not have. */
export function parseReplicationMessage(msg: Buffer): ReplicationMessage {
  if (msg.length === 0) throw protocolError('an empty CopyData message');
  switch (msg[0]) {
    case MSG_XLOG_DATA:
      if (msg.length < XLOG_DATA_HEADER_BYTES) throw protocolError(`an XLogData message of ${msg.length} bytes (its header alone is ${XLOG_DATA_HEADER_BYTES})`);
      return {
        kind: 'xlogdata',
        start: msg.readBigUInt64BE(1),
        serverWalEnd: msg.readBigUInt64BE(9),
        sendTime: msg.readBigInt64BE(17),
        wal: msg.subarray(XLOG_DATA_HEADER_BYTES),
      };
    case MSG_KEEPALIVE:
      if (msg.length !== KEEPALIVE_BYTES) throw protocolError(`a keepalive message of ${msg.length} bytes (expected ${KEEPALIVE_BYTES})`);
      return { kind: 'keepalive', serverWalEnd: msg.readBigUInt64BE(1), sendTime: msg.readBigInt64BE(9), replyRequested: msg[17] !== 0 };
    default:
      throw protocolError(`a CopyData message of unknown type 0x${msg[0].toString(16)}`);
  }
}

export interface StandbyStatus {
  written: Lsn;
  flushed: Lsn;
  applied: Lsn;
  /** µs since PostgreSQL's epoch. */
  clientTime: bigint;
  replyRequested: boolean;
}

/** The 34-byte standby status update 'r'. */
export function encodeStatusUpdate(s: StandbyStatus): Buffer {
  const b = Buffer.alloc(STATUS_UPDATE_BYTES);
  b[0] = MSG_STATUS_UPDATE;
  b.writeBigUInt64BE(s.written, 1);
  b.writeBigUInt64BE(s.flushed, 9);
  b.writeBigUInt64BE(s.applied, 17);
  b.writeBigInt64BE(s.clientTime, 25);
  b[33] = s.replyRequested ? 1 : 0;
  return b;
}

/** Unix milliseconds as PostgreSQL's TimestampTz: µs since 2000-01-01 UTC. */
export function unixMsToPgMicros(ms: number): bigint {
  return BigInt(Math.round((ms - PG_EPOCH_UNIX_MS) * 1000));
}

/** Now, as PostgreSQL's TimestampTz. */
export function pgNowMicros(nowMs: number = Date.now()): bigint {
  return unixMsToPgMicros(nowMs);
}

/** A PostgreSQL TimestampTz as Unix milliseconds. */
export function pgMicrosToUnixMs(us: bigint): number {
  return Number(us / 1000n) + PG_EPOCH_UNIX_MS;
}

/** START_REPLICATION for a physical stream, optionally through a slot. */
export function startReplicationCommand(slotName: string | null, startLsn: Lsn, timeline: number): string {
  const slot = slotName === null ? '' : `SLOT ${slotName} `;
  return `START_REPLICATION ${slot}PHYSICAL ${formatLsn(startLsn)} TIMELINE ${timeline}`;
}

/** PostgreSQL's rule for slot names (ReplicationSlotValidateName): 1–63 of [a-z0-9_]. */
export const SLOT_NAME = /^[a-z0-9_]{1,63}$/;

function protocolError(what: string): StrataError {
  return new StrataError('REPLICATION_LOST', `replication protocol: the server sent ${what}`);
}
