/**
 * Durable streamed downloads of the object-storage layer (the directory steps are lib/fs_util.ts's,
 * shared with the engine). Downloads land in a
 * temp file beside their target and are renamed into place after an fsync, so a crash or a broken
 * connection never leaves a partial file under the final name.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { StrataError } from '../errors';
import { fsyncDir } from '../fs_util';
import { RemoteStorageError } from './remote_storage';

/** Stream into `file` through a temp file beside it: fsync, rename, fsync the directory. */
export async function writeFileFromStream(file: string, source: Readable, key: string, storage: string): Promise<void> {
  const tmp = `${file}.${process.pid}-${crypto.randomBytes(6).toString('hex')}.tmp`;
  let out: fs.promises.FileHandle | null = null;
  let sourceFailed = false;
  try {
    out = await fs.promises.open(tmp, 'w', 0o644);
    const it = (source as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
    for (;;) {
      let r: IteratorResult<Buffer | string>;
      try {
        r = await it.next();
      } catch (e) {
        sourceFailed = true;
        throw e;
      }
      if (r.done === true) break;
      await out.write(typeof r.value === 'string' ? Buffer.from(r.value) : r.value);
    }
    await out.sync();
    await out.close();
    out = null;
    await fs.promises.rename(tmp, file);
    fsyncDir(path.dirname(file));
  } catch (e) {
    await out?.close().catch(() => undefined);
    await fs.promises.rm(tmp, { force: true });
    if (e instanceof StrataError) throw e;
    if (sourceFailed) {
      // The object's side failed (a dropped connection), not the local file.
      throw new RemoteStorageError('REMOTE_ERROR', { operation: 'get', key, storage, transient: true }, `download broke off: ${(e as Error).message}`, { cause: e });
    }
    throw new RemoteStorageError('IO_ERROR', { operation: 'get', key, storage, transient: false }, `cannot write ${file}: ${(e as Error).message}`, { cause: e });
  }
}
