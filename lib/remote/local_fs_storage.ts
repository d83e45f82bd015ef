/**
 * RemoteStorage in a local directory: the embedded default for single-node users and the tests'
 * second backend. An object is a plain file at `<root>/<key>`, so the directory can be read, copied
 * and backed up with ordinary tools; the backend's own files live under `<root>/.strata-remote/`
 * (a key may not start with that segment):
 *
 *   .strata-remote/tmp/<pid>-<ticks>-<rand>.tmp   a put in flight (removed on open when its process is gone)
 *   .strata-remote/etags/<sha256(key)>.json       the object's ETag, valid for one inode (below)
 *   .strata-remote/locks/<sha256(key)>.lock       held while a put or delete changes the key (owner_lock.ts)
 *
 * A put writes the body to a temp file while hashing it (MD5, as S3's single-part ETag), fsyncs
 * it, and then, under the key's lock, checks the put's condition against the current ETag, records
 * the new ETag and renames the temp file into place (fsyncing the directory). So a put is atomic
 * and durable, and conditional puts are atomic among every writer using this backend on the
 * directory, in this process or another: two create-only puts of one key cannot both succeed.
 *
 * ETags without reading the data: the ETag file records the inode, size and mtime (ns) of the file
 * it describes, taken from the temp file (a rename keeps all three). It is written before the
 * rename, so after a crash between the two, or while a put is in flight, it may describe a file
 * that is not (yet) in place; a reader that finds the inode, size or mtime different hashes the
 * file it has open instead (and rewrites the record). The answer is always the hash of the bytes
 * it describes.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { StrataError } from '../errors';
import { fsyncDir, mkdirDurable } from '../fs_util';
import { parseJsonObject } from '../json_object';
import { writeFileFromStream } from './fs_durable';
import { processAlive, SELF, tryLock } from './owner_lock';
import {
  normalizeEtag,
  RemoteStorageError,
  sortByKey,
  validateKey,
  validatePutOptions,
  validateRange,
  type GetOptions,
  type PutBody,
  type PutOptions,
  type PutResult,
  type RemoteObjectInfo,
  type RemoteOperation,
  type RemoteStorage,
  type RemoteStorageOptions,
} from './remote_storage';

/** The backend's own folder inside the root; no key may start with it. */
export const LOCAL_META_DIR = '.strata-remote';
const DEFAULT_LOCK_TIMEOUT_MS = 30_000;
/** Wait between attempts at a held key lock: short, since a put holds it for a rename and an fsync. */
const LOCK_POLL_MIN_MS = 1;
const LOCK_POLL_MAX_MS = 20;
/** A rename whose target directory a concurrent delete just pruned is retried this often. */
const PUBLISH_ATTEMPTS = 5;

interface EtagRecord {
  etag: string;
  ino: string;
  size: string;
  mtimeNs: string;
}

interface Written {
  tmp: string;
  etag: string;
  record: EtagRecord;
}

function errnoOf(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

/** ENOENT (no such file), ENOTDIR (a path component is a file): the key is not an object. */
function isMissing(e: unknown): boolean {
  const c = errnoOf(e);
  return c === 'ENOENT' || c === 'ENOTDIR';
}

export class LocalFsStorage implements RemoteStorage {
  readonly kind = 'local' as const;
  readonly description: string;
  private readonly tmpDir: string;
  private readonly etagDir: string;
  private readonly lockDir: string;
  private readonly lockTimeoutMs: number;
  private closed = false;

  private constructor(readonly root: string, options: RemoteStorageOptions) {
    this.description = `local directory ${root}`;
    this.tmpDir = path.join(root, LOCAL_META_DIR, 'tmp');
    this.etagDir = path.join(root, LOCAL_META_DIR, 'etags');
    this.lockDir = path.join(root, LOCAL_META_DIR, 'locks');
    this.lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  }

  /** Opens (creating when missing) the store at `root`; removes temp files of processes that are gone. */
  static async open(root: string, options: RemoteStorageOptions = {}): Promise<LocalFsStorage> {
    if (typeof root !== 'string' || root === '') throw new StrataError('BAD_ARGUMENT', `remote: { type: 'local' } needs a path, got ${JSON.stringify(root)}`);
    const s = new LocalFsStorage(path.resolve(root), options);
    try {
      for (const d of [s.tmpDir, s.etagDir, s.lockDir]) mkdirDurable(d);
      for (const d of [s.tmpDir, s.lockDir, s.etagDir]) {
        for (const name of fs.readdirSync(d)) {
          // <pid>-<ticks>-<hex>.tmp (temp files), <name>.<pid>-<ticks>-<hex>.tmp (lock candidates, ETag records)
          const m = /(?:^|\.)(\d+)-(\d+|x)-[0-9a-f]+\.tmp$/.exec(name);
          if (m !== null && !processAlive(Number(m[1]), m[2] === 'x' ? null : Number(m[2]))) fs.rmSync(path.join(d, name), { force: true });
        }
      }
    } catch (e) {
      throw s.error('open', '', e, 'cannot prepare the directory');
    }
    return s;
  }

  private pathOf(key: string, op: RemoteOperation): string {
    validateKey(key);
    if (key === LOCAL_META_DIR || key.startsWith(`${LOCAL_META_DIR}/`)) {
      throw new StrataError('BAD_ARGUMENT', `${op} ${JSON.stringify(key)}: keys under ${LOCAL_META_DIR}/ are the local backend's own`);
    }
    if (this.closed) throw new StrataError('CLOSED', `${this.description} was closed`);
    return path.join(this.root, key);
  }

  private keyHash(key: string): string {
    return crypto.createHash('sha256').update(key).digest('hex');
  }

  private error(op: RemoteOperation, key: string, e: unknown, what: string): StrataError {
    if (e instanceof StrataError) return e;
    const transient = !['EACCES', 'EPERM', 'EROFS'].includes(errnoOf(e) ?? '');
    return new RemoteStorageError('REMOTE_ERROR', { operation: op, key, storage: this.description, transient }, `${what}: ${(e as Error).message}`, { cause: e });
  }

  async put(key: string, body: PutBody, options: PutOptions = {}): Promise<PutResult> {
    const file = this.pathOf(key, 'put');
    validatePutOptions(options);
    const w = await this.writeTemp(key, body);
    try {
      const lock = await this.lockKey(key, 'put');
      try {
        if (options.ifNoneMatch !== undefined || options.ifMatch !== undefined) {
          const current = await this.statObject(file, key);
          if (options.ifNoneMatch === '*' && current !== null) throw this.preconditionFailed(key, `create-only put, but the key exists (ETag ${current.etag})`);
          if (options.ifMatch !== undefined) {
            const want = normalizeEtag(options.ifMatch);
            if (current === null) throw this.preconditionFailed(key, `compare-and-swap on ETag ${want}, but the key does not exist`);
            if (current.etag !== want) throw this.preconditionFailed(key, `compare-and-swap on ETag ${want}, but the current ETag is ${current.etag}`);
          }
        }
        await this.writeEtagRecord(key, w.record);
        await this.publish(w.tmp, file, key);
      } finally {
        lock();
      }
    } catch (e) {
      throw this.error('put', key, e, 'cannot store the object');
    } finally {
      await fs.promises.rm(w.tmp, { force: true });
    }
    return { etag: w.etag };
  }

  private preconditionFailed(key: string, detail: string): RemoteStorageError {
    return new RemoteStorageError('REMOTE_PRECONDITION_FAILED', { operation: 'put', key, storage: this.description, httpStatus: 412, transient: false }, detail);
  }

  /** The body into a fsynced temp file, hashed on the way. */
  private async writeTemp(key: string, body: PutBody): Promise<Written> {
    const tmp = path.join(this.tmpDir, `${SELF.pid}-${SELF.startTicks ?? 'x'}-${crypto.randomBytes(8).toString('hex')}.tmp`);
    const hash = crypto.createHash('md5');
    const counter = { bytes: 0 };
    let source: Readable | null = null;
    let expected: number | null = null;
    if (body instanceof Uint8Array) {
      hash.update(body);
      counter.bytes = body.length;
    } else if ('file' in body) {
      try {
        // Opened here, not by the stream: a file removed meanwhile must fail this put, not
        // become an 'error' event nobody listens to yet.
        const src = await fs.promises.open(body.file, 'r');
        if (!(await src.stat()).isFile()) {
          await src.close();
          throw new Error('not a regular file');
        }
        source = src.createReadStream();
      } catch (e) {
        throw new RemoteStorageError('IO_ERROR', { operation: 'put', key, storage: this.description, transient: false }, `cannot read ${body.file}: ${(e as Error).message}`, { cause: e });
      }
    } else if ('stream' in body) {
      source = body.stream;
      expected = body.length;
    } else {
      throw new StrataError('BAD_ARGUMENT', `put ${JSON.stringify(key)}: body must be a Uint8Array, { file } or { stream, length }`);
    }
    let fh: fs.promises.FileHandle | null = null;
    try {
      fh = await fs.promises.open(tmp, 'wx', 0o644);
      if (source === null) {
        await fh.writeFile(body as Uint8Array);
      } else {
        for await (const chunk of source as AsyncIterable<Buffer | string>) {
          const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          hash.update(b);
          counter.bytes += b.length;
          if (expected !== null && counter.bytes > expected) break; // reported below
          await fh.write(b);
        }
      }
      if (expected !== null && counter.bytes !== expected) {
        const gave = counter.bytes > expected ? `more than ${expected}` : String(counter.bytes);
        throw new StrataError('BAD_ARGUMENT', `put ${JSON.stringify(key)}: the stream gave ${gave} bytes, its length said ${expected}`);
      }
      await fh.sync();
      const st = await fh.stat({ bigint: true });
      const etag = hash.digest('hex');
      return { tmp, etag, record: { etag, ino: String(st.ino), size: String(st.size), mtimeNs: String(st.mtimeNs) } };
    } catch (e) {
      await fs.promises.rm(tmp, { force: true });
      throw this.error('put', key, e, 'cannot write the object');
    } finally {
      await fh?.close();
      source?.destroy();
    }
  }

  private async writeEtagRecord(key: string, record: EtagRecord): Promise<void> {
    const f = path.join(this.etagDir, `${this.keyHash(key)}.json`);
    const tmp = `${f}.${SELF.pid}-${SELF.startTicks ?? 'x'}-${crypto.randomBytes(4).toString('hex')}.tmp`;
    await fs.promises.writeFile(tmp, JSON.stringify(record));
    await fs.promises.rename(tmp, f);
  }

  private async readEtagRecord(key: string): Promise<EtagRecord | null> {
    try {
      const r = parseJsonObject(await fs.promises.readFile(path.join(this.etagDir, `${this.keyHash(key)}.json`), 'utf8')) as Partial<EtagRecord>;
      return typeof r.etag === 'string' && typeof r.ino === 'string' && typeof r.size === 'string' && typeof r.mtimeNs === 'string' ? (r as EtagRecord) : null;
    } catch {
      return null;
    }
  }

  /** mkdir -p the key's directories, rename into place, fsync the directory. */
  private async publish(tmp: string, file: string, key: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        mkdirDurable(path.dirname(file));
        await fs.promises.rename(tmp, file);
        fsyncDir(path.dirname(file));
        return;
      } catch (e) {
        const c = errnoOf(e);
        if (c === 'ENOTDIR' || c === 'EEXIST' || c === 'EISDIR') {
          throw new StrataError('BAD_ARGUMENT', `put ${JSON.stringify(key)}: a key cannot be both an object and a prefix of another key's path in the local backend (${(e as Error).message})`);
        }
        // ENOENT: a delete pruned the (empty) directory between mkdir and rename.
        if (c !== 'ENOENT' || attempt >= PUBLISH_ATTEMPTS) throw e;
      }
    }
  }

  /** Waits for the key's lock; returns its release. */
  private async lockKey(key: string, op: RemoteOperation): Promise<() => void> {
    const file = path.join(this.lockDir, `${this.keyHash(key)}.lock`);
    const deadline = Date.now() + this.lockTimeoutMs;
    let wait = LOCK_POLL_MIN_MS;
    for (;;) {
      const r = tryLock(file);
      if (r.held) return r.release;
      if (Date.now() >= deadline) {
        throw new RemoteStorageError('REMOTE_ERROR', { operation: op, key, storage: this.description, transient: true },
          `another writer (pid ${r.owner?.pid ?? '?'}) held the key's lock for more than ${this.lockTimeoutMs} ms`);
      }
      await new Promise((res) => setTimeout(res, wait * (0.5 + Math.random())));
      wait = Math.min(wait * 2, LOCK_POLL_MAX_MS);
    }
  }

  /** Size, ETag and mtime of the object at `file`, or null when there is none. */
  private async statObject(file: string, key: string): Promise<RemoteObjectInfo | null> {
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(file, 'r');
    } catch (e) {
      if (isMissing(e) || errnoOf(e) === 'EISDIR') return null;
      throw e;
    }
    try {
      return await this.infoOf(fh, key);
    } finally {
      await fh.close();
    }
  }

  /** Info about an open object file; null for a directory (a prefix, not an object). */
  private async infoOf(fh: fs.promises.FileHandle, key: string): Promise<RemoteObjectInfo | null> {
    const st = await fh.stat({ bigint: true });
    if (!st.isFile()) return null;
    const info = { key, size: Number(st.size), lastModified: new Date(Number(st.mtimeMs)) };
    const rec = await this.readEtagRecord(key);
    if (rec !== null && rec.ino === String(st.ino) && rec.size === String(st.size) && rec.mtimeNs === String(st.mtimeNs)) {
      return { ...info, etag: rec.etag };
    }
    // No record for this very file (written by another tool, or a put crashed after recording): hash it.
    const hash = crypto.createHash('md5');
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; ; ) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    const etag = hash.digest('hex');
    await this.writeEtagRecord(key, { etag, ino: String(st.ino), size: String(st.size), mtimeNs: String(st.mtimeNs) }).catch(() => undefined);
    return { ...info, etag };
  }

  private notFound(op: RemoteOperation, key: string): RemoteStorageError {
    return new RemoteStorageError('REMOTE_NOT_FOUND', { operation: op, key, storage: this.description, httpStatus: 404, transient: false }, 'no such object');
  }

  async get(key: string, options: GetOptions = {}): Promise<Buffer> {
    const file = this.pathOf(key, 'get');
    if (options.range !== undefined) validateRange(options.range);
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(file, 'r');
    } catch (e) {
      if (isMissing(e) || errnoOf(e) === 'EISDIR') throw this.notFound('get', key);
      throw this.error('get', key, e, 'cannot open the object');
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw this.notFound('get', key);
      const r = options.range ?? { offset: 0 };
      if (options.range !== undefined && r.length !== 0 && r.offset >= st.size && st.size > 0) {
        throw new StrataError('BAD_ARGUMENT', `get ${JSON.stringify(key)}: range starts at ${r.offset}, past the end of the object (${st.size} bytes)`);
      }
      const end = Math.min(st.size, r.length === undefined ? st.size : r.offset + r.length);
      const out = Buffer.allocUnsafe(Math.max(0, end - r.offset));
      for (let done = 0; done < out.length; ) {
        const { bytesRead } = await fh.read(out, done, out.length - done, r.offset + done);
        if (bytesRead === 0) return out.subarray(0, done); // truncated under us: only by a writer outside this backend
        done += bytesRead;
      }
      return out;
    } catch (e) {
      throw this.error('get', key, e, 'cannot read the object');
    } finally {
      await fh.close();
    }
  }

  async getToFile(key: string, file: string): Promise<RemoteObjectInfo> {
    const src = this.pathOf(key, 'get');
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(src, 'r');
    } catch (e) {
      if (isMissing(e) || errnoOf(e) === 'EISDIR') throw this.notFound('get', key);
      throw this.error('get', key, e, 'cannot open the object');
    }
    try {
      const info = await this.infoOf(fh, key);
      if (info === null) throw this.notFound('get', key);
      await writeFileFromStream(file, fh.createReadStream({ start: 0, autoClose: false }), key, this.description);
      return info;
    } finally {
      await fh.close();
    }
  }

  async head(key: string): Promise<RemoteObjectInfo | null> {
    const file = this.pathOf(key, 'head');
    try {
      return await this.statObject(file, key);
    } catch (e) {
      throw this.error('head', key, e, 'cannot stat the object');
    }
  }

  async list(prefix: string): Promise<RemoteObjectInfo[]> {
    if (typeof prefix !== 'string' || prefix.includes('\0')) throw new StrataError('BAD_ARGUMENT', `list: prefix must be a string without NUL, got ${JSON.stringify(prefix)}`);
    if (this.closed) throw new StrataError('CLOSED', `${this.description} was closed`);
    const dirPart = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    if (dirPart.split('/').some((s) => s === '.' || s === '..')) throw new StrataError('BAD_ARGUMENT', `list: prefix ${JSON.stringify(prefix)} has a '.' or '..' segment`);
    const out: RemoteObjectInfo[] = [];
    const walk = async (rel: string, filter: string | null): Promise<void> => {
      let entries: fs.Dirent[];
      try {
        entries = await fs.promises.readdir(path.join(this.root, rel), { withFileTypes: true });
      } catch (e) {
        if (isMissing(e)) return;
        throw e;
      }
      for (const ent of entries) {
        if (filter !== null && !ent.name.startsWith(filter)) continue;
        const key = rel + ent.name;
        if (key === LOCAL_META_DIR) continue;
        if (ent.isDirectory()) await walk(`${key}/`, null);
        else if (ent.isFile()) {
          const info = await this.statObject(path.join(this.root, key), key);
          if (info !== null) out.push(info);
        }
      }
    };
    try {
      await walk(dirPart, prefix.slice(dirPart.length));
    } catch (e) {
      throw this.error('list', prefix, e, 'cannot list the directory');
    }
    return sortByKey(out);
  }

  async delete(key: string): Promise<void> {
    const file = this.pathOf(key, 'delete');
    try {
      const release = await this.lockKey(key, 'delete');
      try {
        let removed = false;
        try {
          await fs.promises.unlink(file);
          removed = true;
        } catch (e) {
          // EISDIR: a prefix of other keys, not an object; nothing to delete.
          if (!isMissing(e) && errnoOf(e) !== 'EISDIR') throw e;
        }
        await fs.promises.rm(path.join(this.etagDir, `${this.keyHash(key)}.json`), { force: true });
        // Only a removed entry needs its directory synced (a key never written may have no directory).
        if (removed) fsyncDir(path.dirname(file));
      } finally {
        release();
      }
    } catch (e) {
      if (isMissing(e)) return;
      throw this.error('delete', key, e, 'cannot delete the object');
    }
    // Prune directories the delete emptied, up to the root (S3 has no directories to leave behind).
    for (let dir = path.dirname(file); dir !== this.root && dir.startsWith(this.root); dir = path.dirname(dir)) {
      try {
        fs.rmdirSync(dir);
      } catch {
        break;
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
