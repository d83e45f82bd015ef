/**
 * `strata serve`: the page service (docs/PROTOCOL.md) on one repository until SIGTERM/SIGINT, and
 * `strata token`: mint a JWT for it. With no options, serve runs with the defaults `npm start`
 * uses: ./strata-data, 127.0.0.1:64000, auth on with an Ed25519 key pair generated on first start
 * in <data>/auth/ (paths printed).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pino, type Logger } from 'pino';
import { StrataError } from '../errors';
import { Repository } from '../repository';
import { generateAuthKeys, readSigningKey, signToken, TOKEN_SCOPES, type AuthConfig, type TokenScope } from '../service/auth';
import { AdminApi } from '../service/admin_api';
import { Server } from '../service/page_server';
import type { ImplementationChoice } from '../core/select';
import type { RemoteConfig } from '../remote/remote_storage';
import { type RemoteFlags, remoteConfigFrom } from './remote';

export const DEFAULT_DATA_DIR = './strata-data';
/** Neon's page service port. */
export const DEFAULT_LISTEN = '127.0.0.1:64000';
/** Where serve keeps the key pair it generates, inside the data directory. */
const AUTH_DIR = 'auth';

export interface ServeOpts {
  json: boolean;
  impl: ImplementationChoice | undefined;
  data: string | undefined;
  listen: string | undefined;
  authKeys: string | undefined;
  noAuth: boolean;
  maxInFlight: number | undefined;
  /** The repository's page cache (default 64 MiB). */
  pageCacheBytes: number | undefined;
  decodedPageCacheBytes: number | undefined;
  /** HOST:PORT of the admin API (none: no admin API). */
  http: string | undefined;
  throttleRate: number | undefined;
  throttleBurst: number | undefined;
}

export function parseListen(s: string, option = '--listen'): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(s);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || port > 65535) throw new StrataError('BAD_ARGUMENT', `${option} must be HOST:PORT (port 0-65535): got ${JSON.stringify(s)}`);
  return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port };
}

/** The auth settings of a serve command line, generating the default key pair if needed. */
async function authFor(o: ServeOpts, dataDir: string, say: (line: string) => void): Promise<AuthConfig> {
  if (o.noAuth && o.authKeys !== undefined) throw new StrataError('BAD_ARGUMENT', '--auth-keys and --no-auth contradict each other');
  if (o.noAuth) {
    say('auth: off (--no-auth): any client can read any tenant');
    return { disabled: true };
  }
  if (o.authKeys !== undefined) {
    say(`auth: on, keys ${path.resolve(o.authKeys)}`);
    return { keysFile: o.authKeys };
  }
  const dir = path.join(dataDir, AUTH_DIR);
  const keysFile = path.join(dir, 'jwks.json');
  const signingKeyFile = path.join(dir, 'signing-key.jwk.json');
  if (!fs.existsSync(keysFile)) {
    await generateAuthKeys(dir);
    say(`auth: generated an Ed25519 key pair: ${path.resolve(keysFile)} (public), ${path.resolve(signingKeyFile)} (private)`);
  }
  say(`auth: on, keys ${path.resolve(keysFile)}; a token: strata token --signing-key ${path.resolve(signingKeyFile)} --tenant TENANT`);
  return { keysFile };
}

/** Serve until SIGTERM/SIGINT; then drain, close the repository and return 0. */
export async function runServe(args: string[], o: ServeOpts, remoteFlags?: RemoteFlags): Promise<number> {
  if (args.length > 0) throw new StrataError('BAD_ARGUMENT', `serve takes options only (--data DIR --listen HOST:PORT): got ${args.join(' ')}`);
  const dataDir = o.data ?? DEFAULT_DATA_DIR;
  const { host, port } = parseListen(o.listen ?? DEFAULT_LISTEN);
  const http = o.http === undefined ? null : parseListen(o.http, '--http');
  if ((o.throttleRate === undefined) !== (o.throttleBurst === undefined)) {
    throw new StrataError('BAD_ARGUMENT', '--throttle-rate and --throttle-burst go together (pages/s sustained, pages at once)');
  }
  const throttle = o.throttleRate === undefined ? undefined : { rate: o.throttleRate, burst: o.throttleBurst as number };
  // --json: every line is a pino JSON log record on stdout (the server's connection, refusal,
  // violation and shutdown events among them); otherwise plain lines for a person.
  const logger: Logger | null = o.json ? pino({ name: 'strata-serve' }, pino.destination({ dest: 1, sync: true })) : null;
  const say = (line: string): void => {
    if (logger !== null) logger.info(line);
    else process.stdout.write(`strata serve: ${line}\n`);
  };
  const remote = remoteFlagsGiven(remoteFlags) ? remoteConfigFrom(remoteFlags) : undefined;
  const auth = await authFor(o, dataDir, say);
  const repo = await Repository.open(dataDir, { implementation: o.impl, pageCacheBytes: o.pageCacheBytes, decodedPageCacheBytes: o.decodedPageCacheBytes, remote });
  let server: Server | null = null;
  let admin: AdminApi | null = null;
  try {
    server = new Server(repo, {
      auth,
      maxInFlight: o.maxInFlight,
      throttle,
      logger: logger ?? undefined,
    });
    const stopped = new Promise<string>((resolve) => {
      const onSignal = (sig: NodeJS.Signals): void => {
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
        resolve(sig);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    });
    const addr = await server.listen(host, port);
    const tenants = repo.listTenants().map((t) => `${t} (${repo.listTimelines(t).map((tl) => tl.timelineId).join(', ')})`);
    say(`data ${path.resolve(dataDir)} (${repo.implementation} core), tenants: ${tenants.length === 0 ? 'none yet' : tenants.join('; ')}`);
    say(`remote storage: ${describeRemote(remote)}`);
    if (logger !== null) logger.info({ event: 'listening', host: addr.host, port: addr.port }, `listening on ${addr.host}:${addr.port} (page service protocol 2, docs/PROTOCOL.md)`);
    else say(`listening on ${addr.host}:${addr.port} (page service protocol 2, docs/PROTOCOL.md)`);
    if (throttle !== undefined) say(`throttle: ${throttle.rate} pages/s, burst ${throttle.burst} pages per tenant (admin API: PUT /v1/tenant/:id/throttle)`);
    if (http !== null) {
      // The same auth as the page port: admin-scope tokens here, pageserver tokens there.
      admin = new AdminApi(repo, { auth, pageServer: server });
      const a = await admin.listen(http.host, http.port);
      if (logger !== null) logger.info({ event: 'listening-http', host: a.host, port: a.port }, `admin API on http://${a.host}:${a.port}`);
      else say(`admin API on http://${a.host}:${a.port} (/v1/tenant, /metrics; admin-scope tokens: strata token --scope admin)`);
    }
    const sig = await stopped;
    say(`${sig}: draining ${server.stats().connections} connection(s)`);
    if (admin !== null) await admin.close();
    await server.close();
    say(`stopped after ${server.stats().requests} request(s)`);
    return 0;
  } finally {
    if (admin !== null) await admin.close();
    if (server !== null) await server.close();
    await repo.close();
  }
}

function remoteFlagsGiven(f: RemoteFlags | undefined): f is RemoteFlags {
  return f !== undefined && (f.remotePath !== undefined || f.s3Bucket !== undefined || f.s3Endpoint !== undefined || f.s3Region !== undefined || f.s3Prefix !== undefined || f.s3PathStyle);
}

function describeRemote(r: RemoteConfig | undefined): string {
  if (r === undefined) return 'none (layers stay on this node; --remote-path DIR or --s3-bucket B to upload them)';
  return r.type === 'local' ? `directory ${path.resolve(r.path)}` : `s3://${r.bucket}/${r.prefix ?? ''}${r.endpoint === undefined ? '' : ` at ${r.endpoint}`}`;
}

export interface TokenOpts {
  signingKey: string | undefined;
  tenant: string | undefined;
  scope: string | undefined;
  ttlSeconds: number | undefined;
}

/** token --signing-key FILE --tenant T [--scope pageserver|admin] [--ttl SECONDS]: print a JWT. */
export async function runToken(args: string[], o: TokenOpts): Promise<number> {
  if (args.length > 0) throw new StrataError('BAD_ARGUMENT', `token takes options only: got ${args.join(' ')}`);
  if (o.signingKey === undefined) throw new StrataError('BAD_ARGUMENT', 'token needs --signing-key FILE (serve prints where its key is)');
  const scope = (o.scope ?? 'pageserver') as TokenScope;
  if (!TOKEN_SCOPES.includes(scope)) throw new StrataError('BAD_ARGUMENT', `--scope must be ${TOKEN_SCOPES.join(' or ')}: got ${JSON.stringify(o.scope)}`);
  if (scope === 'pageserver' && o.tenant === undefined) throw new StrataError('BAD_ARGUMENT', 'a pageserver token needs --tenant TENANT');
  const token = await signToken(readSigningKey(o.signingKey), { tenantId: o.tenant, scope, expiresInSeconds: o.ttlSeconds });
  process.stdout.write(`${token}\n`);
  return 0;
}
