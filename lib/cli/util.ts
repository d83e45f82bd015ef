/**
 * Shared pieces of the `strata` CLI (cli.ts): exit codes, argument parsing for keys and LSNs,
 * human-readable formatting and the stderr progress bar.
 */
import { StrataError, type StrataErrorCode } from '../errors';
import { decodeKey, encodeKey, formatKey, keyFromHex, KEY_KIND_REL_PAGE, keyToHex, type PageKey } from '../key';
import { parseLsn, type Lsn } from '../lsn';

/** Exit codes, one per class of failure, so scripts can tell them apart (README, "CLI"). */
export const EXIT = {
  OK: 0,
  INTERNAL: 1,
  USAGE: 2,
  BAD_ARGUMENT: 3,
  NOT_FOUND: 4,
  CORRUPT: 5,
  IO_ERROR: 6,
  NATIVE_UNAVAILABLE: 7,
  LSN_TIMEOUT: 8,
  GC_CUTOFF: 9,
  LOCKED: 10,
  UNSUPPORTED: 11,
  REPLICATION: 12,
  SERVICE: 13,
  REMOTE: 14,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * The `code` of a --json error: a StrataError's code, `USAGE` for a command line the CLI cannot
 * run, `NOT_FOUND` for a file argument that does not exist, `INTERNAL` for a bug. README's CLI
 * section lists these; test/cli.test.ts checks every code it sees against that list.
 */
export const CLI_ONLY_CODES = ['USAGE', 'NOT_FOUND', 'INTERNAL'] as const;
export type CliOnlyCode = (typeof CLI_ONLY_CODES)[number];

/** A failure the CLI itself detects (usage, a missing file argument); carries its exit code. */
export class CliError extends Error {
  readonly code: CliOnlyCode;

  constructor(readonly exitCode: typeof EXIT.USAGE | typeof EXIT.NOT_FOUND, message: string) {
    super(message);
    this.name = 'CliError';
    this.code = exitCode === EXIT.USAGE ? 'USAGE' : 'NOT_FOUND';
  }
}

const EXIT_BY_CODE: Partial<Record<StrataErrorCode, ExitCode>> = {
  BAD_ARGUMENT: EXIT.BAD_ARGUMENT,
  BAD_RECORD: EXIT.BAD_ARGUMENT,
  TIMELINE_NOT_FOUND: EXIT.NOT_FOUND,
  PAGE_NOT_FOUND: EXIT.NOT_FOUND,
  CORRUPT_LAYER: EXIT.CORRUPT,
  CORRUPT_MANIFEST: EXIT.CORRUPT,
  IO_ERROR: EXIT.IO_ERROR,
  NATIVE_UNAVAILABLE: EXIT.NATIVE_UNAVAILABLE,
  LSN_TIMEOUT: EXIT.LSN_TIMEOUT,
  LSN_GC_CUTOFF: EXIT.GC_CUTOFF,
  NOT_A_REPOSITORY: EXIT.NOT_FOUND,
  REPOSITORY_LOCKED: EXIT.LOCKED,
  READ_ONLY: EXIT.LOCKED,
  WAL_CORRUPT: EXIT.CORRUPT,
  REDO_FAILED: EXIT.CORRUPT,
  WAL_UNSUPPORTED: EXIT.UNSUPPORTED,
  REL_NOT_FOUND: EXIT.NOT_FOUND,
  BAD_PG_DATADIR: EXIT.BAD_ARGUMENT,
  REPLICATION_AUTH: EXIT.REPLICATION,
  REPLICATION_MISMATCH: EXIT.REPLICATION,
  REPLICATION_SLOT: EXIT.REPLICATION,
  REPLICATION_LOST: EXIT.REPLICATION,
  AUTH_FAILED: EXIT.SERVICE,
  PROTOCOL_ERROR: EXIT.SERVICE,
  CONNECTION_CLOSED: EXIT.SERVICE,
  DEADLINE_EXCEEDED: EXIT.SERVICE,
  THROTTLED: EXIT.SERVICE,
  CIRCUIT_OPEN: EXIT.SERVICE,
  SERVER_ERROR: EXIT.SERVICE,
  REMOTE_ERROR: EXIT.REMOTE,
  REMOTE_NOT_FOUND: EXIT.REMOTE,
  REMOTE_PRECONDITION_FAILED: EXIT.REMOTE,
  STALE_GENERATION: EXIT.REMOTE,
};

export function exitCodeFor(e: unknown): ExitCode {
  if (e instanceof CliError) return e.exitCode;
  if (e instanceof StrataError) return EXIT_BY_CODE[e.code] ?? EXIT.INTERNAL;
  const errno = (e as { code?: unknown } | null)?.code;
  if (errno === 'ENOENT' || errno === 'ENOTDIR') return EXIT.NOT_FOUND;
  if (typeof errno === 'string' && errno.startsWith('E')) return EXIT.IO_ERROR;
  return EXIT.INTERNAL;
}

const HUMAN_KEY = /^(\d+)\/(\d+)\/(\d+)\.(\d+)#(\d+)$/;

/** A page key as `spc/db/rel.fork#block` (formatKey's form) or 36 hex digits (file names, manifests). */
export function parseKeyArg(text: string): PageKey {
  const m = HUMAN_KEY.exec(text);
  if (m) {
    const key: PageKey = { spcOid: Number(m[1]), dbOid: Number(m[2]), relNumber: Number(m[3]), forkNum: Number(m[4]), blockNum: Number(m[5]) };
    encodeKey(key); // range-checks every field
    return key;
  }
  if (/^[0-9A-Fa-f]{36}$/.test(text)) return decodeKey(keyFromHex(text));
  throw new StrataError('BAD_ARGUMENT', `not a page key: ${JSON.stringify(text)} (use spc/db/rel.fork#block or 36 hex digits)`);
}

/** An LSN in PostgreSQL's `X/Y` form or as 0x-prefixed hex. */
export function parseLsnArg(text: string): Lsn {
  if (/^0x[0-9A-Fa-f]{1,16}$/.test(text)) return BigInt(text);
  if (text.includes('/')) return parseLsn(text);
  throw new StrataError('BAD_ARGUMENT', `not an LSN: ${JSON.stringify(text)} (use X/Y, e.g. 0/16B3748, or 0x-hex)`);
}

/**
 * ISO-8601 date and time with an explicit zone: `YYYY-MM-DD[T| ]HH:MM[:SS[.fraction]]` then `Z`,
 * `±HH`, `±HHMM` or `±HH:MM` (so psql's `2026-12-01 10:30:37.123456+00` works). A zone is required:
 * without one, "10:30" is the reader's local time to some and UTC to others.
 */
const TIME_ARG = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)$/i;
const MS_PER_MINUTE = 60_000;
const MAX_ZONE_HOURS = 15;

/**
 * A time argument (`lsn-at`; issue 10's `export-pg --at`) as a Date. Fractions of a second beyond
 * milliseconds are truncated, a Date's precision. Anything else — no zone, an impossible date
 * (February 30, hour 24), free text Date.parse would guess at — is BAD_ARGUMENT (exit 3).
 */
export function parseTimeArg(text: string): Date {
  const bad = (why: string): StrataError => new StrataError('BAD_ARGUMENT',
    `not a time: ${JSON.stringify(text)}: ${why} (use ISO-8601 with a zone, e.g. 2026-12-01T10:30:00Z or '2026-12-01 10:30:00.123+01')`);
  const m = TIME_ARG.exec(text.trim());
  if (m === null) {
    const zoneless = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$/i.test(text.trim());
    throw bad(zoneless ? 'it has no zone (Z or ±HH:MM)' : 'not ISO-8601');
  }
  const [year, month, day, hour, minute] = [m[1], m[2], m[3], m[4], m[5]].map(Number);
  const second = m[6] === undefined ? 0 : Number(m[6]);
  const ms = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) throw bad('a field is out of range');
  const local = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const check = new Date(local);
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) throw bad(`${m[1]}-${m[2]} has no day ${m[3]}`);
  let offsetMinutes = 0;
  const zone = m[8].toUpperCase();
  if (zone !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const zh = Number(digits.slice(0, 2));
    const zm = digits.length > 2 ? Number(digits.slice(2)) : 0;
    if (zh > MAX_ZONE_HOURS || zm > 59) throw bad(`zone ${m[8]} is out of range`);
    offsetMinutes = (zone[0] === '-' ? -1 : 1) * (zh * 60 + zm);
  }
  return new Date(local - offsetMinutes * MS_PER_MINUTE);
}

/** `spc/db/rel.fork#block` for relation-page keys; hex for the reserved kinds and range bounds like KEY_MAX. */
export function describeKey(key: Uint8Array): string {
  return key[0] === KEY_KIND_REL_PAGE ? formatKey(decodeKey(key)) : keyToHex(key);
}

/** A key-range bound from a manifest (36 hex digits), readable when it is a page key. */
export function describeHexKey(hex: string): string {
  return /^[0-9A-Fa-f]{36}$/.test(hex) ? describeKey(Buffer.from(hex, 'hex')) : hex;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** Left-aligned columns, as `column -t` prints them; the header row is the first. */
export function table(rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return '';
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ')).join('\n') + '\n';
}

const HEX_LINE = 16;

/**
 * `hexdump -C` style: offset, 16 bytes in hex, printable ASCII. Runs of identical lines collapse to
 * `*` as hexdump does; an all-zero 8 KB page would otherwise print 512 identical lines.
 */
export function hexDump(data: Uint8Array): string {
  const out: string[] = [];
  let prev: string | null = null;
  let starred = false;
  for (let off = 0; off < data.length; off += HEX_LINE) {
    const chunk = data.subarray(off, Math.min(off + HEX_LINE, data.length));
    const hex = Buffer.from(chunk).toString('hex');
    if (hex === prev && off + HEX_LINE < data.length) {
      if (!starred) out.push('*');
      starred = true;
      continue;
    }
    prev = hex;
    starred = false;
    const bytes = [...chunk].map((b) => b.toString(16).padStart(2, '0'));
    const left = bytes.slice(0, 8).join(' ').padEnd(23);
    const right = bytes.slice(8).join(' ').padEnd(23);
    const ascii = [...chunk].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    out.push(`${off.toString(16).padStart(8, '0')}  ${left}  ${right}  |${ascii}|`);
  }
  out.push(data.length.toString(16).padStart(8, '0'));
  return out.join('\n') + '\n';
}

/** A one-line progress bar redrawn in place on stderr; a no-op when disabled. */
export class ProgressBar {
  private lastDraw = 0;

  constructor(private readonly enabled: boolean, private readonly label: string, private readonly total: number, private readonly unit: (n: number) => string) {}

  update(done: number, note: string, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    // Redrawing at most 10 times a second keeps a fast run from being slowed by the terminal.
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const width = 30;
    const frac = this.total === 0 ? 1 : Math.min(1, done / this.total);
    const filled = Math.round(frac * width);
    const bar = '#'.repeat(filled) + '.'.repeat(width - filled);
    const pct = `${Math.floor(frac * 100)}%`.padStart(4);
    process.stderr.write(`\r${this.label} [${bar}] ${pct} ${this.unit(done)}/${this.unit(this.total)} ${note}\x1b[K`);
  }

  finish(): void {
    if (this.enabled) process.stderr.write('\n');
  }
}
