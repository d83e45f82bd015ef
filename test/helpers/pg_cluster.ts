/**
 * Throw-away PostgreSQL 15 clusters for the PostgreSQL tests of issue 14 (docs/POSTGRES.md, "Oracle
 * tests: how they run").
 *
 * API:
 * - `pgAvailability(): { ok, reason }` — whether the tools in /usr/lib/postgresql/15/bin (or
 *   STRATA_PG_BIN) can run here; a test that needs PostgreSQL is skipped with `reason` when not ok.
 * - `PgCluster.create(options)` — initdb into a new temp dir (chowned to `postgres` when we are root),
 *   with settings for deterministic oracle tests (`DEFAULT_SETTINGS`); `PgCluster.copyOf(dataDir)` —
 *   a cluster on a copy of a stopped data dir; then `start()`, `stop(mode)`,
 *   `sql(db, text)` → rows, `exec(db, script)`, `pgbench(args)`, `checkpoint()`,
 *   `currentWalInsertLsn()`, `controlData()`, `databases()`, `relations(db)`, `runUntilExit(ms)`
 *   (a foreground postmaster, e.g. a recovery that shuts down at its target), `destroy()`;
 *   `dataDir`, `walDir`, `rootDir`, `port`, `socketDir`.
 *
 * Every program runs as the `postgres` OS user when the test process is root (PostgreSQL refuses
 * root; `runuser -u postgres --`), else as the current user. SQL goes through `psql -At` with ASCII
 * unit/record separators rather than the `pg` npm client: psql is PostgreSQL's own client, is
 * always there when the server is, adds no dependency to the lockfile, and runs multi-statement
 * scripts (CREATE DATABASE cannot run inside the implicit transaction of a one-string query). A
 * call costs a process start (≈ 20 ms); the tests make tens, not thousands.
 *
 * No postmaster outlives the test process: a running cluster is stopped (`immediate`) from a
 * process 'exit' handler, and a detached watchdog shell stops it when the test process disappears
 * without running handlers (SIGKILL). Tests should still `destroy()` in afterAll.
 */
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import type { Lsn } from '../../lib/lsn';
import { parseLsn } from '../../lib/lsn';

export const PG_MAJOR = 15;
export const PG_BIN_DIR = process.env.STRATA_PG_BIN ?? `/usr/lib/postgresql/${PG_MAJOR}/bin`;
/** Every tool these helpers run; scripts/pg/ensure-postgres.js checks the same list. */
const PG_TOOLS = ['postgres', 'initdb', 'pg_ctl', 'psql', 'pgbench', 'pg_controldata', 'pg_waldump', 'pg_amcheck', 'pg_basebackup'] as const;
export type PgTool = (typeof PG_TOOLS)[number];
/** Written by scripts/pg/ensure-postgres.js: the reason an install did not happen or failed. */
const ENSURE_STATUS_FILE = path.join(os.tmpdir(), 'strata-pg-ensure.json');
const PG_OS_USER = 'postgres';

/** Tablespace oids of PostgreSQL's two built-in tablespaces (pg_tablespace.dat). */
export const DEFAULTTABLESPACE_OID = 1663;
export const GLOBALTABLESPACE_OID = 1664;

/** psql output separators: ASCII unit and record separators never occur in our data. */
const FIELD_SEP = '\x1f';
const RECORD_SEP = '\x1e';
/** How psql prints NULL (`-P null=…`); mapped back to null. */
const NULL_MARK = '\x1aNULL';

/** pg_ctl waits this long for the server to start or stop (seconds). */
const PG_CTL_WAIT_S = 120;
/** Ports tried before start() gives up when the chosen free port was taken meanwhile. */
const START_ATTEMPTS = 3;
/** How often runUntilExit looks for postmaster.pid to arm the watchdog (ms). */
const WATCHDOG_ARM_POLL_MS = 100;

export interface PgAvailability {
  ok: boolean;
  /** Why not (for the skip message), or what was found. */
  reason: string;
}

export interface PgClusterOptions {
  /** initdb --data-checksums. Default false. */
  dataChecksums?: boolean;
  /** wal_compression. Default 'off'. */
  walCompression?: 'off' | 'pglz' | 'lz4' | 'zstd';
  /** wal_consistency_checking, e.g. 'heap,heap2,btree'. Default '' (off). */
  walConsistencyChecking?: string;
  /** More postgresql.conf settings; they override the defaults. */
  extraConf?: Record<string, string>;
  /** Directory the cluster's temp dir is made in. Default os.tmpdir(). Must be traversable by postgres. */
  parentDir?: string;
}

/**
 * Settings for deterministic oracle tests. Nothing runs in the background that writes pages on its
 * own (autovacuum off), no checkpoint happens unless asked for (long timeout, huge max_wal_size) and
 * no WAL segment is removed or recycled (wal_keep_size), so `pg_wal/` holds all WAL since initdb.
 * fsync off: a crash of the test machine may lose the cluster, which is thrown away anyway.
 */
export const DEFAULT_SETTINGS: Readonly<Record<string, string>> = {
  wal_level: 'replica',
  full_page_writes: 'on',
  autovacuum: 'off',
  fsync: 'off',
  synchronous_commit: 'on',
  max_wal_size: "'64GB'",
  min_wal_size: "'32MB'",
  wal_keep_size: "'64GB'",
  checkpoint_timeout: "'1d'",
  max_connections: '20',
  // The workload prepares transactions (two-phase commit records, a lock on a prepared update).
  max_prepared_transactions: '4',
  shared_buffers: "'64MB'",
  logging_collector: 'off',
  log_min_messages: 'warning',
  log_checkpoints: 'off',
  // The postmaster's cwd-relative stats file would land in the data dir anyway; keep the default.
};

/** pg_controldata's fields the tests use, typed; every line is also in `raw`. */
export interface PgControlData {
  /** "Database cluster state", e.g. 'shut down', 'in production'. */
  state: string;
  systemIdentifier: string;
  /** "Latest checkpoint location": start LSN of the latest checkpoint record. */
  checkpointLsn: Lsn;
  /** "Latest checkpoint's REDO location". */
  redoLsn: Lsn;
  timeLineId: number;
  fullPageWrites: boolean;
  /** "Data page checksum version": 0 = no checksums, 1 = checksums on. */
  dataChecksumVersion: number;
  walLogHints: boolean;
  walLevel: string;
  blockSize: number;
  walBlockSize: number;
  walSegmentSize: number;
  blocksPerSegment: number;
  nextXid: string;
  nextOid: number;
  raw: Record<string, string>;
}

export interface PgDatabase {
  oid: number;
  name: string;
  /** dattablespace: the database's default tablespace. */
  spcOid: number;
  allowConnections: boolean;
  isTemplate: boolean;
}

/** One relation with storage, as the oracle needs it to find and mask its files. */
export interface PgRelation {
  /** Name of the database it was listed in (shared relations appear in every database's list). */
  dbName: string;
  oid: number;
  nspname: string;
  relname: string;
  /** 'r' table, 'i' index, 't' TOAST, 'S' sequence, 'm' matview, … */
  relkind: string;
  /** 'p' permanent, 'u' unlogged, 't' temporary. */
  relpersistence: string;
  /** pg_am.amname: 'heap', 'btree', 'hash', 'gist', …; '' when relam is 0 (sequences). */
  am: string;
  /** pg_relation_filenode(oid): mapped catalogs (pg_class, …) included. */
  relNumber: number;
  /** reltablespace resolved: the database's default tablespace when 0, 1664 for shared relations. */
  spcOid: number;
  /** 0 for shared relations (global/). */
  dbOid: number;
  shared: boolean;
  /** pg_relation_filepath(oid): main fork path relative to the data dir, e.g. 'base/5/16384'. */
  path: string;
}

export type StopMode = 'smart' | 'fast' | 'immediate';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

interface OsUser {
  uid: number;
  gid: number;
}

// ---------------------------------------------------------------------------------------------
// Availability

let cachedAvailability: PgAvailability | null = null;

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function lookupOsUser(name: string): OsUser | null {
  try {
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === name && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch {
    return null;
  }
  return null;
}

function findRunuser(): string | null {
  for (const p of ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser', '/bin/runuser']) {
    if (fs.existsSync(p)) return p;
  }
  return null;
}

function ensureScriptReason(): string {
  try {
    const s = JSON.parse(fs.readFileSync(ENSURE_STATUS_FILE, 'utf8')) as { ok?: boolean; reason?: string };
    return s.ok === false && typeof s.reason === 'string' ? ` (ensure-postgres: ${s.reason})` : '';
  } catch {
    return '';
  }
}

function deriveAvailability(): PgAvailability {
  if ((process.env.STRATA_PG ?? '').toLowerCase() === 'off') return { ok: false, reason: 'disabled by STRATA_PG=off' };
  if (process.platform !== 'linux')
    return { ok: false, reason: `PostgreSQL tests run on Linux only (this is ${process.platform})` };
  const missing = PG_TOOLS.filter((t) => !fs.existsSync(path.join(PG_BIN_DIR, t)));
  if (missing.length > 0) {
    return {
      ok: false,
      reason: `PostgreSQL ${PG_MAJOR} not installed (${missing.join(', ')} missing in ${PG_BIN_DIR})${ensureScriptReason()}`,
    };
  }
  if (isRoot()) {
    if (!lookupOsUser(PG_OS_USER))
      return { ok: false, reason: `running as root and there is no '${PG_OS_USER}' OS user to run PostgreSQL as` };
    if (!findRunuser()) return { ok: false, reason: 'running as root and runuser(1) is missing' };
  }
  const v = spawnSync(path.join(PG_BIN_DIR, 'postgres'), ['--version'], { encoding: 'utf8', env: pgEnv() });
  const version = (v.stdout ?? '').trim();
  if (v.status !== 0 || !new RegExp(`\\) ${PG_MAJOR}\\.`).test(version)) {
    return {
      ok: false,
      reason: `${PG_BIN_DIR}/postgres is not PostgreSQL ${PG_MAJOR}: ${version || v.stderr || String(v.error)}`,
    };
  }
  return { ok: true, reason: version };
}

/** Whether PostgreSQL 15 can run here; computed once per process. */
export function pgAvailability(): PgAvailability {
  cachedAvailability ??= deriveAvailability();
  return cachedAvailability;
}

/** `postgres --version` of the tools used, e.g. 'postgres (PostgreSQL) 15.18 (Debian …)'. */
export function pgVersionString(): string {
  const a = pgAvailability();
  if (!a.ok) throw new Error(`PostgreSQL unavailable: ${a.reason}`);
  return a.reason;
}

// ---------------------------------------------------------------------------------------------
// Running programs as the postgres user

/** The command line that runs `tool` as the right user. */
function commandFor(tool: PgTool, args: readonly string[]): { file: string; argv: string[] } {
  const exe = path.join(PG_BIN_DIR, tool);
  if (!isRoot()) return { file: exe, argv: [...args] };
  const runuser = findRunuser();
  if (!runuser) throw new Error('runuser(1) is missing');
  return { file: runuser, argv: ['-u', PG_OS_USER, '--', exe, ...args] };
}

/**
 * Environment for PostgreSQL's tools: no PG* variables from the caller leak in; C locale. Nor the
 * sanitizer runtime `npm run test:asan` preloads into Node: PostgreSQL is not built for it, and
 * `postgres --version` hangs with it preloaded.
 */
export function pgEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PG') && k !== 'LD_PRELOAD' && k !== 'ASAN_OPTIONS') env[k] = v;
  }
  env.LC_ALL = 'C';
  env.LANG = 'C';
  delete env.LANGUAGE;
  return env;
}

/** Runs a PostgreSQL tool to completion; rejects with its stderr when it exits with a code not in okCodes ([0]). */
export function runPgTool(
  tool: PgTool,
  args: readonly string[],
  opts: { cwd?: string; input?: string; okCodes?: readonly number[] } = {},
): Promise<RunResult> {
  const okCodes = opts.okCodes ?? [0];
  const { file, argv } = commandFor(tool, args);
  return new Promise((resolve, reject) => {
    const stdin = opts.input === undefined ? 'ignore' : 'pipe';
    const child = spawn(file, argv, { cwd: opts.cwd ?? os.tmpdir(), env: pgEnv(), stdio: [stdin, 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const r: RunResult = {
        code: code ?? -1,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (code !== null && okCodes.includes(code)) resolve(r);
      else
        reject(
          new Error(
            `${tool} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${r.stderr.trim() || r.stdout.trim()}`,
          ),
        );
    });
    if (child.stdin) {
      // A child that exits before reading its input closes the pipe: its exit code tells what happened.
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input);
    }
  });
}

/** Synchronous variant, for the exit handler only. */
function runPgToolSync(tool: PgTool, args: readonly string[]): void {
  const { file, argv } = commandFor(tool, args);
  spawnSync(file, argv, { cwd: os.tmpdir(), env: pgEnv(), stdio: 'ignore', timeout: PG_CTL_WAIT_S * 1000 });
}

/** Gives a path to the postgres user (recursively) when we are root; no-op otherwise. */
export function chownToPostgres(p: string): void {
  if (!isRoot()) return;
  const u = lookupOsUser(PG_OS_USER);
  if (!u) throw new Error(`no '${PG_OS_USER}' OS user`);
  const walk = (q: string): void => {
    fs.lchownSync(q, u.uid, u.gid);
    if (fs.lstatSync(q).isDirectory()) for (const e of fs.readdirSync(q)) walk(path.join(q, e));
  };
  walk(p);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** sizeof(sockaddr_un.sun_path) − 1: PostgreSQL refuses a longer socket path ("is too long"). */
const MAX_SOCKET_PATH = 107;
/** The socket file PostgreSQL makes in its socket dir, at the longest port. */
const SOCKET_FILE_NAME_MAX = '/.s.PGSQL.65535'.length;

/**
 * rootDir/sock when the socket path fits, else a short temp dir of its own (a cluster made in a deep
 * directory, e.g. a fixture build under a long TMPDIR); destroy() removes either.
 */
function makeSocketDir(rootDir: string): string {
  const fits = (dir: string): boolean => dir.length + SOCKET_FILE_NAME_MAX <= MAX_SOCKET_PATH;
  const inRoot = path.join(rootDir, 'sock');
  if (fits(inRoot)) {
    fs.mkdirSync(inRoot, { recursive: true });
    return inRoot;
  }
  for (const base of [os.tmpdir(), '/tmp']) {
    const prefix = path.join(base, 'strata-sock-');
    if (fits(`${prefix}XXXXXX`)) return fs.mkdtempSync(prefix);
  }
  throw new Error(`no directory short enough for a unix socket (${MAX_SOCKET_PATH} bytes) near ${rootDir}`);
}

// ---------------------------------------------------------------------------------------------
// Orphan protection

const running = new Set<PgCluster>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of running) c.stopSync();
  });
}

/**
 * A detached shell that outlives a SIGKILLed test process by at most a second: it polls our pid and
 * the postmaster.pid file, and stops the server (immediate) when we are gone but the server is not.
 */
function spawnWatchdog(dataDir: string): void {
  const { file, argv } = commandFor('pg_ctl', ['-D', dataDir, 'stop', '-m', 'immediate', '-w']);
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const pidFile = path.join(dataDir, 'postmaster.pid');
  const script =
    `while kill -0 ${process.pid} 2>/dev/null && [ -f ${q(pidFile)} ]; do sleep 1; done; ` +
    `if [ -f ${q(pidFile)} ]; then ${[file, ...argv].map(q).join(' ')} >/dev/null 2>&1; fi`;
  const child = spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore', env: pgEnv() });
  child.unref();
}

// ---------------------------------------------------------------------------------------------
// Parsing

function parseControlData(text: string): PgControlData {
  const raw: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) raw[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  const get = (k: string): string => {
    const v = raw[k];
    if (v === undefined) throw new Error(`pg_controldata: no "${k}" line`);
    return v;
  };
  return {
    state: get('Database cluster state'),
    systemIdentifier: get('Database system identifier'),
    checkpointLsn: parseLsn(get('Latest checkpoint location')),
    redoLsn: parseLsn(get("Latest checkpoint's REDO location")),
    timeLineId: Number(get("Latest checkpoint's TimeLineID")),
    fullPageWrites: get("Latest checkpoint's full_page_writes") === 'on',
    dataChecksumVersion: Number(get('Data page checksum version')),
    walLogHints: get('wal_log_hints setting') === 'on',
    walLevel: get('wal_level setting'),
    blockSize: Number(get('Database block size')),
    walBlockSize: Number(get('WAL block size')),
    walSegmentSize: Number(get('Bytes per WAL segment')),
    blocksPerSegment: Number(get('Blocks per segment of large relation')),
    nextXid: get("Latest checkpoint's NextXID"),
    nextOid: Number(get("Latest checkpoint's NextOID")),
    raw,
  };
}

/** pg_controldata of any data dir (running or not). */
export async function readControlData(dataDir: string): Promise<PgControlData> {
  const r = await runPgTool('pg_controldata', ['-D', dataDir]);
  return parseControlData(r.stdout);
}

function confValue(v: string): string {
  return /^'.*'$/.test(v) || /^[A-Za-z0-9_.-]+$/.test(v) ? v : `'${v.replace(/'/g, "''")}'`;
}

// ---------------------------------------------------------------------------------------------
// The cluster

export class PgCluster {
  /** The temp dir holding everything: data/, sock/ (unless its path is too long), postgres.log. */
  readonly rootDir: string;
  readonly dataDir: string;
  /** Unix socket directory: rootDir/sock, or a short temp dir of its own when that path is too long. */
  readonly socketDir: string;
  readonly logFile: string;
  readonly options: Readonly<PgClusterOptions>;
  private portNumber = 0;
  private isRunning = false;

  private constructor(rootDir: string, options: PgClusterOptions) {
    this.rootDir = rootDir;
    this.dataDir = path.join(rootDir, 'data');
    this.socketDir = makeSocketDir(rootDir);
    this.logFile = path.join(rootDir, 'postgres.log');
    this.options = { ...options };
  }

  /** `dataDir/pg_wal`. */
  get walDir(): string {
    return path.join(this.dataDir, 'pg_wal');
  }

  /** The TCP port on 127.0.0.1 while running (0 before the first start). */
  get port(): number {
    return this.portNumber;
  }

  get running(): boolean {
    return this.isRunning;
  }

  /** initdb into a new temp dir with DEFAULT_SETTINGS plus the options. Not started. */
  static async create(options: PgClusterOptions = {}): Promise<PgCluster> {
    const avail = pgAvailability();
    if (!avail.ok) throw new Error(`PostgreSQL unavailable: ${avail.reason}`);
    const parent = options.parentDir ?? os.tmpdir();
    const root = fs.mkdtempSync(path.join(parent, 'strata-pg-'));
    const c = new PgCluster(root, options);
    try {
      chownToPostgres(root);
      chownToPostgres(c.socketDir);
      const args = [
        '-D',
        c.dataDir,
        '-N',
        '-A',
        'trust',
        '-U',
        'postgres',
        '--locale=C',
        '-E',
        'UTF8',
        '--no-instructions',
      ];
      if (options.dataChecksums) args.push('--data-checksums');
      await runPgTool('initdb', args, { cwd: root });
      const settings: Record<string, string> = {
        ...DEFAULT_SETTINGS,
        wal_compression: options.walCompression ?? 'off',
        ...(options.walConsistencyChecking ? { wal_consistency_checking: `'${options.walConsistencyChecking}'` } : {}),
        ...(options.extraConf ?? {}),
      };
      const text = Object.entries(settings)
        .map(([k, v]) => `${k} = ${confValue(v)}`)
        .join('\n');
      // Appended last so it wins over initdb's lines; the file stays the postgres user's.
      fs.appendFileSync(
        path.join(c.dataDir, 'postgresql.conf'),
        `\n# strata test settings (test/helpers/pg_cluster.ts)\n${text}\n`,
      );
    } catch (e) {
      fs.rmSync(root, { recursive: true, force: true });
      fs.rmSync(c.socketDir, { recursive: true, force: true });
      throw e;
    }
    return c;
  }

  /**
   * A new cluster on a copy of a stopped data dir (a fixture's base/ or final/), in a new temp dir,
   * with `extraConf` appended to its postgresql.conf (e.g. restore_command for a standby). Not
   * started; `destroy()` deletes the copy, never the source.
   */
  static async copyOf(
    sourceDataDir: string,
    options: Pick<PgClusterOptions, 'extraConf' | 'parentDir'> = {},
  ): Promise<PgCluster> {
    const avail = pgAvailability();
    if (!avail.ok) throw new Error(`PostgreSQL unavailable: ${avail.reason}`);
    const root = fs.mkdtempSync(path.join(options.parentDir ?? os.tmpdir(), 'strata-pg-'));
    const c = new PgCluster(root, options);
    try {
      chownToPostgres(c.socketDir);
      await fs.promises.cp(sourceDataDir, c.dataDir, { recursive: true, preserveTimestamps: true });
      fs.rmSync(path.join(c.dataDir, 'postmaster.pid'), { force: true });
      fs.chmodSync(c.dataDir, 0o700); // PostgreSQL refuses a data dir others can read
      const text = Object.entries(options.extraConf ?? {})
        .map(([k, v]) => `${k} = ${confValue(v)}`)
        .join('\n');
      fs.appendFileSync(path.join(c.dataDir, 'postgresql.conf'), `\n# strata test settings (copyOf)\n${text}\n`);
      chownToPostgres(root);
    } catch (e) {
      fs.rmSync(root, { recursive: true, force: true });
      fs.rmSync(c.socketDir, { recursive: true, force: true });
      throw e;
    }
    return c;
  }

  /**
   * Starts the server on a free port of 127.0.0.1 (or `port`, e.g. the one it had, for a restart a
   * client should find again) and the socket dir; waits until it accepts connections.
   */
  async start(options: { port?: number } = {}): Promise<void> {
    if (this.isRunning) return;
    let lastError: unknown = null;
    for (let attempt = 0; attempt < (options.port === undefined ? START_ATTEMPTS : 1); attempt++) {
      const port = options.port ?? (await freePort());
      const opts = `-p ${port} -k ${this.socketDir} -c listen_addresses=127.0.0.1`;
      try {
        await runPgTool(
          'pg_ctl',
          ['-D', this.dataDir, '-l', this.logFile, '-w', '-t', String(PG_CTL_WAIT_S), '-o', opts, 'start'],
          { cwd: this.rootDir },
        );
        this.portNumber = port;
        this.isRunning = true;
        running.add(this);
        installExitHook();
        spawnWatchdog(this.dataDir);
        return;
      } catch (e) {
        lastError = e;
        // pg_ctl may leave a half-started server when the port was taken: make sure it is gone.
        this.stopSync();
      }
    }
    throw new Error(`could not start PostgreSQL in ${this.dataDir}: ${String(lastError)}\n${this.logTail()}`);
  }

  /**
   * Runs the postmaster in the foreground until it exits by itself — e.g. an archive recovery with
   * recovery_target_action = 'shutdown' — for at most `timeoutMs`; resolves with its exit code and
   * leaves its log in `logFile`. Only the unix socket listens. Guarded against orphans like start().
   */
  async runUntilExit(timeoutMs: number): Promise<number> {
    if (this.isRunning) throw new Error(`cluster ${this.dataDir} is already running`);
    const port = await freePort();
    const args = ['-D', this.dataDir, '-p', String(port), '-k', this.socketDir, '-c', 'listen_addresses='];
    const { file, argv } = commandFor('postgres', args);
    const log = fs.openSync(this.logFile, 'a');
    const child = spawn(file, argv, { cwd: this.rootDir, env: pgEnv(), stdio: ['ignore', log, log] });
    fs.closeSync(log);
    this.isRunning = true;
    running.add(this);
    installExitHook();
    const pidFile = path.join(this.dataDir, 'postmaster.pid');
    let watched = false;
    const poll = setInterval(() => {
      if (!watched && fs.existsSync(pidFile)) {
        watched = true;
        spawnWatchdog(this.dataDir);
      }
    }, WATCHDOG_ARM_POLL_MS);
    const timer = setTimeout(() => this.stopSync(), timeoutMs);
    try {
      return await new Promise<number>((resolve, reject) => {
        child.on('error', reject);
        child.on('exit', (code, signal) => {
          if (code !== null) resolve(code);
          else reject(new Error(`postgres in ${this.dataDir} ended by ${signal}\n${this.logTail()}`));
        });
      });
    } finally {
      clearInterval(poll);
      clearTimeout(timer);
      this.isRunning = false;
      running.delete(this);
    }
  }

  /** Stops the server: 'fast' is a clean shutdown (shutdown checkpoint), 'immediate' is a crash. */
  async stop(mode: StopMode = 'fast'): Promise<void> {
    if (!this.isRunning) return;
    await runPgTool('pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', '-t', String(PG_CTL_WAIT_S), 'stop'], {
      cwd: this.rootDir,
    });
    this.isRunning = false;
    running.delete(this);
  }

  /** Immediate stop, synchronously (exit handler, failed starts). */
  stopSync(): void {
    if (fs.existsSync(path.join(this.dataDir, 'postmaster.pid'))) {
      runPgToolSync('pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', 'stop']);
    }
    this.isRunning = false;
    running.delete(this);
  }

  /** Stops the server if it runs (immediate) and deletes the temp dir. */
  async destroy(): Promise<void> {
    if (this.isRunning) {
      try {
        await this.stop('immediate');
      } catch {
        this.stopSync();
      }
    }
    fs.rmSync(this.rootDir, { recursive: true, force: true });
    fs.rmSync(this.socketDir, { recursive: true, force: true });
  }

  private connArgs(db: string): string[] {
    if (!this.isRunning) throw new Error(`cluster ${this.dataDir} is not running`);
    return ['-h', this.socketDir, '-p', String(this.portNumber), '-U', 'postgres', '-d', db];
  }

  /**
   * Runs one SQL string (`psql -c`) in `db` and returns its rows as text (NULL → null). A string
   * with several statements runs them in one transaction and returns the rows of all of them; a
   * result of one row holding one empty string reads as no rows.
   */
  async sql(db: string, text: string): Promise<(string | null)[][]> {
    const args = [
      ...this.connArgs(db),
      '-X',
      '-A',
      '-t',
      '-q',
      '-v',
      'ON_ERROR_STOP=1',
      '-F',
      FIELD_SEP,
      '-R',
      RECORD_SEP,
      '-P',
      `null=${NULL_MARK}`,
      '-c',
      text,
    ];
    const r = await runPgTool('psql', args, { cwd: this.rootDir });
    const out = r.stdout.endsWith('\n') ? r.stdout.slice(0, -1) : r.stdout;
    if (out === '') return [];
    return out.split(RECORD_SEP).map((row) => row.split(FIELD_SEP).map((f) => (f === NULL_MARK ? null : f)));
  }

  /**
   * Runs a script through `psql -f -`: statements one by one in autocommit (CREATE DATABASE works),
   * stopping at the first error (which rejects). Returns psql's output.
   */
  async exec(db: string, script: string): Promise<string> {
    const args = [...this.connArgs(db), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'];
    const r = await runPgTool('psql', args, { cwd: this.rootDir, input: script });
    return r.stdout;
  }

  /** Runs pgbench against this cluster (connection options are added); returns stdout + stderr. */
  async pgbench(args: readonly string[]): Promise<string> {
    if (!this.isRunning) throw new Error(`cluster ${this.dataDir} is not running`);
    const conn = ['-h', this.socketDir, '-p', String(this.portNumber), '-U', 'postgres'];
    const r = await runPgTool('pgbench', [...conn, ...args], { cwd: this.rootDir });
    return `${r.stdout}${r.stderr}`;
  }

  async checkpoint(): Promise<void> {
    await this.sql('postgres', 'CHECKPOINT');
  }

  /** pg_current_wal_insert_lsn(): where the next record will be inserted. */
  async currentWalInsertLsn(): Promise<Lsn> {
    const rows = await this.sql('postgres', 'SELECT pg_current_wal_insert_lsn()');
    return parseLsn(rows[0][0] ?? '');
  }

  /** pg_controldata of this cluster (meaningful for checkpoint LSNs after a clean stop or a quiescent CHECKPOINT). */
  controlData(): Promise<PgControlData> {
    return readControlData(this.dataDir);
  }

  async databases(): Promise<PgDatabase[]> {
    const rows = await this.sql(
      'postgres',
      'SELECT oid, datname, dattablespace, datallowconn, datistemplate FROM pg_database ORDER BY oid',
    );
    return rows.map((r) => ({
      oid: Number(r[0]),
      name: String(r[1]),
      spcOid: Number(r[2]),
      allowConnections: r[3] === 't',
      isTemplate: r[4] === 't',
    }));
  }

  /** Every relation with storage in `db` (shared catalogs included, with dbOid 0). */
  async relations(db: string): Promise<PgRelation[]> {
    const q = `
      SELECT c.oid, n.nspname, c.relname, c.relkind, c.relpersistence, coalesce(a.amname, ''),
             pg_relation_filenode(c.oid),
             CASE WHEN c.relisshared THEN ${GLOBALTABLESPACE_OID}
                  WHEN c.reltablespace = 0 THEN d.dattablespace ELSE c.reltablespace END,
             CASE WHEN c.relisshared THEN 0 ELSE d.oid END,
             c.relisshared, pg_relation_filepath(c.oid)
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_database d ON d.datname = current_database()
        LEFT JOIN pg_am a ON a.oid = c.relam
       WHERE pg_relation_filenode(c.oid) IS NOT NULL
       ORDER BY c.oid`;
    const rows = await this.sql(db, q);
    return rows.map((r) => ({
      dbName: db,
      oid: Number(r[0]),
      nspname: String(r[1]),
      relname: String(r[2]),
      relkind: String(r[3]),
      relpersistence: String(r[4]),
      am: String(r[5] ?? ''),
      relNumber: Number(r[6]),
      spcOid: Number(r[7]),
      dbOid: Number(r[8]),
      shared: r[9] === 't',
      path: String(r[10]),
    }));
  }

  /** The last lines of the server log, for error messages. */
  logTail(lines = 20): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no server log)';
    }
  }
}
