/**
 * Page service auth (docs/PROTOCOL.md, "Authentication"): a token signed by a key of the key file,
 * for the tenant asked for, with scope "pageserver" and not expired, opens the connection; every
 * other token is refused with AUTH_FAILED before anything about the tenant's timelines is said.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStrataError, type Repository, StrataClient } from '../../lib';
import { generateAuthKeys, readSigningKey, signToken } from '../../lib/service/auth';
import { Server } from '../../lib/service/page_server';
import { IMPLEMENTATIONS } from '../helpers/cores';
import { KEYS, LSN_LAST, removeDir, repoWithData, TENANT, TIMELINE } from '../helpers/service';

const OTHER_TENANT = 'tenant_b';
const HS_SECRET = { kty: 'oct', k: Buffer.alloc(32, 7).toString('base64url'), kid: 'hs' };

async function refusal(p: Promise<StrataClient>): Promise<string> {
  try {
    const c = await p;
    await c.close();
  } catch (e) {
    if (isStrataError(e)) return `${e.code}: ${e.message}`;
    throw e;
  }
  return 'accepted';
}

describe('page service auth', () => {
  let dir: string;
  let repo: Repository;
  let server: Server;
  let port: number;
  let signingKey: ReturnType<typeof readSigningKey>;

  const connect = (token: string | undefined, tenantId = TENANT, timelineId = TIMELINE): Promise<StrataClient> =>
    StrataClient.connect({ host: '127.0.0.1', port, tenantId, timelineId, token });

  beforeAll(async () => {
    ({ dir, repo } = await repoWithData(IMPLEMENTATIONS[IMPLEMENTATIONS.length - 1], 'auth'));
    await repo.createTimeline({ tenantId: OTHER_TENANT, timelineId: TIMELINE });
    const keys = await generateAuthKeys(path.join(dir, 'auth'));
    signingKey = readSigningKey(keys.signingKeyFile);
    expect(fs.statSync(keys.signingKeyFile).mode & 0o777).toBe(0o600);
    // The server's key set: the generated Ed25519 public key plus an HS256 secret.
    const jwks = JSON.parse(fs.readFileSync(keys.keysFile, 'utf8')) as { keys: object[] };
    const both = path.join(dir, 'auth', 'both.json');
    fs.writeFileSync(both, JSON.stringify({ keys: [...jwks.keys, HS_SECRET] }));
    server = new Server(repo, { auth: { keysFile: both } });
    ({ port } = await server.listen('127.0.0.1', 0));
  });

  afterAll(async () => {
    await server.close();
    await repo.close();
    removeDir(dir);
  });

  it('a pageserver token for the tenant opens it (Ed25519 and HS256 keys)', async () => {
    for (const key of [signingKey, HS_SECRET]) {
      const c = await connect(await signToken(key, { tenantId: TENANT, scope: 'pageserver', expiresInSeconds: 600 }));
      expect((await c.getPage(KEYS[0], LSN_LAST)).length).toBe(8192);
      await c.close();
    }
  });

  it('refuses: no token, garbage, another key, another tenant, admin scope, expired', async () => {
    const other = await generateAuthKeys(path.join(dir, 'other-keys'));
    const stranger = readSigningKey(other.signingKeyFile);
    const cases: Array<[string, Promise<string>, RegExp]> = [
      ['no token', refusal(connect(undefined)), /AUTH_FAILED: .*no token/],
      ['garbage', refusal(connect('not.a.jwt')), /AUTH_FAILED: .*does not verify/],
      ['a key the server does not have', refusal(connect(await signToken(stranger, { tenantId: TENANT, scope: 'pageserver' }))), /AUTH_FAILED: .*does not verify/],
      ['another tenant', refusal(connect(await signToken(signingKey, { tenantId: OTHER_TENANT, scope: 'pageserver' }))), /AUTH_FAILED: .*the token is for tenant "tenant_b", not "tenant_a"/],
      ['admin scope', refusal(connect(await signToken(signingKey, { tenantId: TENANT, scope: 'admin' }))), /AUTH_FAILED: .*scope is "admin"/],
      ['expired', refusal(connect(await signToken(signingKey, { tenantId: TENANT, scope: 'pageserver', expiresInSeconds: -60 }))), /AUTH_FAILED: .*the token has expired/],
    ];
    for (const [name, got, want] of cases) expect(await got, name).toMatch(want);
    expect(server.stats().refused).toBeGreaterThanOrEqual(cases.length);
  });

  it('a token for tenant A never reads tenant B, and says nothing about B\'s timelines', async () => {
    const tokenA = await signToken(signingKey, { tenantId: TENANT, scope: 'pageserver' });
    expect(await refusal(connect(tokenA, OTHER_TENANT))).toMatch(/^AUTH_FAILED/);
    expect(await refusal(connect(tokenA, OTHER_TENANT, 'no-such-timeline'))).toMatch(/^AUTH_FAILED/);
    // With its own token B opens; an unknown timeline of A is TIMELINE_NOT_FOUND only with A's token.
    const b = await connect(await signToken(signingKey, { tenantId: OTHER_TENANT, scope: 'pageserver' }), OTHER_TENANT);
    await b.close();
    expect(await refusal(connect(tokenA, TENANT, 'no-such-timeline'))).toMatch(/^TIMELINE_NOT_FOUND/);
  });

  it('auth is never off by accident: no auth option, an empty key set, or a private key as a verification key', () => {
    expect(() => new Server(repo, undefined as never)).toThrow(/BAD_ARGUMENT: Server needs options.auth/);
    expect(() => new Server(repo, { auth: { keys: { keys: [] } } })).toThrow(/BAD_ARGUMENT/);
    expect(() => new Server(repo, { auth: { keys: { keys: [signingKey] } } })).toThrow(/neither an Ed25519 public key/);
    expect(() => new Server(repo, { auth: { disabled: false as never } })).toThrow(/BAD_ARGUMENT/);
    expect(() => new Server(repo, { auth: { keysFile: path.join(dir, 'missing.json') } })).toThrow(/IO_ERROR/);
  });
});
