/**
 * `openRemoteStorage(config)`: the backend a `remote` configuration names. The S3 backend (and
 * with it the AWS SDK, a few hundred milliseconds to load) is loaded only when asked for.
 */
import { StrataError } from '../errors';
import { LocalFsStorage } from './local_fs_storage';
import type { RemoteConfig, RemoteStorage, RemoteStorageOptions } from './remote_storage';

export async function openRemoteStorage(config: RemoteConfig, options: RemoteStorageOptions = {}): Promise<RemoteStorage> {
  if (config === null || typeof config !== 'object') throw new StrataError('BAD_ARGUMENT', `remote must be { type: 'local', path } or { type: 's3', bucket, … }, got ${JSON.stringify(config)}`);
  switch (config.type) {
    case 'local':
      return LocalFsStorage.open(config.path, options);
    case 's3': {
      const { S3Storage } = await import('./s3_storage');
      return new S3Storage(config, options);
    }
    default:
      throw new StrataError('BAD_ARGUMENT', `remote.type must be 'local' or 's3', got ${JSON.stringify((config as { type?: unknown }).type)}`);
  }
}
