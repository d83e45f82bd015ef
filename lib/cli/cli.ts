/**
 * The `strata` command-line tool for operators (bin/strata.js → dist/cli/cli.js). Human-readable
 * output by default, `--json` for scripts; every failure class has its own exit code (util.ts
 * EXIT, documented in README "CLI"). Inspection commands never modify the repository.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { BLOCK_SIZE } from '../core/format';
import { dumpLayer, type LayerDump } from './layer';
import { readTimelineManifest, requireRepository, scanTimelines, verifyRepository, type VerifyReport } from './repo';
import {
  CliError, type CliOnlyCode, describeHexKey, EXIT, exitCodeFor, formatBytes, hexDump, parseKeyArg, parseLsnArg, parseTimeArg, ProgressBar, table, type ExitCode,
} from './util';
import { MIN_PAGE_CACHE_PAGES } from '../core/core';
import { StrataError, type StrataErrorCode } from '../errors';
import { formatKey } from '../key';
import { formatLsn, LSN_MAX, type Lsn } from '../lsn';
import { runExportPg, runFollow, runImportPg, runIngestWal, runLsnAt, runRelations, runRelSize } from './pg';
import { runServe, runToken, type ServeOpts, type TokenOpts } from './serve';
import { type RemoteFlags, runAttach, runDetach, runRemoteStatus } from './remote';
import type { LayerDesc } from '../engine/manifest';
import { nativeInfo } from '../core/native';
import { Repository } from '../repository';
import type { Timeline } from '../timeline';
import { createCore, resolveImplementation, type ImplementationChoice } from '../core/select';

const USAGE = `Usage: strata <command> [options]

Commands:
  timelines <dir>                               tenants and timelines of a repository
  layers <dir> <tenant> <timeline>              a timeline's layers: kind, level, key/LSN ranges, size
  dump-layer <file> [--limit N | --all]         a layer file's summary, index stats and entries (default 20)
  get <dir> <tenant> <timeline> <key> <lsn>     one page as a hex dump, or raw with --out FILE
  verify <dir> [--progress | --no-progress]     check every layer's checksums and the manifests
  compact <dir> <tenant> <timeline> [--force]   L0 → L1 compaction and image creation; prints the report
  gc <dir> <tenant> <timeline> [--horizon N]    move the GC cutoff to lastRecordLsn − N (LSN bytes) and remove layers
  import-pg <dir> <tenant> <timeline> <datadir> a new timeline holding a shut-down PostgreSQL 15 cluster
  ingest-wal <dir> <tenant> <timeline> <waldir> [--start LSN] [--end LSN]
                                                store PostgreSQL WAL (pg_wal/ or an archive), then flush
  rel-size <dir> <tenant> <timeline> <spc/db/rel.fork> <lsn>
                                                a relation fork's size in blocks at the LSN
  relations <dir> <tenant> <timeline> <lsn> [--db OID]
                                                every relation fork that exists at the LSN, with its size
  lsn-at <dir> <tenant> <timeline> <time>       the LSN as of a time (ISO-8601 with a zone): present,
                                                past, future or nodata, and the LSN
  export-pg <dir> <tenant> <timeline> <datadir> --lsn LSN | --at TIME
                                                write a PostgreSQL 15 data directory holding the cluster
                                                at the LSN, or as of the time (the 'present' LSN of
                                                lsn-at); it starts as after a clean shutdown there
  follow <dir> <tenant> <timeline> --connection CONNINFO [--slot NAME] [--create-slot]
         [--start LSN] [--flush-interval MS] [--interval MS]
                                                stream WAL from a running PostgreSQL 15 primary until
                                                SIGINT/SIGTERM; status on stderr (--json: lines on stdout)
  serve [--data DIR] [--listen HOST:PORT] [--http HOST:PORT] [--auth-keys FILE | --no-auth]
        [--max-in-flight N] [--page-cache-bytes N] [--decoded-page-cache-bytes N] [--throttle-rate PAGES_PER_S --throttle-burst PAGES]
        [REMOTE]                                the page service (docs/PROTOCOL.md) until SIGTERM/SIGINT;
                                                defaults ./strata-data, 127.0.0.1:64000, auth on with a
                                                key pair generated in DIR/auth/ on first start; --http:
                                                the admin API and /metrics too; REMOTE: layers uploaded
                                                there, tenants attached and detached over the admin API
  token --signing-key FILE --tenant T [--scope pageserver|admin] [--ttl SECONDS]
                                                print a JWT for serve's auth
  remote status <dir> REMOTE                    per timeline: generation, stale?, diskConsistentLsn vs
                                                remoteConsistentLsn, what is not uploaded yet
  attach <dir> <tenant> [--generation N] REMOTE attach the tenant here (download it; next generation
                                                by compare-and-swap unless --generation)
  detach <dir> <tenant> REMOTE                  final flush and upload, then remove the tenant here
  version                                       package version and the native binding's details

REMOTE: --remote-path DIR | --s3-bucket B [--s3-endpoint URL] [--s3-region R] [--s3-prefix P] [--s3-path-style]
(S3 credentials from the AWS SDK's chain: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, profiles, roles)

Keys: spc/db/rel.fork#block (e.g. 1663/5/16384.0#0) or 36 hex digits. LSNs: X/Y (e.g. 0/16B3748) or 0x-hex.

Options:
  --json                 machine-readable output on stdout
  --impl native|ts|auto  the core to use (default: STRATA_IMPL, else auto)
  -h, --help             this text
`;

/** `follow`: a status line this often unless --interval says otherwise (ms). */
const DEFAULT_STATUS_INTERVAL_MS = 5_000;
/** setTimeout's limit: a longer delay fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const U16_MAX = 0xffff;
const U32_MAX = 0xffff_ffff;

const OPTIONS = {
  json: { type: 'boolean' },
  impl: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  limit: { type: 'string' },
  all: { type: 'boolean' },
  out: { type: 'string' },
  wait: { type: 'string' },
  progress: { type: 'boolean' },
  'no-progress': { type: 'boolean' },
  force: { type: 'boolean' },
  horizon: { type: 'string' },
  start: { type: 'string' },
  end: { type: 'string' },
  db: { type: 'string' },
  connection: { type: 'string' },
  slot: { type: 'string' },
  'create-slot': { type: 'boolean' },
  'flush-interval': { type: 'string' },
  interval: { type: 'string' },
  lsn: { type: 'string' },
  at: { type: 'string' },
  data: { type: 'string' },
  listen: { type: 'string' },
  'auth-keys': { type: 'string' },
  'no-auth': { type: 'boolean' },
  'max-in-flight': { type: 'string' },
  'page-cache-bytes': { type: 'string' },
  'decoded-page-cache-bytes': { type: 'string' },
  http: { type: 'string' },
  'throttle-rate': { type: 'string' },
  'throttle-burst': { type: 'string' },
  'signing-key': { type: 'string' },
  tenant: { type: 'string' },
  scope: { type: 'string' },
  ttl: { type: 'string' },
  generation: { type: 'string' },
  'remote-path': { type: 'string' },
  's3-bucket': { type: 'string' },
  's3-endpoint': { type: 'string' },
  's3-region': { type: 'string' },
  's3-prefix': { type: 'string' },
  's3-path-style': { type: 'boolean' },
} as const;

interface Opts {
  json: boolean;
  impl: ImplementationChoice | undefined;
  limit: number;
  out: string | undefined;
  waitMs: number;
  progress: boolean;
  force: boolean;
  horizon: bigint | undefined;
  startLsn: Lsn | undefined;
  endLsn: Lsn | undefined;
  dbOid: number | undefined;
  connection: string | undefined;
  slot: string | undefined;
  createSlot: boolean;
  flushIntervalMs: number | undefined;
  intervalMs: number;
  lsn: Lsn | undefined;
  at: Date | undefined;
  serve: ServeOpts;
  token: TokenOpts;
  remote: RemoteFlags;
}

/** Runs one command; resolves to the process exit code. Never throws. */
export async function main(argv: readonly string[]): Promise<number> {
  let json = argv.includes('--json');
  try {
    const { values, positionals } = parseCommandLine(argv);
    json = values.json === true;
    if (values.help === true) return print(USAGE);
    if (values.version === true) return runVersion(json);
    const [command, ...args] = positionals;
    if (command === undefined) throw new CliError(EXIT.USAGE, 'no command given');
    return await dispatch(command, args, toOpts(values));
  } catch (e) {
    return reportError(e, json);
  }
}

type Values = ReturnType<typeof parseCommandLine>['values'];

function parseCommandLine(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    // node:util's messages can run over several lines ("… is ambiguous.\nDid you forget …"): the error is one line.
    throw new CliError(EXIT.USAGE, oneLine((e as Error).message));
  }
}

function toOpts(v: Values): Opts {
  const impl = v.impl;
  if (impl !== undefined && impl !== 'native' && impl !== 'ts' && impl !== 'auto') {
    throw new StrataError('BAD_ARGUMENT', `--impl must be native, ts or auto: got ${JSON.stringify(impl)}`);
  }
  if (v.progress === true && v['no-progress'] === true) throw new CliError(EXIT.USAGE, '--progress and --no-progress contradict each other');
  const limit = v.all === true ? Number.MAX_SAFE_INTEGER : nonNegativeInt(v.limit, '--limit', 20);
  return {
    json: v.json === true,
    impl,
    limit,
    out: v.out,
    waitMs: nonNegativeInt(v.wait, '--wait', 0, MAX_TIMER_MS),
    // The bar redraws one line in place: only useful on a terminal unless asked for.
    progress: v.progress === true || (v['no-progress'] !== true && process.stderr.isTTY === true),
    force: v.force === true,
    horizon: v.horizon === undefined ? undefined : nonNegativeBigInt(v.horizon, '--horizon', LSN_MAX),
    startLsn: v.start === undefined ? undefined : parseLsnArg(v.start),
    endLsn: v.end === undefined ? undefined : parseLsnArg(v.end),
    dbOid: v.db === undefined ? undefined : nonNegativeInt(v.db, '--db', 0, U32_MAX),
    connection: v.connection,
    slot: v.slot,
    createSlot: v['create-slot'] === true,
    flushIntervalMs: v['flush-interval'] === undefined ? undefined : nonNegativeInt(v['flush-interval'], '--flush-interval', 0, MAX_TIMER_MS),
    intervalMs: nonNegativeInt(v.interval, '--interval', DEFAULT_STATUS_INTERVAL_MS, MAX_TIMER_MS),
    lsn: v.lsn === undefined ? undefined : parseLsnArg(v.lsn),
    at: v.at === undefined ? undefined : parseTimeArg(v.at),
    serve: {
      json: v.json === true,
      impl,
      data: v.data,
      listen: v.listen,
      authKeys: v['auth-keys'],
      noAuth: v['no-auth'] === true,
      maxInFlight: v['max-in-flight'] === undefined ? undefined : nonNegativeInt(v['max-in-flight'], '--max-in-flight', 0, U16_MAX),
      pageCacheBytes: v['page-cache-bytes'] === undefined ? undefined : nonNegativeInt(v['page-cache-bytes'], '--page-cache-bytes', 0),
      decodedPageCacheBytes: v['decoded-page-cache-bytes'] === undefined ? undefined : nonNegativeInt(v['decoded-page-cache-bytes'], '--decoded-page-cache-bytes', 0),
      http: v.http,
      throttleRate: v['throttle-rate'] === undefined ? undefined : positiveNumber(v['throttle-rate'], '--throttle-rate'),
      throttleBurst: v['throttle-burst'] === undefined ? undefined : nonNegativeInt(v['throttle-burst'], '--throttle-burst', 0),
    },
    token: {
      signingKey: v['signing-key'],
      tenant: v.tenant,
      scope: v.scope,
      ttlSeconds: v.ttl === undefined ? undefined : nonNegativeInt(v.ttl, '--ttl', 0),
    },
    remote: {
      remotePath: v['remote-path'], s3Bucket: v['s3-bucket'], s3Endpoint: v['s3-endpoint'], s3Region: v['s3-region'],
      s3Prefix: v['s3-prefix'], s3PathStyle: v['s3-path-style'] === true,
      generation: v.generation === undefined ? undefined : nonNegativeInt(v.generation, '--generation', 0, U32_MAX),
      json: v.json === true, impl,
    },
  };
}

function positiveNumber(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(n > 0)) throw new StrataError('BAD_ARGUMENT', `${what} takes a positive number: got ${JSON.stringify(text)}`);
  return n;
}

/**
 * A non-negative decimal integer up to `max` (default 2^53 − 1: above it a Number would round, so
 * `--generation 9007199254740993` would mean another generation and a timer delay above 2^31 − 1 ms
 * would fire at once).
 */
function nonNegativeInt(text: string | undefined, what: string, dflt: number, max = Number.MAX_SAFE_INTEGER): number {
  if (text === undefined) return dflt;
  return Number(nonNegativeBigInt(text, what, BigInt(max)));
}

function nonNegativeBigInt(text: string, what: string, max: bigint): bigint {
  // A malformed value is a bad argument (exit 3), like a malformed key or LSN; usage errors (2) are
  // unknown commands and options, missing values and wrong argument counts (README, "CLI").
  if (!/^\d+$/.test(text)) throw new StrataError('BAD_ARGUMENT', `${what} takes a non-negative integer: got ${JSON.stringify(text)}`);
  const n = BigInt(text);
  if (n > max) throw new StrataError('BAD_ARGUMENT', `${what} takes an integer in [0, ${max}]: got ${text}`);
  return n;
}

async function dispatch(command: string, args: string[], o: Opts): Promise<number> {
  switch (command) {
    case 'timelines': return runTimelines(arity(command, args, 1)[0], o);
    case 'layers': return runLayers(arity(command, args, 3), o);
    case 'dump-layer': return runDumpLayer(arity(command, args, 1)[0], o);
    case 'get': return runGet(arity(command, args, 5), o);
    case 'verify': return runVerify(arity(command, args, 1)[0], o);
    case 'compact': return runCompact(arity(command, args, 3), o);
    case 'gc': return runGc(arity(command, args, 3), o);
    case 'import-pg': return runImportPg(arity(command, args, 4), o, print, printJson);
    case 'ingest-wal': return runIngestWal(arity(command, args, 4), o, print, printJson);
    case 'rel-size': return runRelSize(arity(command, args, 5), o, print, printJson);
    case 'relations': return runRelations(arity(command, args, 4), o, print, printJson);
    case 'lsn-at': return runLsnAt(arity(command, args, 4), o, print, printJson);
    case 'export-pg': return runExportPg(arity(command, args, 4), o, print, printJson);
    case 'follow': return runFollow(arity(command, args, 3), o);
    case 'serve': return runServe(arity(command, args, 0), o.serve, o.remote);
    case 'token': return runToken(arity(command, args, 0), o.token);
    case 'remote':
      if (args[0] !== 'status') throw new CliError(EXIT.USAGE, `unknown remote subcommand ${JSON.stringify(args[0] ?? '')} (remote status <dir>)`);
      return runRemoteStatus(arity('remote status', args.slice(1), 1), o.remote, print, printJson);
    case 'attach': return runAttach(arity(command, args, 2), o.remote, print, printJson);
    case 'detach': return runDetach(arity(command, args, 2), o.remote, print, printJson);
    case 'version':
      arity(command, args, 0);
      return runVersion(o.json);
    default: throw new CliError(EXIT.USAGE, `unknown command ${JSON.stringify(command)}`);
  }
}

function arity(command: string, args: string[], n: number): string[] {
  if (args.length !== n) throw new CliError(EXIT.USAGE, `${command} takes ${n} argument${n === 1 ? '' : 's'}, got ${args.length}`);
  return args;
}

function print(text: string, code: ExitCode = EXIT.OK): number {
  process.stdout.write(text);
  return code;
}

function printJson(v: unknown, code: ExitCode = EXIT.OK): number {
  return print(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? formatLsn(x) : x), 2) + '\n', code);
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

function reportError(e: unknown, json: boolean): number {
  const code = exitCodeFor(e);
  const message = oneLine(e instanceof Error ? e.message : String(e));
  if (json) process.stdout.write(JSON.stringify({ error: { code: jsonErrorCode(e, code), message, exitCode: code } }) + '\n');
  process.stderr.write(`strata: ${message}\n`);
  if (code === EXIT.USAGE) process.stderr.write(`Run 'strata --help' for usage.\n`);
  // An unexpected error is a bug: the stack helps whoever reports it.
  if (code === EXIT.INTERNAL && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  return code;
}

/** A StrataError's or CliError's own code; for a bare OS error, the code of its exit class. */
function jsonErrorCode(e: unknown, exit: ExitCode): StrataErrorCode | CliOnlyCode {
  if (e instanceof StrataError || e instanceof CliError) return e.code;
  if (exit === EXIT.NOT_FOUND) return 'NOT_FOUND';
  if (exit === EXIT.IO_ERROR) return 'IO_ERROR';
  return 'INTERNAL';
}

function openCore(o: Opts) {
  return createCore(resolveImplementation(o.impl), { pageCacheBytes: MIN_PAGE_CACHE_PAGES * BLOCK_SIZE * 4 });
}

// ---- timelines / layers --------------------------------------------------------------------

function runTimelines(dir: string, o: Opts): number {
  requireRepository(dir);
  const rows = scanTimelines(dir).map((t) => {
    const m = t.manifest;
    if (m === null) return { tenantId: t.tenantId, timelineId: t.timelineId, error: t.error?.message ?? 'unreadable manifest' };
    return {
      tenantId: t.tenantId, timelineId: t.timelineId, ancestorTimelineId: m.ancestorTimelineId, ancestorLsn: m.ancestorLsn,
      startLsn: m.startLsn, diskConsistentLsn: m.diskConsistentLsn, compression: m.compression,
      layers: m.layers.length, sizeBytes: m.layers.reduce((s, l) => s + l.sizeBytes, 0),
    };
  });
  const code = rows.some((r) => 'error' in r) ? EXIT.CORRUPT : EXIT.OK;
  if (o.json) return printJson(rows, code);
  if (rows.length === 0) return print('no timelines\n', code);
  const body = rows.map((r) => ('error' in r)
    ? [r.tenantId, r.timelineId, 'ERROR', r.error ?? '', '', '', '']
    : [r.tenantId, r.timelineId, r.ancestorTimelineId === null ? '-' : `${r.ancestorTimelineId}@${formatLsn(r.ancestorLsn ?? 0n)}`,
      formatLsn(r.diskConsistentLsn), String(r.layers), formatBytes(r.sizeBytes), r.compression]);
  return print(table([['TENANT', 'TIMELINE', 'ANCESTOR', 'DISK_CONSISTENT_LSN', 'LAYERS', 'SIZE', 'CODEC'], ...body]), code);
}

function runLayers([dir, tenantId, timelineId]: string[], o: Opts): number {
  requireRepository(dir);
  const { manifest } = readTimelineManifest(dir, tenantId, timelineId);
  const layers = manifest.layers.map((l) => layerRow(l));
  if (o.json) return printJson(layers);
  if (layers.length === 0) return print(`${tenantId}/${timelineId}: no layers (diskConsistentLsn ${formatLsn(manifest.diskConsistentLsn)})\n`);
  const body = manifest.layers.map((l) => [
    l.kind, `L${l.level}`, `${describeHexKey(l.keyStart)}..${describeHexKey(l.keyEnd)}`,
    l.kind === 'image' ? `@${formatLsn(l.lsnStart)}` : `${formatLsn(l.lsnStart)}..${formatLsn(l.lsnEnd)}`, formatBytes(l.sizeBytes), l.fileName,
  ]);
  return print(table([['KIND', 'LEVEL', 'KEYS', 'LSNS', 'SIZE', 'FILE'], ...body]));
}

function layerRow(l: LayerDesc) {
  return {
    kind: l.kind, level: l.level, keyStart: l.keyStart, keyEnd: l.keyEnd, keyStartText: describeHexKey(l.keyStart), keyEndText: describeHexKey(l.keyEnd),
    lsnStart: l.lsnStart, lsnEnd: l.lsnEnd, sizeBytes: l.sizeBytes, fileName: l.fileName,
  };
}

// ---- dump-layer -----------------------------------------------------------------------------

function runDumpLayer(file: string, o: Opts): number {
  if (!fs.existsSync(file)) throw new CliError(EXIT.NOT_FOUND, `${file}: no such file`);
  const core = openCore(o);
  let dump: LayerDump;
  try {
    dump = dumpLayer(core, path.resolve(file), o.limit);
  } finally {
    core.close();
  }
  if (o.json) return printJson(dump);
  return print(formatDump(dump));
}

function formatDump(d: LayerDump): string {
  const s = d.summary;
  const codec = ['none', 'lz4', 'zstd'][s.codec] ?? String(s.codec);
  const lsns = s.kind === 'image' ? `@${formatLsn(s.lsnStart)}` : `${formatLsn(s.lsnStart)}..${formatLsn(s.lsnEnd)} (end exclusive)`;
  const st = d.stats;
  const lines = [
    `file        ${d.file}`,
    `kind        ${s.kind}, codec ${codec}, ${formatBytes(d.sizeBytes)} in ${s.totalBlocks} blocks`,
    `keys        ${describeHexKey(s.keyStart.toString('hex'))}..${describeHexKey(s.keyEnd.toString('hex'))}`,
    `lsns        ${lsns}`,
    `entries     ${st.entries} (${st.distinctKeys} pages): ${st.images} image, ${st.zeros} zero, ${st.patches} patch`,
    `values      ${s.valueBytes} bytes in ${d.index.valueBlocks} blocks; ${st.compressedBlobs} of ${st.entries} blobs compressed, records ${st.recordBytes} → stored ${st.storedBytes} bytes`,
    `index       height ${d.index.height}, ${d.index.leaves} leaves + ${d.index.internalNodes} internal nodes, fan-out ${d.index.fanout}, leaves ${(d.index.leafFill * 100).toFixed(1)}% full`,
    '',
  ];
  const rows = d.entries.map((e) => [
    e.key, e.lsn, e.record + (e.record === 'patch' ? ` @${e.patchOffset}+${e.patchLength}` : ''), e.willInit ? 'yes' : 'no',
    String(e.recordBytes), String(e.storedBytes) + (e.compressed ? ' (c)' : ''), String(e.valueOffset),
  ]);
  const more = d.truncated ? `… ${st.entries - d.entries.length} more entries (--limit N, --all)\n` : '';
  return lines.join('\n') + '\n' + table([['KEY', 'LSN', 'RECORD', 'WILL_INIT', 'BYTES', 'STORED', 'OFFSET'], ...rows]) + more;
}

// ---- get ------------------------------------------------------------------------------------

async function runGet([dir, tenantId, timelineId, keyText, lsnText]: string[], o: Opts): Promise<number> {
  const key = parseKeyArg(keyText);
  const lsn = parseLsnArg(lsnText);
  requireRepository(dir);
  // Reconstruction needs a Repository (timelines, ancestors, layer maps); a read-only open takes no
  // lock and touches nothing, so this works beside a live writer.
  const repo = await Repository.open(dir, { implementation: o.impl, readOnly: true });
  let page: Buffer;
  try {
    page = await repo.getTimeline(tenantId, timelineId).getPage(key, lsn, { timeoutMs: o.waitMs });
  } finally {
    await repo.close();
  }
  if (o.out !== undefined) fs.writeFileSync(o.out, page);
  if (o.json) {
    const base = { tenantId, timelineId, key: formatKey(key), lsn: formatLsn(lsn), implementation: repo.implementation, bytes: page.length };
    return printJson(o.out !== undefined ? { ...base, out: o.out } : { ...base, hex: page.toString('hex') });
  }
  if (o.out !== undefined) return print(`wrote ${page.length} bytes (${formatKey(key)} at ${formatLsn(lsn)}) to ${o.out}\n`);
  return print(hexDump(page));
}

// ---- compact / gc ---------------------------------------------------------------------------

/**
 * Open the repository for writing (REPOSITORY_LOCKED, exit 10, while another process has it
 * open), run `job` on one timeline, close (which flushes nothing: nothing was ingested).
 */
async function withTimeline<T>(dir: string, tenantId: string, timelineId: string, o: Opts, job: (tl: Timeline) => Promise<T>): Promise<T> {
  requireRepository(dir);
  const repo = await Repository.open(dir, { implementation: o.impl });
  try {
    return await job(repo.getTimeline(tenantId, timelineId));
  } finally {
    await repo.close();
  }
}

async function runCompact([dir, tenantId, timelineId]: string[], o: Opts): Promise<number> {
  const report = await withTimeline(dir, tenantId, timelineId, o, (tl) => tl.compact({ force: o.force }));
  if (o.json) return printJson(report);
  const lines = [
    `compacted ${report.l0Compacted.length} L0 layer(s) into ${report.layersCreated.length} L1 layer(s); ${report.imageLayersCreated.length} image layer(s) created`,
    `read ${formatBytes(report.bytesRead)}, wrote ${formatBytes(report.bytesWritten)}`,
    ...report.layersCreated.map((l) => `  + ${l.fileName}`),
    ...report.imageLayersCreated.map((l) => `  + ${l.fileName}`),
    ...report.layersRemoved.map((f) => `  - ${f}`),
  ];
  return print(lines.join('\n') + '\n');
}

async function runGc([dir, tenantId, timelineId]: string[], o: Opts): Promise<number> {
  const report = await withTimeline(dir, tenantId, timelineId, o, (tl) => tl.gc({ horizon: o.horizon }));
  if (o.json) return printJson(report);
  const lines = [
    `GC cutoff ${formatLsn(report.cutoffLsn)}: removed ${report.layersRemoved} layer(s), ${formatBytes(report.bytesRemoved)}`,
    ...report.removed.map((f) => `  - ${f}`),
  ];
  return print(lines.join('\n') + '\n');
}

// ---- verify ---------------------------------------------------------------------------------

function runVerify(dir: string, o: Opts): number {
  requireRepository(dir);
  const core = openCore(o);
  let report: VerifyReport;
  // The total is known only once the manifests are read, on the first progress call.
  const progress: { bar: ProgressBar | null } = { bar: null };
  try {
    report = verifyRepository(dir, core, (done, total, note) => {
      progress.bar ??= new ProgressBar(o.progress, 'verify', total, formatBytes);
      progress.bar.update(done, note, done === 0 || done === total);
    });
  } finally {
    progress.bar?.finish();
    core.close();
  }
  const code = report.ok ? EXIT.OK : EXIT.CORRUPT;
  if (o.json) return printJson({ ...report, implementation: core.implementation }, code);
  const lines = report.faults.map((f) => `FAULT ${f.message}`);
  lines.push(...report.orphans.map((f) => `orphan ${f} (crash leftover, not in any manifest; the next open deletes it)`));
  const verdict = report.ok ? 'ok' : `${report.faults.length} fault${report.faults.length === 1 ? '' : 's'}`;
  lines.push(`${verdict}: ${report.timelines} timelines, ${report.layersVerified}/${report.layers} layers verified (${report.entries} entries, ${formatBytes(report.bytes)}) with the ${core.implementation} core`);
  return print(lines.join('\n') + '\n', code);
}

// ---- version --------------------------------------------------------------------------------

function runVersion(json: boolean): number {
  const info = nativeInfo();
  if (json) return printJson(info);
  const native = info.loaded
    ? `native: ${info.file} (${info.source}${info.tags.length > 0 ? `, ${info.tags.join('.')}` : ''})`
    : `native: unavailable: ${info.error}`;
  const build = info.build === null ? '' : `build: ${JSON.stringify(info.build)}\n`;
  return print(`strata ${info.version} (${info.target}, node ${process.version})\n${native}\n${build}`);
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
