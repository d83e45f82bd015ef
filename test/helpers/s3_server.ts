/**
 * A throw-away S3 server for the object-storage tests (issue 15, point 7): Ceph's radosgw on a
 * single-node cluster of its own — one monitor, one OSD keeping objects in memory (memstore), one
 * gateway with the beast frontend on a free loopback port — with cephx off and every pool at size
 * 1. docs/REMOTE.md, "The test server", says why each setting is there. Unlike an SDK mock or the
 * npm S3 emulators, radosgw honours conditional writes (If-None-Match, If-Match), which is what
 * the generation fencing of issue 15 rests on.
 *
 * API:
 * - `s3Availability(): { ok, reason }` — whether the Ceph programs are installed (by
 *   scripts/s3/ensure-radosgw.js); a test that needs the server is skipped with `reason` when not.
 * - `S3Server.start()` — everything up, an S3 user made and the bucket `bucket` created (≈ 15 s);
 *   then `endpoint`, `credentials`, `config(prefix?)`, `options()`, `createBucket(name)`,
 *   `stopGateway()` / `startGateway()` (radosgw alone, same port: an outage), `pauseGateway()` /
 *   `resumeGateway()` (SIGSTOP / SIGCONT: a hung server), `destroy()`.
 *   One server per test file, shared by its tests (start in beforeAll, destroy in afterAll).
 *
 * No daemon outlives the test process: destroy() kills them and deletes the directory, a process
 * 'exit' handler does the same, and a detached watchdog shell does it when the test process
 * disappears without running handlers (SIGKILL).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { RemoteStorageOptions, S3RemoteConfig } from '../../lib/remote/remote_storage';

/** Every program this helper runs; scripts/s3/ensure-radosgw.js checks the same list. */
const CEPH_TOOLS = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'monmaptool'] as const;
type CephTool = (typeof CEPH_TOOLS)[number];
/** Written by scripts/s3/ensure-radosgw.js: the reason an install did not happen or failed. */
const ENSURE_STATUS_FILE = path.join(os.tmpdir(), 'strata-s3-ensure.json');

/** How long one start may take (≈ 15 s when all is well) before it fails with the daemons' logs. */
const START_TIMEOUT_MS = 90_000;
/** Starts tried before giving up (a start has been seen to hang: see docs/REMOTE.md). */
const START_ATTEMPTS = 2;
/** One `ceph` or `radosgw-admin` command. */
const COMMAND_TIMEOUT_MS = 90_000;
const HTTP_POLL_MS = 250;
/** The OSD keeps objects in memory up to this much (allocated as written). */
const MEMSTORE_BYTES = 1024 * 1024 * 1024;
/** Placement groups per pool: a fixed small count, no autoscaler (there is no manager daemon). */
const PG_PER_POOL = 8;
const MON_ID = 'a';
const RGW_NAME = 'client.rgw.strata';
export const TEST_BUCKET = 'strata-test';
export const TEST_REGION = 'us-east-1';

export interface S3Availability {
  ok: boolean;
  reason: string;
}

function findTool(name: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/bin', '/usr/sbin', '/bin', '/sbin']) {
    if (dir && fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return null;
}

function ensureScriptReason(): string {
  try {
    const s = JSON.parse(fs.readFileSync(ENSURE_STATUS_FILE, 'utf8')) as { ok?: boolean; reason?: string };
    return s.ok === false && typeof s.reason === 'string' ? ` (ensure-radosgw: ${s.reason})` : '';
  } catch {
    return '';
  }
}

let cachedAvailability: S3Availability | null = null;

/** Whether the radosgw test server can run here; computed once per process. */
export function s3Availability(): S3Availability {
  if (cachedAvailability !== null) return cachedAvailability;
  if ((process.env.STRATA_S3 ?? '').toLowerCase() === 'off') cachedAvailability = { ok: false, reason: 'disabled by STRATA_S3=off' };
  else if (process.platform !== 'linux') cachedAvailability = { ok: false, reason: `the radosgw test server runs on Linux only (this is ${process.platform})` };
  else {
    const missing = CEPH_TOOLS.filter((t) => findTool(t) === null);
    cachedAvailability = missing.length > 0
      ? { ok: false, reason: `Ceph radosgw not installed (${missing.join(', ')} missing)${ensureScriptReason()}` }
      : { ok: true, reason: `radosgw at ${findTool('radosgw')}` };
  }
  return cachedAvailability;
}

/** Environment for Ceph's programs: not the sanitizer runtime `npm run test:asan` preloads into Node. */
function cephEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', LANG: 'C' };
  delete env.LD_PRELOAD;
  delete env.ASAN_OPTIONS;
  delete env.CEPH_CONF;
  delete env.CEPH_ARGS;
  return env;
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

/** Runs a Ceph program to completion; rejects with its output when it fails. */
function run(tool: CephTool, args: readonly string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(findTool(tool) ?? tool, args, { cwd, env: cephEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => out.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), COMMAND_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const text = Buffer.concat(out).toString('utf8');
      if (code === 0) resolve(text);
      else reject(new Error(`${tool} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${text.trim().split('\n').slice(-5).join(' | ')}`));
    });
  });
}

/**
 * Ceph 16 with cephx off has a start-up race: a client may send its first monitor command before
 * it has the monitor map, with fsid 0, and the monitor refuses it ("wrong fsid", EPERM, or
 * "problem getting command descriptions"). Seen in about one start of five here. Such a command
 * is simply sent again.
 */
const RACE_RETRIES = 5;
const RACE_PATTERN = /wrong fsid|EPERM|problem getting command descriptions/;

async function runRetryingRace(tool: CephTool, args: readonly string[], cwd: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run(tool, args, cwd);
    } catch (e) {
      if (attempt >= RACE_RETRIES || !RACE_PATTERN.test((e as Error).message)) throw e;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

/** Resolves with the HTTP status of GET url, or null when nothing answers. */
function httpStatus(url: string): Promise<number | null> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? null);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

const live = new Set<S3Server>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const s of live) s.killSync();
  });
}

function cephConf(root: string, monPort: number, rgwPort: number, fsid: string): string {
  return `# A throw-away single-node Ceph for Strata's tests (test/helpers/s3_server.ts)
[global]
fsid = ${fsid}
mon host = v1:127.0.0.1:${monPort}
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
keyring = ${root}/keyring
run dir = ${root}/run
admin socket = ${root}/run/$name.$pid.asok
pid file = ${root}/run/$name.pid
log file = ${root}/log/$name.log
log to stderr = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = ${PG_PER_POOL}
osd pool default pgp num = ${PG_PER_POOL}
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail crit = 0
mon data avail warn = 0

[mon.${MON_ID}]
mon data = ${root}/mon

[osd]
osd data = ${root}/osd
osd objectstore = memstore
memstore device bytes = ${MEMSTORE_BYTES}
osd class load list = *
osd class default list = *
# No mon commands while the OSD boots (see RACE_RETRIES); start() puts it into the CRUSH map.
osd crush update on start = false
osd class update on start = false

[${RGW_NAME}]
rgw data = ${root}/rgw
rgw frontends = beast endpoint=127.0.0.1:${rgwPort} tcp_nodelay=1
rgw enable usage log = false
ms mon client mode = crc
`;
}

export class S3Server {
  readonly accessKeyId = `STRATA${crypto.randomBytes(7).toString('hex').toUpperCase()}`;
  readonly secretAccessKey = crypto.randomBytes(24).toString('base64url');
  readonly region = TEST_REGION;
  readonly bucket = TEST_BUCKET;
  /** Milliseconds the last start() took, from nothing to the bucket created. */
  startMs = 0;
  private readonly conf: string;
  private readonly daemons = new Map<string, ChildProcess>();

  private constructor(readonly rootDir: string, readonly monPort: number, readonly rgwPort: number) {
    this.conf = path.join(rootDir, 'ceph.conf');
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.rgwPort}`;
  }

  get credentials(): { accessKeyId: string; secretAccessKey: string } {
    return { accessKeyId: this.accessKeyId, secretAccessKey: this.secretAccessKey };
  }

  /** The `remote` configuration of this server's test bucket. */
  config(prefix?: string, bucket: string = this.bucket): S3RemoteConfig {
    return { type: 's3', endpoint: this.endpoint, region: this.region, bucket, forcePathStyle: true, ...(prefix !== undefined ? { prefix } : {}) };
  }

  /** Storage options with this server's credentials (the SDK's chain would find none here). */
  options(extra: RemoteStorageOptions = {}): RemoteStorageOptions {
    return { credentials: this.credentials, ...extra };
  }

  /** Starts a new server; a start that fails is thrown away and tried once more from scratch. */
  static async start(): Promise<S3Server> {
    const avail = s3Availability();
    if (!avail.ok) throw new Error(`radosgw unavailable: ${avail.reason}`);
    const errors: string[] = [];
    for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      try {
        return await S3Server.startOnce();
      } catch (e) {
        errors.push(`attempt ${attempt}: ${(e as Error).message}`);
      }
    }
    throw new Error(`could not start the radosgw test server:\n${errors.join('\n')}`);
  }

  private static async startOnce(): Promise<S3Server> {
    const t0 = Date.now();
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-s3-'));
    const s = new S3Server(root, await freePort(), await freePort());
    const keep = process.env.STRATA_S3_KEEP_FAILED === '1';
    live.add(s);
    installExitHook();
    if (!keep) s.spawnWatchdog();
    try {
      for (const d of ['mon', 'osd', 'rgw', 'run', 'log']) fs.mkdirSync(path.join(root, d));
      fs.writeFileSync(path.join(root, 'keyring'), '');
      const fsid = crypto.randomUUID();
      const osdUuid = crypto.randomUUID();
      fs.writeFileSync(s.conf, cephConf(root, s.monPort, s.rgwPort, fsid));
      await s.withDeadline(t0, async () => {
        const c = ['-c', s.conf];
        await run('monmaptool', ['--create', '--fsid', fsid, '--addv', MON_ID, `[v1:127.0.0.1:${s.monPort}]`, path.join(root, 'monmap')], root);
        await run('ceph-mon', [...c, '--id', MON_ID, '--mkfs', '--monmap', path.join(root, 'monmap'), '--keyring', '/dev/null'], root);
        s.daemon('mon', 'ceph-mon', [...c, '--id', MON_ID, '-f']);
        // The gateway's keyring is made while the OSD starts (cephx is off, but radosgw wants one).
        const keyring = runRetryingRace('ceph', [...c, '--connect-timeout', '60', 'auth', 'get-or-create', RGW_NAME, 'osd', 'allow rwx', 'mon', 'allow rw', '-o', path.join(root, 'rgw', 'keyring')], root);
        keyring.catch(() => undefined); // awaited below; a failure must not go unhandled meanwhile
        // The OSD's identity is ours (osd new <uuid>, mkfs --osd-uuid), so the two always agree.
        const osdId = (await runRetryingRace('ceph', [...c, '--connect-timeout', '60', 'osd', 'new', osdUuid], root)).trim().split('\n').pop() ?? '';
        if (!/^\d+$/.test(osdId)) throw new Error(`ceph osd new printed ${JSON.stringify(osdId)}`);
        await runRetryingRace('ceph', [...c, '--connect-timeout', '60', 'osd', 'crush', 'add', `osd.${osdId}`, '1', 'root=default'], root);
        await run('ceph-osd', [...c, '--id', osdId, '--osd-uuid', osdUuid, '--mkfs'], root);
        s.daemon('osd', 'ceph-osd', [...c, '--id', osdId, '-f']);
        await keyring;
        await s.startGateway();
        await runRetryingRace('radosgw-admin', [...c, 'user', 'create', '--uid', 'strata', '--display-name', 'strata tests',
          '--access-key', s.accessKeyId, '--secret-key', s.secretAccessKey], root);
        await s.createBucket(s.bucket);
      });
    } catch (e) {
      const logs = s.logTail();
      if (keep) {
        s.killSync(false);
        throw new Error(`${(e as Error).message} (kept in ${root})\n${logs}`);
      }
      await s.destroy();
      throw new Error(`${(e as Error).message}\n${logs}`);
    }
    s.startMs = Date.now() - t0;
    return s;
  }

  private async withDeadline<T>(t0: number, fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`not up after ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS - (Date.now() - t0));
    });
    try {
      return await Promise.race([fn(), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts a daemon in the foreground as our child, its stderr into log/<name>.stderr. */
  private daemon(name: string, tool: CephTool, args: string[]): void {
    const fd = fs.openSync(path.join(this.rootDir, 'log', `${name}.stderr`), 'a');
    const child = spawn(findTool(tool) ?? tool, args, { cwd: this.rootDir, env: cephEnv(), stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    child.on('error', () => undefined);
    this.daemons.set(name, child);
    this.writePids();
  }

  private writePids(): void {
    const pids = [...this.daemons.values()].map((c) => c.pid).filter((p): p is number => p !== undefined);
    try {
      fs.writeFileSync(path.join(this.rootDir, 'pids'), `${pids.join(' ')}\n`);
    } catch {
      // destroyed meanwhile
    }
  }

  /**
   * A detached shell that outlives a SIGKILLed test process by at most a second: when we are gone
   * but the directory is not, it kills the daemons listed in `pids` and deletes the directory.
   */
  private spawnWatchdog(): void {
    const q = (x: string): string => `'${x.replace(/'/g, `'\\''`)}'`;
    const root = q(this.rootDir);
    const script = `while kill -0 ${process.pid} 2>/dev/null && [ -d ${root} ]; do sleep 1; done; ` +
      `if [ -d ${root} ]; then kill -9 $(cat ${root}/pids 2>/dev/null) 2>/dev/null; sleep 1; rm -rf ${root}; fi`;
    const child = spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore' });
    child.unref();
  }

  /** (Re)starts radosgw on its port and waits until it answers HTTP. */
  async startGateway(): Promise<void> {
    const running = this.daemons.get('rgw');
    if (running !== undefined && running.exitCode === null && running.signalCode === null) return;
    const deadline = Date.now() + START_TIMEOUT_MS;
    // radosgw creates its pools with monitor commands and exits when one meets the race above.
    for (let spawned = 1; spawned <= RACE_RETRIES; spawned++) {
      this.daemon('rgw', 'radosgw', ['-c', this.conf, '-n', RGW_NAME, '-k', path.join(this.rootDir, 'rgw', 'keyring'), '-f']);
      const child = this.daemons.get('rgw') as ChildProcess;
      while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
        const status = await httpStatus(`${this.endpoint}/`);
        if (status !== null) return;
        await new Promise((r) => setTimeout(r, HTTP_POLL_MS));
      }
      if (child.exitCode === null && child.signalCode === null) break; // deadline
    }
    throw new Error(`radosgw did not answer on ${this.endpoint} within ${START_TIMEOUT_MS / 1000} s`);
  }

  /** Stops radosgw (SIGKILL: an outage, not a shutdown); the cluster behind it keeps the objects. */
  async stopGateway(): Promise<void> {
    const child = this.daemons.get('rgw');
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  /**
   * Freezes radosgw (SIGSTOP): the kernel still accepts connections, but nothing answers — the
   * outage clients meet only through their timeouts. resumeGateway() (SIGCONT) ends it.
   */
  pauseGateway(): void {
    this.signalGateway('SIGSTOP');
  }

  resumeGateway(): void {
    this.signalGateway('SIGCONT');
  }

  private signalGateway(signal: 'SIGSTOP' | 'SIGCONT'): void {
    const child = this.daemons.get('rgw');
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) throw new Error(`radosgw is not running (${signal})`);
    child.kill(signal);
  }

  async createBucket(name: string): Promise<void> {
    const client = new S3Client({ endpoint: this.endpoint, region: this.region, forcePathStyle: true, credentials: this.credentials });
    try {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    } finally {
      client.destroy();
    }
  }

  /** Tail of every daemon log, for a failure message. */
  logTail(lines = 15): string {
    const dir = path.join(this.rootDir, 'log');
    if (!fs.existsSync(dir)) return '';
    return fs.readdirSync(dir).sort().map((f) => {
      const text = fs.readFileSync(path.join(dir, f), 'utf8').trim().split('\n').slice(-lines).join('\n');
      return text ? `--- ${f}\n${text}` : '';
    }).filter((t) => t !== '').join('\n');
  }

  /** Kills every daemon (SIGKILL: memstore has nothing to save) and deletes the directory. */
  async destroy(): Promise<void> {
    const exits: Promise<unknown>[] = [];
    for (const child of this.daemons.values()) {
      if (child.exitCode === null && child.signalCode === null) {
        exits.push(new Promise((r) => child.once('exit', r)));
        child.kill('SIGKILL');
      }
    }
    await Promise.all(exits);
    this.daemons.clear();
    live.delete(this);
    fs.rmSync(this.rootDir, { recursive: true, force: true });
  }

  /** For the exit handler: kill without waiting, delete the directory. */
  killSync(removeDir = true): void {
    for (const child of this.daemons.values()) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    if (removeDir) spawnSync('rm', ['-rf', this.rootDir]);
    live.delete(this);
  }
}
