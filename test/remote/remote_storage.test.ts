/**
 * The RemoteStorage contract (lib/remote/remote_storage.ts), one suite run against both backends:
 * a local directory, and S3 through the SDK against a real radosgw started by
 * test/helpers/s3_server.ts (one server for this file via test/helpers/remote.ts; each test works under a
 * prefix of its own). Without the Ceph programs the S3 half is reported as skipped with the reason.
 *
 * Throughput of the large-object test and the server's start time are printed, not asserted
 * (timings belong to bench/).
 */
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { isStrataError, type StrataErrorCode } from '../../lib/errors';
import { openRemoteStorage } from '../../lib/remote/open_remote_storage';
import { RemoteStorageError, type RemoteStorage, type RemoteStorageOptions } from '../../lib/remote/remote_storage';
import { useRemoteTestEnv } from '../helpers/remote';

const MiB = 1024 * 1024;
const LARGE_OBJECT_BYTES = 20 * MiB;
/** More keys than one ListObjectsV2 page can hold (S3 caps a page at 1000). */
const MANY_KEYS = 1001;
const PUT_CONCURRENCY = 16;
/** Time for the writer processes of the cross-process race to load before they all begin. */
const WRITERS_START_DELAY_MS = 1500;
/** The race's writers try key k at start + k × this. */
const RACE_SLOT_MS = 25;

const env = useRemoteTestEnv('remote');
const tmpDir = env.tmpDir;

/** A fresh, empty store per test; `open` gives another client on the same store. */
interface Store {
  open(options?: RemoteStorageOptions): Promise<RemoteStorage>;
}

interface Backend {
  title: string;
  available: boolean;
  fresh(): Store;
}

const backends: Backend[] = env.backends.map((b) => ({
  title: b.title,
  available: b.available,
  fresh: () => {
    const loc = env.freshLocation(b.kind);
    return { open: (options) => openRemoteStorage(loc.config, { ...loc.options, ...options }) };
  },
}));

async function expectCode(p: Promise<unknown>, code: StrataErrorCode): Promise<RemoteStorageError> {
  try {
    await p;
  } catch (e) {
    if (!isStrataError(e, code)) throw new Error(`expected ${code}, got ${String(e)}`, { cause: e });
    return e as RemoteStorageError;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

function md5(b: Uint8Array): string {
  return crypto.createHash('md5').update(b).digest('hex');
}

/** Runs fn over items, at most `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

describe.each(backends.map((b) => [b.title, b] as const))('RemoteStorage contract: %s', (_title, b) => {
  const test = it.skipIf(!b.available);

  test('put, head, get and list agree on bytes, size and ETag; rewriting changes the ETag only with the bytes', async () => {
    const st = await b.fresh().open();
    try {
      const body = crypto.randomBytes(12345);
      const { etag } = await st.put('tenants/t1/a.bin', body);
      expect(etag).toMatch(/^[^"]+$/);
      expect(etag).toBe(md5(body));
      const h = await st.head('tenants/t1/a.bin');
      expect(h).toMatchObject({ key: 'tenants/t1/a.bin', size: body.length, etag });
      expect(Buffer.compare(await st.get('tenants/t1/a.bin'), body)).toBe(0);
      const listed = await st.list('tenants/');
      expect(listed.map((o) => [o.key, o.size, o.etag])).toEqual([['tenants/t1/a.bin', body.length, etag]]);

      const same = await st.put('tenants/t1/a.bin', Buffer.from(body));
      expect(same.etag).toBe(etag);
      const other = crypto.randomBytes(100);
      const changed = await st.put('tenants/t1/a.bin', other);
      expect(changed.etag).not.toBe(etag);
      expect((await st.head('tenants/t1/a.bin'))?.etag).toBe(changed.etag);
      expect(Buffer.compare(await st.get('tenants/t1/a.bin'), other)).toBe(0);

      const empty = await st.put('empty', Buffer.alloc(0));
      expect((await st.head('empty'))?.size).toBe(0);
      expect((await st.get('empty')).length).toBe(0);
      expect(empty.etag).toBe(md5(Buffer.alloc(0)));
    } finally {
      await st.close();
    }
  });

  test('a missing key: get is REMOTE_NOT_FOUND naming the key, head is null', async () => {
    const st = await b.fresh().open();
    try {
      const e = await expectCode(st.get('no/such/key'), 'REMOTE_NOT_FOUND');
      expect(e.message).toContain('no/such/key');
      expect(e.operation).toBe('get');
      expect(await st.head('no/such/key')).toBeNull();
      await st.put('no/such-other', Buffer.from('x'));
      expect(await st.head('no/such')).toBeNull();
    } finally {
      await st.close();
    }
  });

  test('byte ranges: inside, to the end, past the end, empty; a range starting past the end is BAD_ARGUMENT', async () => {
    const st = await b.fresh().open();
    try {
      const body = crypto.randomBytes(MiB + 17);
      await st.put('r', body);
      const cases: Array<[number, number | undefined]> = [[0, 10], [1000, 5000], [body.length - 10, undefined], [body.length - 5, 100], [0, body.length], [777, 1]];
      for (const [offset, length] of cases) {
        const got = await st.get('r', { range: length === undefined ? { offset } : { offset, length } });
        const end = length === undefined ? body.length : Math.min(body.length, offset + length);
        expect(Buffer.compare(got, body.subarray(offset, end)), `range ${offset}+${length}`).toBe(0);
      }
      expect((await st.get('r', { range: { offset: 5, length: 0 } })).length).toBe(0);
      await expectCode(st.get('r', { range: { offset: body.length } }), 'BAD_ARGUMENT');
      await expectCode(st.get('r', { range: { offset: -1 } }), 'BAD_ARGUMENT');
      await expectCode(st.get('missing', { range: { offset: 0, length: 4 } }), 'REMOTE_NOT_FOUND');
    } finally {
      await st.close();
    }
  });

  test('list: a plain string prefix, in key order, across "directories"', async () => {
    const st = await b.fresh().open();
    try {
      const keys = ['a/2', 'a/1', 'a/b/3', 'ab', 'b', 'a/b/c/4', 'ä/x'];
      for (const k of keys) await st.put(k, Buffer.from(k));
      expect((await st.list('a/')).map((o) => o.key)).toEqual(['a/1', 'a/2', 'a/b/3', 'a/b/c/4']);
      expect((await st.list('a')).map((o) => o.key)).toEqual(['a/1', 'a/2', 'a/b/3', 'a/b/c/4', 'ab']);
      expect((await st.list('a/b')).map((o) => o.key)).toEqual(['a/b/3', 'a/b/c/4']);
      expect((await st.list('')).map((o) => o.key)).toEqual(['a/1', 'a/2', 'a/b/3', 'a/b/c/4', 'ab', 'b', 'ä/x']);
      expect(await st.list('zzz')).toEqual([]);
      expect(await st.list('b/')).toEqual([]);
    } finally {
      await st.close();
    }
  });

  test('list pages through continuation: 25 keys at 7 a page, and more than 1000 keys at the default page size', async () => {
    const store = b.fresh();
    const small = await store.open({ listPageSize: 7 });
    try {
      const keys = Array.from({ length: 25 }, (_, i) => `p/${String(i).padStart(3, '0')}`);
      await pool(keys, PUT_CONCURRENCY, async (k) => { await small.put(k, Buffer.from(k)); });
      expect((await small.list('p/')).map((o) => o.key)).toEqual(keys);

      const many = Array.from({ length: MANY_KEYS }, (_, i) => `m/${String(i).padStart(5, '0')}`);
      await pool(many, PUT_CONCURRENCY, async (k) => { await small.put(k, Buffer.from(k)); });
      const big = await store.open();
      try {
        const listed = await big.list('m/');
        expect(listed.length).toBe(MANY_KEYS);
        expect(listed.map((o) => o.key)).toEqual(many);
        expect(listed.every((o) => o.size === 7)).toBe(true);
      } finally {
        await big.close();
      }
    } finally {
      await small.close();
    }
  });

  test('delete is idempotent: a deleted key is gone from get, head and list; deleting again or a key never written is fine', async () => {
    const st = await b.fresh().open();
    try {
      await st.put('d/x', Buffer.from('x'));
      await st.put('d/y', Buffer.from('y'));
      await st.delete('d/x');
      await expectCode(st.get('d/x'), 'REMOTE_NOT_FOUND');
      expect(await st.head('d/x')).toBeNull();
      expect((await st.list('d/')).map((o) => o.key)).toEqual(['d/y']);
      await st.delete('d/x');
      await st.delete('never/written');
      await st.delete('d/y');
      expect(await st.list('')).toEqual([]);
      // the key can be created again afterwards, create-only included
      await st.put('d/x', Buffer.from('again'), { ifNoneMatch: '*' });
      expect((await st.get('d/x')).toString()).toBe('again');
    } finally {
      await st.close();
    }
  });

  test('create-only put (ifNoneMatch *) is refused on an existing key and leaves it unchanged', async () => {
    const st = await b.fresh().open();
    try {
      const first = await st.put('g/attach', Buffer.from('generation 1'), { ifNoneMatch: '*' });
      const e = await expectCode(st.put('g/attach', Buffer.from('generation 2'), { ifNoneMatch: '*' }), 'REMOTE_PRECONDITION_FAILED');
      expect(e.message).toContain('g/attach');
      expect(e.transient).toBe(false);
      expect((await st.get('g/attach')).toString()).toBe('generation 1');
      expect((await st.head('g/attach'))?.etag).toBe(first.etag);
    } finally {
      await st.close();
    }
  });

  test('compare-and-swap (ifMatch): the current ETag wins, a stale one is refused, a missing key is refused, quotes are accepted', async () => {
    const st = await b.fresh().open();
    try {
      const v1 = await st.put('cas', Buffer.from('v1'));
      const v2 = await st.put('cas', Buffer.from('v2'), { ifMatch: v1.etag });
      expect(v2.etag).not.toBe(v1.etag);
      await expectCode(st.put('cas', Buffer.from('v3 from a stale writer'), { ifMatch: v1.etag }), 'REMOTE_PRECONDITION_FAILED');
      expect((await st.get('cas')).toString()).toBe('v2');
      // As S3 returns ETags: in quotes. The backend strips them (radosgw refuses the quoted form).
      const v3 = await st.put('cas', Buffer.from('v3'), { ifMatch: `"${v2.etag}"` });
      expect((await st.get('cas')).toString()).toBe('v3');
      expect((await st.head('cas'))?.etag).toBe(v3.etag);
      await expectCode(st.put('cas-missing', Buffer.from('x'), { ifMatch: v3.etag }), 'REMOTE_PRECONDITION_FAILED');
      expect(await st.head('cas-missing')).toBeNull();
    } finally {
      await st.close();
    }
  });

  test('concurrent create-only puts from two clients: exactly one wins each key, and its bytes are what is stored', async () => {
    const store = b.fresh();
    const clients = [await store.open(), await store.open()];
    const KEYS = 12;
    const CONTENDERS_PER_CLIENT = 3;
    try {
      for (let k = 0; k < KEYS; k++) {
        const key = `race/${k}`;
        const attempts = clients.flatMap((c, ci) => Array.from({ length: CONTENDERS_PER_CLIENT }, (_, j) => {
          const body = Buffer.from(`client ${ci} contender ${j} key ${k}`);
          return c.put(key, body, { ifNoneMatch: '*' }).then(() => ({ won: true as const, body }), (e: unknown) => ({ won: false as const, body, e }));
        }));
        const results = await Promise.all(attempts);
        const winners = results.filter((r) => r.won);
        expect(winners.length, `winners of ${key}`).toBe(1);
        for (const r of results) if (!r.won) expect(isStrataError(r.e, 'REMOTE_PRECONDITION_FAILED'), String(r.e)).toBe(true);
        expect(Buffer.compare(await clients[1].get(key), winners[0].body)).toBe(0);
      }
    } finally {
      for (const c of clients) await c.close();
    }
  });

  test('a 20 MB layer file: put from a file and from a stream, ranged gets, download to a file', async () => {
    const st = await b.fresh().open();
    const dir = tmpDir('large');
    try {
      const body = crypto.randomBytes(LARGE_OBJECT_BYTES);
      const src = path.join(dir, 'layer');
      fs.writeFileSync(src, body);
      let t = performance.now();
      const put = await st.put('tenants/t/timelines/tl/layer-00000001', { file: src });
      const putS = (performance.now() - t) / 1000;
      expect((await st.head('tenants/t/timelines/tl/layer-00000001'))?.size).toBe(LARGE_OBJECT_BYTES);
      expect(put.etag).toBe(md5(body));

      t = performance.now();
      const whole = await st.get('tenants/t/timelines/tl/layer-00000001');
      const getS = (performance.now() - t) / 1000;
      expect(Buffer.compare(whole, body)).toBe(0);
      for (const [offset, length] of [[0, 8192], [LARGE_OBJECT_BYTES / 2 + 3, 65536], [LARGE_OBJECT_BYTES - 8192, 8192]]) {
        expect(Buffer.compare(await st.get('tenants/t/timelines/tl/layer-00000001', { range: { offset, length } }), body.subarray(offset, offset + length))).toBe(0);
      }
      const dest = path.join(dir, 'downloaded');
      const info = await st.getToFile('tenants/t/timelines/tl/layer-00000001', dest);
      expect(info.size).toBe(LARGE_OBJECT_BYTES);
      expect(md5(fs.readFileSync(dest))).toBe(md5(body));
      expect(fs.readdirSync(dir).sort()).toEqual(['downloaded', 'layer']);

      const streamed = await st.put('streamed', { stream: Readable.from([body.subarray(0, 5 * MiB), body.subarray(5 * MiB)]), length: LARGE_OBJECT_BYTES });
      expect(streamed.etag).toBe(put.etag);
      await expectCode(st.put('short', { stream: Readable.from([Buffer.alloc(10)]), length: 11 }), 'BAD_ARGUMENT');
      await expectCode(st.put('long', { stream: Readable.from([Buffer.alloc(12)]), length: 11 }), 'BAD_ARGUMENT');
      expect(await st.head('long')).toBeNull();
      expect(await st.head('short')).toBeNull();
      await expectCode(st.put('x', { file: path.join(dir, 'no-such-file') }), 'IO_ERROR');
      console.log(`${st.kind}: 20 MB put from a file ${(LARGE_OBJECT_BYTES / MiB / putS).toFixed(0)} MB/s, whole get ${(LARGE_OBJECT_BYTES / MiB / getS).toFixed(0)} MB/s`);
    } finally {
      await st.close();
    }
  });

  test('malformed keys are BAD_ARGUMENT before any request', async () => {
    const st = await b.fresh().open();
    try {
      for (const k of ['', '/a', 'a/', 'a//b', '../x', 'a/./b', 'x\0y', 'k'.repeat(1025)]) {
        await expectCode(st.put(k, Buffer.from('x')), 'BAD_ARGUMENT');
        await expectCode(st.get(k), 'BAD_ARGUMENT');
      }
      await expectCode(st.put('a', Buffer.from('x'), { ifNoneMatch: '*', ifMatch: 'abc' }), 'BAD_ARGUMENT');
    } finally {
      await st.close();
    }
  });
});

describe('local directory backend', () => {
  it('keeps objects as plain files, its own files under .strata-remote/, and refuses that prefix as a key', async () => {
    const dir = tmpDir('plain');
    const st = await openRemoteStorage({ type: 'local', path: dir });
    await st.put('tenants/t1/index_part.json-00000001', Buffer.from('{}'));
    expect(fs.readFileSync(path.join(dir, 'tenants/t1/index_part.json-00000001'), 'utf8')).toBe('{}');
    expect(fs.readdirSync(path.join(dir, '.strata-remote', 'tmp'))).toEqual([]);
    expect(fs.readdirSync(path.join(dir, '.strata-remote', 'locks'))).toEqual([]);
    await expectCode(st.put('.strata-remote/x', Buffer.from('x')), 'BAD_ARGUMENT');
    // a key cannot be both an object and the directory of another key here (S3 would not mind)
    await expectCode(st.put('tenants/t1/index_part.json-00000001/x', Buffer.from('x')), 'BAD_ARGUMENT');
    await expectCode(st.put('tenants', Buffer.from('x')), 'BAD_ARGUMENT');
    expect(fs.readdirSync(path.join(dir, '.strata-remote', 'tmp'))).toEqual([]);
    expect((await st.list('')).map((o) => o.key)).toEqual(['tenants/t1/index_part.json-00000001']);
    // deleting the last object of a "directory" removes the directory, as S3 has none
    await st.delete('tenants/t1/index_part.json-00000001');
    expect(fs.existsSync(path.join(dir, 'tenants'))).toBe(false);
  });

  it('a file changed behind its back gets the ETag of its new bytes (the recorded ETag names the inode it describes)', async () => {
    const dir = tmpDir('etag');
    const st = await openRemoteStorage({ type: 'local', path: dir });
    const { etag } = await st.put('k', Buffer.from('one'));
    expect((await st.head('k'))?.etag).toBe(etag);
    const tmp = path.join(dir, 'k.new');
    fs.writeFileSync(tmp, 'two');
    fs.renameSync(tmp, path.join(dir, 'k'));
    expect((await st.head('k'))?.etag).toBe(md5(Buffer.from('two')));
    await expectCode(st.put('k', Buffer.from('three'), { ifMatch: etag }), 'REMOTE_PRECONDITION_FAILED');
  });

  it('its directory removed underneath: REMOTE_ERROR naming the operation and key', async () => {
    const dir = tmpDir('gone');
    const st = await openRemoteStorage({ type: 'local', path: dir });
    fs.rmSync(dir, { recursive: true, force: true });
    const e = await expectCode(st.put('tenants/t/x', Buffer.from('x')), 'REMOTE_ERROR');
    expect(e.message).toMatch(/^REMOTE_ERROR: put "tenants\/t\/x" on local directory/);
  });

  it('create-only puts from three processes at once: every key has exactly one winner, whose bytes are stored', async () => {
    const dir = tmpDir('procs');
    const dist = path.join(__dirname, '..', '..', 'dist', 'remote', 'open_remote_storage.js');
    const KEYS = 60;
    const script = `
      const { openRemoteStorage } = require(${JSON.stringify(dist)});
      (async () => {
        const st = await openRemoteStorage({ type: 'local', path: ${JSON.stringify(dir)} });
        const won = [];
        for (let k = 0; k < ${KEYS}; k++) {
          // Every writer tries key k in the same time slot, so they contend for it at the same moment.
          await new Promise((r) => setTimeout(r, Math.max(0, Number(process.argv[2]) + k * ${RACE_SLOT_MS} - Date.now())));
          try { await st.put('race/' + k, Buffer.from(process.argv[1]), { ifNoneMatch: '*' }); won.push(k); }
          catch (e) { if (e.code !== 'REMOTE_PRECONDITION_FAILED') throw e; }
        }
        process.stdout.write(JSON.stringify(won));
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const run = (id: string): Promise<number[]> => new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', script, id, String(startAt)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
      child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
      child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as number[]) : reject(new Error(`writer ${id}: exit ${code}: ${err}`))));
    });
    const startAt = Date.now() + WRITERS_START_DELAY_MS;
    const ids = ['p0', 'p1', 'p2'];
    const wins = await Promise.all(ids.map(run));
    const st = await openRemoteStorage({ type: 'local', path: dir });
    console.log(`cross-process race: keys won per writer ${wins.map((w) => w.length).join(' / ')}`);
    for (let k = 0; k < KEYS; k++) {
      const winners = ids.filter((_, i) => wins[i].includes(k));
      expect(winners, `race/${k}`).toHaveLength(1);
      expect((await st.get(`race/${k}`)).toString()).toBe(winners[0]);
    }
  });

  it('a lock left by a killed writer is taken over', async () => {
    const dir = tmpDir('lock');
    const st = await openRemoteStorage({ type: 'local', path: dir });
    await st.put('k', Buffer.from('one'));
    const hash = crypto.createHash('sha256').update('k').digest('hex');
    // A pid that does not run: the highest pid the kernel can hand out, plus one.
    const deadPid = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8')) + 1;
    fs.writeFileSync(path.join(dir, '.strata-remote', 'locks', `${hash}.lock`), JSON.stringify({ pid: deadPid, startTicks: 1, token: 'dead' }));
    await st.put('k', Buffer.from('two'));
    expect((await st.get('k')).toString()).toBe('two');
  });
});

describe(`S3 backend errors${env.s3.ok ? '' : ` — skipped: ${env.s3.reason}`}`, () => {
  const test = it.skipIf(!env.s3.ok);

  test('a bucket that does not exist: REMOTE_ERROR naming operation, key and NoSuchBucket', async () => {
    const srv = env.server();
    const st = await openRemoteStorage(srv.config('p', 'strata-no-such-bucket'), srv.options());
    try {
      const put = await expectCode(st.put('k1', Buffer.from('x')), 'REMOTE_ERROR');
      expect(put.message).toMatch(/^REMOTE_ERROR: put "k1" on s3:\/\/strata-no-such-bucket\/p\/ at http.*NoSuchBucket/);
      expect(put.transient).toBe(false);
      expect((await expectCode(st.get('k2'), 'REMOTE_ERROR')).message).toMatch(/get "k2".*NoSuchBucket/);
      expect((await expectCode(st.head('k3'), 'REMOTE_ERROR')).message).toMatch(/head "k3".*no such bucket/);
      expect((await expectCode(st.list('k4'), 'REMOTE_ERROR')).message).toMatch(/list "k4".*NoSuchBucket/);
    } finally {
      await st.close();
    }
  });

  test('wrong credentials: REMOTE_ERROR, not transient', async () => {
    const srv = env.server();
    const st = await openRemoteStorage(srv.config('p'), { credentials: { accessKeyId: srv.accessKeyId, secretAccessKey: 'wrong' } });
    try {
      const e = await expectCode(st.put('k', Buffer.from('x')), 'REMOTE_ERROR');
      expect(e.message).toMatch(/put "k".*HTTP 403/);
      expect(e.transient).toBe(false);
    } finally {
      await st.close();
    }
  });

  test('the server stopped: REMOTE_ERROR (transient) naming operation and key; back up, the objects are there', async () => {
    const srv = env.server();
    const st = await openRemoteStorage(srv.config('outage'), srv.options({ connectTimeoutMs: 2000, idleTimeoutMs: 5000 }));
    try {
      await st.put('before', Buffer.from('kept'));
      await srv.stopGateway();
      try {
        const put = await expectCode(st.put('during', Buffer.from('x')), 'REMOTE_ERROR');
        expect(put.message).toMatch(/^REMOTE_ERROR: put "during" on s3:\/\/strata-test\/outage\/ at http/);
        expect(put.transient).toBe(true);
        const cas = await expectCode(st.put('during', Buffer.from('x'), { ifNoneMatch: '*' }), 'REMOTE_ERROR');
        expect(cas.transient).toBe(true);
        expect((await expectCode(st.get('before'), 'REMOTE_ERROR')).message).toMatch(/^REMOTE_ERROR: get "before"/);
        expect((await expectCode(st.list(''), 'REMOTE_ERROR')).operation).toBe('list');
        expect((await expectCode(st.delete('before'), 'REMOTE_ERROR')).operation).toBe('delete');
      } finally {
        await srv.startGateway();
      }
      expect((await st.get('before')).toString()).toBe('kept');
      expect(await st.head('during')).toBeNull();
    } finally {
      await st.close();
    }
  });
});
