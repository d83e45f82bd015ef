/**
 * Shared set-up of the object-storage tests (test/remote/*): one radosgw test server per test file
 * (started in beforeAll when the Ceph programs are installed, destroyed in afterAll), temp
 * directories removed in afterAll, and a fresh store per test on either backend — a local directory,
 * or a prefix of its own in the server's bucket.
 *
 * Call `useRemoteTestEnv(tag)` once at the top level of a test file; `tag` names its temp dirs.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { LocalRemoteConfig, RemoteConfig, RemoteStorageOptions } from '../../lib/remote/remote_storage';
import { type S3Availability, s3Availability, S3Server } from './s3_server';

/** The S3 server's start (≈ 15 s, a second try when the first fails) plus slack. */
const SERVER_START_TIMEOUT_MS = 240_000;

export type BackendKind = 'local' | 's3';

/** Where one test's objects live: a configuration for Repository.open / openRemoteStorage. */
export interface RemoteLocation {
  config: RemoteConfig;
  options: RemoteStorageOptions;
}

export interface RemoteTestEnv {
  s3: S3Availability;
  /** The file's server; throws when S3 is unavailable (tests skip first, with s3.reason). */
  server(): S3Server;
  tmpDir(tag: string): string;
  /** A fresh, empty location on `kind` (a new directory, or a new random prefix in the bucket). */
  freshLocation(kind: BackendKind, storageOptions?: RemoteStorageOptions): RemoteLocation;
  /** Both backends, with a title saying why S3 is skipped when it is. */
  backends: readonly { kind: BackendKind; title: string; available: boolean }[];
}

export function useRemoteTestEnv(tag: string): RemoteTestEnv {
  const s3 = s3Availability();
  let server: S3Server | null = null;
  const tmpRoots: string[] = [];

  beforeAll(async () => {
    if (!s3.ok) return;
    server = await S3Server.start();
    console.log(`radosgw test server up in ${(server.startMs / 1000).toFixed(1)} s at ${server.endpoint}`);
  }, SERVER_START_TIMEOUT_MS);

  afterAll(async () => {
    await server?.destroy();
    for (const d of tmpRoots) fs.rmSync(d, { recursive: true, force: true });
  });

  const env: RemoteTestEnv = {
    s3,
    server: () => {
      if (server === null) throw new Error(`no S3 test server: ${s3.reason}`);
      return server;
    },
    tmpDir: (t) => {
      const d = fs.mkdtempSync(path.join(os.tmpdir(), `strata-${tag}-${t}-`));
      tmpRoots.push(d);
      return d;
    },
    freshLocation: (kind, storageOptions = {}) => {
      if (kind === 'local') {
        const config: LocalRemoteConfig = { type: 'local', path: env.tmpDir('store') };
        return { config, options: storageOptions };
      }
      const srv = env.server();
      return { config: srv.config(`t-${crypto.randomBytes(6).toString('hex')}`), options: srv.options(storageOptions) };
    },
    backends: [
      { kind: 'local', title: 'local directory', available: true },
      { kind: 's3', title: `S3 (radosgw)${s3.ok ? '' : ` — skipped: ${s3.reason}`}`, available: s3.ok },
    ],
  };
  return env;
}
