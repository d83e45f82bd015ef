/** The public API, case by case, on both cores: ingest, GetPage@LSN, branching, flush, images, errors. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { type PageKey, PAGE_SIZE, Repository, type WalRecord } from '../lib';
import { describeEachCore } from './helpers/cores';
import { formatKey } from '../lib/key';
import { formatLsn } from '../lib/lsn';

const A: PageKey = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: 0 };
const B: PageKey = { ...A, blockNum: 1 };
const C: PageKey = { ...A, relNumber: 16385 };

function text(s: string): Buffer {
  const page = Buffer.alloc(PAGE_SIZE);
  page.write(s);
  return page;
}

function img(lsn: bigint, key: PageKey, s: string): WalRecord {
  return { lsn, key, kind: 'image', page: text(s) };
}

function patch(lsn: bigint, key: PageKey, offset: number, s: string): WalRecord {
  return { lsn, key, kind: 'patch', offset, data: Buffer.from(s) };
}

function str(page: Buffer): string {
  return page.subarray(0, page.indexOf(0) < 0 ? PAGE_SIZE : page.indexOf(0)).toString();
}

describeEachCore('timeline API (%s core)', (impl) => {
  let dir: string;
  let repo: Repository;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-tl-${impl}-`));
    repo = await Repository.open(dir, { implementation: impl });
  });

  afterEach(async () => {
    await repo.close().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reports the implementation in use', () => {
    expect(repo.implementation).toBe(impl);
    expect(repo.stats().implementation).toBe(impl);
  });

  it('reads every version of a page at every LSN, in memory and after flush', async () => {
    const tl = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
    tl.ingest([img(0x10n, A, 'foo'), patch(0x20n, A, 3, ' bar'), { lsn: 0x30n, key: A, kind: 'zero' }, patch(0x40n, A, 0, 'baz')]);
    const check = async () => {
      await expect(tl.getPage(A, 0x0fn)).rejects.toMatchObject({ code: 'PAGE_NOT_FOUND' });
      expect(str(await tl.getPage(A, 0x10n))).toBe('foo');
      expect(str(await tl.getPage(A, 0x1fn))).toBe('foo');
      expect(str(await tl.getPage(A, 0x20n))).toBe('foo bar');
      expect((await tl.getPage(A, 0x30n)).equals(Buffer.alloc(PAGE_SIZE))).toBe(true);
      expect(str(await tl.getPage(A, 0x40n))).toBe('baz');
    };
    await check();
    await tl.flush();
    expect(tl.diskConsistentLsn).toBe(0x40n);
    expect(tl.layers()).toHaveLength(1);
    expect(tl.layers()[0]).toMatchObject({ kind: 'delta', level: 0, lsnStart: 0x1n, lsnEnd: 0x41n });
    await check();
    await repo.close();
    repo = await Repository.open(dir, { implementation: impl });
    const again = repo.getTimeline('t1', 'main');
    expect(again.lastRecordLsn).toBe(0x40n);
    expect(str(await again.getPage(A, 0x20n))).toBe('foo bar');
  });

  it('chains records across several L0 layers and an image layer inside them', async () => {
    const tl = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
    tl.ingest([img(0x10n, A, 'a'), img(0x10n, B, 'b')]);
    await tl.flush();
    tl.ingest([patch(0x20n, A, 1, '1')]);
    await tl.flush();
    tl.ingest([patch(0x30n, A, 2, '2'), patch(0x31n, B, 1, 'x')]);
    await tl.flush();
    await tl.createImageLayer(0x20n);
    tl.ingest([patch(0x40n, A, 3, '3')]);
    expect(tl.layers().map((l) => l.kind)).toEqual(['delta', 'delta', 'delta', 'image']);
    expect(str(await tl.getPage(A, 0x10n))).toBe('a');
    expect(str(await tl.getPage(A, 0x20n))).toBe('a1');
    expect(str(await tl.getPage(A, 0x30n))).toBe('a12');
    expect(str(await tl.getPage(A, 0x40n))).toBe('a123');
    expect(str(await tl.getPage(B, 0x40n))).toBe('bx');
    const pages = await tl.getPages([A, B], 0x35n);
    expect(pages.map(str)).toEqual(['a12', 'bx']);
    await expect(tl.getPage(C, 0x40n)).rejects.toMatchObject({ code: 'PAGE_NOT_FOUND' });
  });

  it('branches without copying: the child sees the parent below the branch point only (Neon test_branch)', async () => {
    const main = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
    main.ingest([img(0x20n, A, 'foo at 0x20'), img(0x20n, B, 'foobar at 0x20')]);
    main.ingest([img(0x30n, A, 'foo at 0x30')]);
    main.ingest([img(0x40n, A, 'foo at 0x40')]);
    const dev = await repo.createTimeline({ tenantId: 't1', timelineId: 'dev', ancestorTimelineId: 'main', ancestorLsn: 0x30n });
    expect(dev.lastRecordLsn).toBe(0x30n);
    expect(main.diskConsistentLsn).toBeGreaterThanOrEqual(0x30n); // branch point made durable
    dev.ingest([img(0x40n, A, 'bar at 0x40')]);
    expect(str(await main.getPage(A, 0x40n))).toBe('foo at 0x40');
    expect(str(await dev.getPage(A, 0x40n))).toBe('bar at 0x40');
    expect(str(await dev.getPage(A, 0x35n))).toBe('foo at 0x30');
    expect(str(await dev.getPage(B, 0x40n))).toBe('foobar at 0x20');
    const grand = await repo.createTimeline({ tenantId: 't1', timelineId: 'grand', ancestorTimelineId: 'dev', ancestorLsn: 0x40n });
    grand.ingest([patch(0x50n, B, 0, 'F')]);
    expect(str(await grand.getPage(B, 0x50n))).toBe('Foobar at 0x20');
    expect(str(await grand.getPage(A, 0x50n))).toBe('bar at 0x40');
    expect(repo.listTimelines('t1').map((t) => t.timelineId).sort()).toEqual(['dev', 'grand', 'main']);
    await repo.close();
    repo = await Repository.open(dir, { implementation: impl });
    expect(str(await repo.getTimeline('t1', 'grand').getPage(B, 0x50n))).toBe('Foobar at 0x20');
    expect(str(await repo.getTimeline('t1', 'dev').getPage(A, 0x35n))).toBe('foo at 0x30');
  });

  it('an image layer on a branch includes the pages it inherits', async () => {
    const main = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
    main.ingest([img(0x10n, A, 'a'), img(0x10n, B, 'b')]);
    const dev = await repo.createTimeline({ tenantId: 't1', timelineId: 'dev', ancestorTimelineId: 'main' });
    dev.ingest([patch(0x20n, A, 1, '!')]);
    const info = await dev.createImageLayer(0x20n);
    expect(info).toMatchObject({ kind: 'image', lsnStart: 0x20n, lsnEnd: 0x21n });
    expect(str(await dev.getPage(A, 0x20n))).toBe('a!');
    expect(str(await dev.getPage(B, 0x20n))).toBe('b');
  });

  it('rejects a batch whose LSNs go backwards or do not exceed lastRecordLsn, applying nothing', async () => {
    const tl = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
    tl.ingest([img(0x10n, A, 'a')]);
    expect(() => tl.ingest([patch(0x20n, A, 0, 'x'), patch(0x18n, B, 0, 'y')])).toThrow(expect.objectContaining({ code: 'LSN_ORDER' }));
    expect(() => tl.ingest([patch(0x10n, A, 0, 'x')])).toThrow(expect.objectContaining({ code: 'LSN_ORDER' }));
    expect(() => tl.ingest([patch(0x20n, A, 0, 'x'), patch(0x20n, A, 1, 'y')])).toThrow(expect.objectContaining({ code: 'LSN_ORDER' }));
    expect(tl.lastRecordLsn).toBe(0x10n);
    expect(str(await tl.getPage(A, 0x10n))).toBe('a');
    tl.ingest([patch(0x20n, A, 1, 'x'), patch(0x20n, B, 0, 'y')]); // one LSN, two pages: fine
    expect(str(await tl.getPage(A, 0x20n))).toBe('ax');
  });

  it('rejects malformed records with BAD_RECORD, applying nothing of the batch', async () => {
    const tl = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
    const bad: unknown[] = [
      { lsn: 0x20n, key: A, kind: 'image', page: Buffer.alloc(100) },
      { lsn: 0x20n, key: A, kind: 'patch', offset: 8190, data: Buffer.from('abc') },
      { lsn: 0x20n, key: A, kind: 'patch', offset: -1, data: Buffer.from('a') },
      { lsn: 0x20n, key: A, kind: 'patch', offset: 0, data: Buffer.alloc(0) },
      { lsn: 0x20n, key: A, kind: 'truncate' },
    ];
    for (const r of bad) {
      // The message names the record: its LSN and its page.
      expect(() => tl.ingest([img(0x10n, B, 'ok'), r as WalRecord])).toThrow(expect.objectContaining({
        code: 'BAD_RECORD', message: expect.stringContaining(`record at LSN ${formatLsn(0x20n)} for page ${formatKey(A)}`),
      }));
    }
    expect(() => tl.ingest([{ lsn: 0x20n, key: { ...A, forkNum: 300 }, kind: 'zero' }])).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
    expect(tl.lastRecordLsn).toBe(0n);
    await expect(tl.getPage(B, 0n)).rejects.toMatchObject({ code: 'PAGE_NOT_FOUND' });
  });

  it('applies nothing of a batch rejected by its last record, a duplicate in a long same-LSN run, or an LSN error before a bad record', async () => {
    // Public ingest checks a whole batch, then serializes it straight into the open layer's arena:
    // a rejection at any record must leave that layer, lastRecordLsn and reads exactly as before.
    const tl = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
    tl.ingest([img(0x10n, A, 'a'), img(0x10n, C, 'c')]);
    const bytesBefore = tl.stats().openLayerBytes;
    const good = (lsn: bigint): WalRecord[] => [patch(lsn, A, 1, 'x'), img(lsn + 1n, B, 'new key'), patch(lsn + 2n, C, 1, 'y')];
    const runAt = (lsn: bigint, n: number): WalRecord[] => Array.from({ length: n }, (_, i) => img(lsn, { ...A, relNumber: 20000 + i, blockNum: 2 ** 31 + i }, `r${i}`));
    const rejected: [WalRecord[], string][] = [
      [[...good(0x20n), { lsn: 0x30n, key: A, kind: 'patch', offset: 8190, data: Buffer.from('abc') }], 'BAD_RECORD'],
      [[...good(0x20n), { lsn: 0x30n, key: { ...A, blockNum: -1 }, kind: 'zero' }], 'BAD_ARGUMENT'],
      [[...good(0x20n), ...runAt(0x30n, 5), img(0x30n, { ...A, relNumber: 20003, blockNum: 2 ** 31 + 3 }, 'dup')], 'LSN_ORDER'],
      [[...good(0x20n), ...runAt(0x30n, 40), img(0x30n, { ...A, relNumber: 20031, blockNum: 2 ** 31 + 31 }, 'dup')], 'LSN_ORDER'],
      [[...good(0x20n), patch(0x21n, A, 2, 'z')], 'LSN_ORDER'],
      // The LSN error comes first, but a malformed record anywhere wins (as when every record was
      // serialized before the LSN rules were checked).
      [[patch(0x10n, A, 1, 'x'), { lsn: 0x30n, key: A, kind: 'truncate' } as unknown as WalRecord], 'BAD_RECORD'],
    ];
    for (const [batch, code] of rejected) {
      expect(() => tl.ingest(batch)).toThrow(expect.objectContaining({ code }));
      expect(tl.lastRecordLsn).toBe(0x10n);
      expect(tl.stats().openLayerBytes).toBe(bytesBefore);
      expect(str(await tl.getPage(A, 0x10n))).toBe('a');
      await expect(tl.getPage(B, 0x10n)).rejects.toMatchObject({ code: 'PAGE_NOT_FOUND' });
    }
    // The same batches without their bad record are accepted whole.
    tl.ingest([...good(0x20n), ...runAt(0x30n, 40)]);
    expect(str(await tl.getPage(A, 0x30n))).toBe('ax');
    expect(str(await tl.getPage(B, 0x30n))).toBe('new key');
    expect(str(await tl.getPage(C, 0x30n))).toBe('cy');
    expect(str(await tl.getPage({ ...A, relNumber: 20039, blockNum: 2 ** 31 + 39 }, 0x30n))).toBe('r39');
    await tl.flush();
    expect(str(await tl.getPage({ ...A, relNumber: 20017, blockNum: 2 ** 31 + 17 }, 0x30n))).toBe('r17');
    expect(str(await tl.getPage(A, 0x30n))).toBe('ax');
  });

  it('waits for an LSN not yet ingested, and times out with LSN_TIMEOUT', async () => {
    const tl = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
    tl.ingest([img(0x10n, A, 'old')]);
    const pending = tl.getPage(A, 0x20n, { timeoutMs: 5_000 });
    setTimeout(() => tl.ingest([img(0x20n, A, 'new')]), 20);
    expect(str(await pending)).toBe('new');
    await expect(tl.getPage(A, 0x30n, { timeoutMs: 30 })).rejects.toMatchObject({ code: 'LSN_TIMEOUT' });
  });

  it('reports unknown, duplicate and badly placed timelines', async () => {
    const main = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
    main.ingest([img(0x10n, A, 'a')]);
    expect(() => repo.getTimeline('t1', 'nope')).toThrow(expect.objectContaining({ code: 'TIMELINE_NOT_FOUND' }));
    await expect(repo.createTimeline({ tenantId: 't1', timelineId: 'main' })).rejects.toMatchObject({ code: 'TIMELINE_EXISTS' });
    await expect(repo.createTimeline({ tenantId: 't1', timelineId: 'x', ancestorTimelineId: 'nope' })).rejects.toMatchObject({ code: 'TIMELINE_NOT_FOUND' });
    await expect(repo.createTimeline({ tenantId: 't1', timelineId: 'x', ancestorTimelineId: 'main', ancestorLsn: 0x11n })).rejects.toMatchObject({ code: 'LSN_TIMEOUT' });
    await expect(repo.createTimeline({ tenantId: 't1', timelineId: '../evil' })).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    expect(repo.listTimelines('t1')).toHaveLength(1);
  });

  it('freezes and flushes the open layer by itself at checkpointDistance', async () => {
    await repo.close();
    repo = await Repository.open(dir, { implementation: impl, checkpointDistance: 64 * 1024 });
    const tl = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
    for (let i = 1; i <= 40; i++) tl.ingest([img(BigInt(i) * 0x100n, { ...A, blockNum: i }, `page ${i}`)]);
    await tl.flush();
    expect(tl.layers().length).toBeGreaterThanOrEqual(4);
    // L0 layers tile the LSN axis.
    const ls = tl.layers();
    for (let i = 1; i < ls.length; i++) expect(ls[i].lsnStart).toBe(ls[i - 1].lsnEnd);
    expect(str(await tl.getPage({ ...A, blockNum: 7 }, 0x2800n))).toBe('page 7');
    expect(repo.stats().pageCache.misses).toBeGreaterThan(0);
  });

  it('fails clearly after close', async () => {
    const tl = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
    await repo.close();
    expect(() => tl.ingest([img(0x10n, A, 'a')])).toThrow(expect.objectContaining({ code: 'CLOSED' }));
    expect(() => repo.getTimeline('t1', 'main')).toThrow(expect.objectContaining({ code: 'CLOSED' }));
  });

  it('readPage/readPages read synchronously into a caller buffer; above lastRecordLsn is LSN_TIMEOUT at once', async () => {
    const tl = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
    tl.ingest([img(0x10n, A, 'a'), img(0x10n, B, 'b'), patch(0x20n, A, 1, '!')]);
    await tl.flush();
    const into = Buffer.alloc(3 * PAGE_SIZE, 0xee);
    tl.readPage(A, 0x20n, into, 100);
    expect(str(into.subarray(100, 100 + PAGE_SIZE))).toBe('a!');
    expect(into[99]).toBe(0xee); // nothing written outside the page
    expect(into[100 + PAGE_SIZE]).toBe(0xee);
    tl.readPages([B, A], 0x10n, into);
    expect(str(into.subarray(0, PAGE_SIZE))).toBe('b');
    expect(str(into.subarray(PAGE_SIZE, 2 * PAGE_SIZE))).toBe('a');
    expect(() => tl.readPage(A, 0x21n, into)).toThrow(expect.objectContaining({ code: 'LSN_TIMEOUT' }));
    expect(() => tl.readPage(C, 0x20n, into)).toThrow(expect.objectContaining({ code: 'PAGE_NOT_FOUND' }));
    expect(() => tl.readPage(A, 0x20n, into, 2 * PAGE_SIZE + 1)).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
    expect(() => tl.readPages([A, B, C, A], 0x20n, into)).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
  });
});
