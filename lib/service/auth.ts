/**
 * Page service authentication (docs/PROTOCOL.md, "Authentication"): a JWT per connection, checked
 * with `jose` against a JWK Set read from a file (Ed25519 public keys or HS256 secrets). A token
 * opens one tenant (`tenant_id`) for the page service (`scope: "pageserver"`); `"admin"` tokens
 * belong to the admin API and are refused here. Auth is off only when asked for by name.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JSONWebKeySet, type JWK, type KeyLike } from 'jose';
import { describeValue, StrataError } from '../errors';

export type TokenScope = 'pageserver' | 'admin';
export const TOKEN_SCOPES: readonly TokenScope[] = ['pageserver', 'admin'];

/** How a Server checks tokens: a key file, keys in memory, or (only when said) not at all. */
export type AuthConfig = { keysFile: string } | { keys: JSONWebKeySet } | { disabled: true };

/** Files written by generateAuthKeys. */
export interface GeneratedKeys {
  /** The public JWK Set: what `--auth-keys` takes. */
  keysFile: string;
  /** The private key (mode 0600) that signs tokens: `strata token --signing-key`. */
  signingKeyFile: string;
}

type Alg = 'EdDSA' | 'HS256';
interface VerifyKey {
  kid: string | undefined;
  alg: Alg;
  jwk: JWK;
}

export class Authenticator {
  /** The keys imported for jose, once, on the first check. */
  private imported: Promise<Array<{ kid: string | undefined; alg: Alg; key: KeyLike | Uint8Array }>> | null = null;

  private constructor(private readonly keys: readonly VerifyKey[] | null) {}

  static disabled(): Authenticator {
    return new Authenticator(null);
  }

  static fromConfig(config: AuthConfig): Authenticator {
    if (config === null || typeof config !== 'object') throw new StrataError('BAD_ARGUMENT', `auth must be { keysFile }, { keys } or { disabled: true }: got ${describeValue(config)}`);
    if ('disabled' in config) {
      if (config.disabled !== true) throw new StrataError('BAD_ARGUMENT', 'auth: { disabled } must be true; to use auth give keysFile or keys');
      return Authenticator.disabled();
    }
    if (!('keys' in config) && (typeof config.keysFile !== 'string' || config.keysFile === '' || config.keysFile.includes('\0'))) {
      // A number here would be read as a file descriptor (0: stdin, waiting forever).
      throw new StrataError('BAD_ARGUMENT', `auth.keysFile must be a file path: got ${describeValue((config as { keysFile?: unknown }).keysFile)}`);
    }
    const keys = 'keys' in config ? config.keys : readKeySet(config.keysFile);
    return new Authenticator(checkKeySet(keys, 'keysFile' in config ? config.keysFile : 'auth.keys'));
  }

  get enabled(): boolean {
    return this.keys !== null;
  }

  /** Resolves when `token` lets its bearer read `tenantId` through the page service; AUTH_FAILED otherwise. */
  async checkPageAccess(token: string, tenantId: string): Promise<void> {
    if (this.keys === null) return;
    if (token === '') throw new StrataError('AUTH_FAILED', 'no token: this server requires a JWT in HELLO');
    const payload = await this.verify(token);
    if (payload.scope !== 'pageserver') {
      throw new StrataError('AUTH_FAILED', `the token's scope is ${JSON.stringify(payload.scope)}; the page service needs "pageserver"`);
    }
    if (payload.tenant_id !== tenantId) {
      throw new StrataError('AUTH_FAILED', `the token is for tenant ${JSON.stringify(payload.tenant_id)}, not ${JSON.stringify(tenantId)}`);
    }
  }

  /**
   * Whether `authorization` (an HTTP Authorization header) lets its bearer use the admin API: a
   * `Bearer` JWT with `scope: "admin"`. 401 when there is no token or it does not verify, 403 when
   * it verifies but is not an admin token (a pageserver token never administers).
   */
  async checkAdminAccess(authorization: string | undefined): Promise<{ ok: true } | { ok: false; status: 401 | 403; message: string }> {
    if (this.keys === null) return { ok: true };
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (m === null) return { ok: false, status: 401, message: 'no token: the admin API requires "Authorization: Bearer <JWT>"' };
    let payload: Record<string, unknown>;
    try {
      payload = await this.verify(m[1]);
    } catch (e) {
      return { ok: false, status: 401, message: (e as Error).message.replace(/^AUTH_FAILED: /, '') };
    }
    if (payload.scope !== 'admin') {
      return { ok: false, status: 403, message: `the token's scope is ${JSON.stringify(payload.scope)}; the admin API needs "admin"` };
    }
    return { ok: true };
  }

  /** The verified claims: the signature must verify with a key of the set for the header's alg (and kid). */
  private async verify(token: string): Promise<Record<string, unknown>> {
    let header: { alg?: string; kid?: string };
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new StrataError('AUTH_FAILED', 'the token does not verify (not a compact JWS)');
    }
    this.imported ??= Promise.all((this.keys ?? []).map(async (k) => ({ kid: k.kid, alg: k.alg, key: await importJWK(k.jwk, k.alg) })));
    const candidates = (await this.imported).filter((k) => k.alg === header.alg && (header.kid === undefined || k.kid === undefined || k.kid === header.kid));
    if (candidates.length === 0) throw new StrataError('AUTH_FAILED', `the token does not verify (no key for alg ${String(header.alg)}${header.kid === undefined ? '' : `, kid ${header.kid}`})`);
    for (const k of candidates) {
      try {
        return (await jwtVerify(token, k.key, { algorithms: [k.alg] })).payload;
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') continue; // another key of the set may verify it
        if (code === 'ERR_JWT_EXPIRED') throw new StrataError('AUTH_FAILED', 'the token has expired');
        throw new StrataError('AUTH_FAILED', `the token does not verify (${typeof code === 'string' ? code : (e as Error).message})`);
      }
    }
    throw new StrataError('AUTH_FAILED', 'the token does not verify (ERR_JWS_SIGNATURE_VERIFICATION_FAILED)');
  }
}

function readKeySet(file: string): JSONWebKeySet {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new StrataError('IO_ERROR', `auth keys ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return JSON.parse(text) as JSONWebKeySet;
  } catch (e) {
    throw new StrataError('BAD_ARGUMENT', `auth keys ${file}: not JSON: ${(e as Error).message}`);
  }
}

function checkKeySet(jwks: JSONWebKeySet, where: string): VerifyKey[] {
  if (jwks === null || typeof jwks !== 'object' || !Array.isArray(jwks.keys) || jwks.keys.length === 0) {
    throw new StrataError('BAD_ARGUMENT', `auth keys ${where}: a JWK Set { "keys": [ … ] } with at least one key`);
  }
  return jwks.keys.map((k, i) => {
    if (k === null || typeof k !== 'object') throw new StrataError('BAD_ARGUMENT', `auth keys ${where}: key ${i} is not a JWK object: got ${describeValue(k)}`);
    const okp = k.kty === 'OKP' && k.crv === 'Ed25519' && typeof k.x === 'string' && k.d === undefined;
    const oct = k.kty === 'oct' && typeof k.k === 'string' && k.k.length > 0;
    if (!okp && !oct) throw new StrataError('BAD_ARGUMENT', `auth keys ${where}: key ${i} is neither an Ed25519 public key (OKP, no "d") nor an HS256 secret (oct)`);
    return { kid: k.kid, alg: okp ? 'EdDSA' : 'HS256', jwk: k };
  });
}

/**
 * A new Ed25519 key pair in `dir`: `jwks.json` (public, for the server) and `signing-key.jwk.json`
 * (private, 0600, for minting tokens). `strata serve` without --auth-keys does this on first start.
 */
export async function generateAuthKeys(dir: string): Promise<GeneratedKeys> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const kid = `strata-${Date.now().toString(36)}`;
  const pub: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' };
  const priv: JWK = { ...(await exportJWK(privateKey)), kid, alg: 'EdDSA' };
  const keysFile = path.join(dir, 'jwks.json');
  const signingKeyFile = path.join(dir, 'signing-key.jwk.json');
  fs.writeFileSync(signingKeyFile, `${JSON.stringify(priv)}\n`, { mode: 0o600, flag: 'wx' });
  fs.writeFileSync(keysFile, `${JSON.stringify({ keys: [pub] }, null, 2)}\n`, { flag: 'wx' });
  return { keysFile, signingKeyFile };
}

export interface TokenOptions {
  tenantId?: string;
  scope: TokenScope;
  /** Seconds until `exp`; none: the token does not expire. A negative value makes an expired token (tests). */
  expiresInSeconds?: number;
}

/** Sign a token with a private JWK (Ed25519 with "d", or an HS256 oct secret). */
export async function signToken(signingKey: JWK, o: TokenOptions): Promise<string> {
  const alg = signingKey.kty === 'oct' ? 'HS256' : 'EdDSA';
  const key = await importJWK(signingKey, alg);
  const claims: Record<string, unknown> = { scope: o.scope };
  if (o.tenantId !== undefined) claims.tenant_id = o.tenantId;
  const jwt = new SignJWT(claims).setProtectedHeader(signingKey.kid === undefined ? { alg } : { alg, kid: signingKey.kid }).setIssuedAt();
  if (o.expiresInSeconds !== undefined) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + o.expiresInSeconds);
  return jwt.sign(key);
}

/** Read a signing key written by generateAuthKeys (or any private JWK). */
export function readSigningKey(file: string): JWK {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as JWK;
  } catch (e) {
    throw new StrataError('BAD_ARGUMENT', `signing key ${file}: ${(e as Error).message}`, { cause: e });
  }
}
