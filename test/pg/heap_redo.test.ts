/**
 * Heap, heap2, sequence, XLOG and rmgr-255 redo (native/pg/{rmgr,heap_redo}.cc, lib/core/ts/pg/
 * {rmgr,heap_redo}.ts) record type by record type on hand-built pages. Every redo runs in both
 * cores, which must agree byte for byte (or on the error code and text); the assertions then check
 * the PostgreSQL semantics on the result.
 */
import { describe, expect, it } from 'vitest';
import { PD_ALL_VISIBLE, pageInit } from '../../lib/core/ts/pg/bufpage';
import { pgChecksumPage } from '../../lib/core/ts/pg/checksum';
import { redoRecord, rmgrInfoName } from '../../lib/core/ts/pg/rmgr';
import { isStrataError, type StrataErrorCode } from '../../lib/errors';
import {
  HEAP2_NEW_CID, HEAP2_REWRITE, HEAP_TRUNCATE, RM_BTREE, RM_HASH, RM_HEAP, RM_HEAP2, RM_STRATA, XLOG_FPI, XLOG_FPI_FOR_HINT,
  heapConfirm, heapDelete, heapFreezePage, heapInplace, heapInsert, heapLock, heapLockUpdated, heapMultiInsert, heapPrune,
  heapUpdate, heapVacuum, heapVisible, lpFlags, noBlockRecord, pageField16, pageLsn, readTuple, seqLog, tuple, vmClear,
  vmTruncate, xlogFpi,
} from '../helpers/pg_heap_records';
import { nativePg } from '../helpers/pg_native';

const NATIVE = nativePg();
const BLCKSZ = 8192;

type Outcome = { page: Uint8Array } | { code: StrataErrorCode; message: string };

function outcome(run: () => void, page: Uint8Array): Outcome {
  try {
    run();
    return { page };
  } catch (e) {
    if (isStrataError(e)) return { code: e.code, message: e.message };
    throw e;
  }
}

/** Redo in both cores on copies of `page`; they must agree. Returns the new page or throws the StrataError. */
function redo(rec: Uint8Array, page: Uint8Array = new Uint8Array(BLCKSZ)): Uint8Array {
  const tsPage = page.slice();
  const ts = outcome(() => redoRecord(rec, 0, rec.length, tsPage, 0), tsPage);
  if (NATIVE !== null) {
    const natPage = page.slice();
    const nat = outcome(() => NATIVE.pgRedoRecord(rec, natPage), natPage);
    if ('page' in ts && 'page' in nat) expect(Buffer.compare(nat.page, ts.page), 'native and TS pages differ').toBe(0);
    else expect(nat).toEqual(ts);
  }
  if ('code' in ts) {
    // Rethrow as the caller would see it.
    redoRecord(rec, 0, rec.length, page.slice(), 0);
  }
  return (ts as { page: Uint8Array }).page;
}

function expectFailure(rec: Uint8Array, page: Uint8Array, code: StrataErrorCode, text: RegExp): void {
  try {
    redo(rec, page);
  } catch (e) {
    expect(isStrataError(e, code), String(e)).toBe(true);
    expect((e as Error).message).toMatch(text);
    return;
  }
  throw new Error(`expected ${code}`);
}

const XID = 731;
let lsnCounter = 0x1_0000_0000n;
function nextLsn(): bigint {
  lsnCounter += 0x58n;
  return lsnCounter;
}

/** A heap page holding the given tuple bodies at offsets 1..n (INSERT+INIT, then INSERTs). */
function heapPage(bodies: string[], blkno = 3): Uint8Array {
  let page = redo(heapInsert({ lsn: nextLsn(), xid: XID, blkno }, 1, tuple(bodies[0]), { init: true }));
  for (let i = 1; i < bodies.length; i++) page = redo(heapInsert({ lsn: nextLsn(), xid: XID, blkno }, i + 1, tuple(bodies[i])), page);
  return page;
}

function body(page: Uint8Array, offnum: number): string {
  const t = readTuple(page, offnum);
  return Buffer.from(t.bytes.subarray(t.hoff)).toString();
}

describe('Heap INSERT', () => {
  it('+INIT initializes the page and rebuilds the tuple header; INSERT adds at the logged offset', () => {
    const lsn = nextLsn();
    const page = redo(heapInsert({ lsn, xid: 900, blkno: 12 }, 1, tuple('hello', 3, 0x0802), { init: true }));
    expect(pageLsn(page)).toBe(lsn);
    expect(pageField16(page, 12)).toBe(28); // pd_lower: one line pointer
    const t = readTuple(page, 1);
    expect([t.xmin, t.xmax, t.cid, t.ctidBlock, t.ctidOffset, t.infomask2, t.infomask, t.hoff]).toEqual([900, 0, 0, 12, 1, 3, 0x0802, 24]);
    expect(t.len).toBe(23 + 6);
    expect(pageField16(page, 14)).toBe(BLCKSZ - 32);
    const lsn2 = nextLsn();
    const page2 = redo(heapInsert({ lsn: lsn2, xid: 901, blkno: 12 }, 2, tuple('world!')), page);
    expect(body(page2, 2)).toBe('world!');
    expect(readTuple(page2, 2).xmin).toBe(901);
    expect(pageLsn(page2)).toBe(lsn2);
    expect(body(page2, 1)).toBe('hello');
  });

  it('clears PD_ALL_VISIBLE with XLH_INSERT_ALL_VISIBLE_CLEARED and fills an unused slot', () => {
    const page = heapPage(['a', 'b', 'c']);
    page[10] |= PD_ALL_VISIBLE;
    const cleared = redo(heapInsert({ lsn: nextLsn(), blkno: 3 }, 4, tuple('d'), { flags: 0x01 }), page);
    expect(pageField16(cleared, 10) & PD_ALL_VISIBLE).toBe(0);
    // Slot 2 made unused by VACUUM semantics, then reused by an insert at offset 2.
    const pruned = redo(heapPrune({ lsn: nextLsn(), blkno: 3 }, [], [], [2]), page);
    const reused = redo(heapInsert({ lsn: nextLsn(), blkno: 3 }, 2, tuple('again')), pruned);
    expect(body(reused, 2)).toBe('again');
    expect(body(reused, 3)).toBe('c');
  });

  it('skips a record the page already has (pd_lsn at or past it) and fails on impossible states', () => {
    const page = heapPage(['a']);
    const old = heapInsert({ lsn: 0x10n, blkno: 3 }, 2, tuple('late'));
    expect(Buffer.compare(redo(old, page), page)).toBe(0);
    expectFailure(heapInsert({ lsn: nextLsn(), blkno: 3 }, 3, tuple('x')), page, 'REDO_FAILED', /Heap\/INSERT at 1\/[0-9A-F]+, block id 0 \(block 3\): invalid max offset number/);
    expectFailure(heapInsert({ lsn: nextLsn(), blkno: 3 }, 1, tuple('x')), page, 'REDO_FAILED', /failed to add tuple/);
    expectFailure(heapInsert({ lsn: nextLsn() }, 1, tuple('x')), new Uint8Array(BLCKSZ), 'REDO_FAILED', /page is new/);
    expectFailure(heapInsert({ lsn: nextLsn() }, 1, tuple('x'), { init: true, willInit: false }), page, 'REDO_FAILED', /WILL_INIT/);
    expectFailure(heapInsert({ lsn: nextLsn() }, 2, tuple('x'), { willInit: true }), page, 'REDO_FAILED', /WILL_INIT/);
    expectFailure(heapInsert({ lsn: nextLsn() }, 2, tuple(new Uint8Array(8200))), page, 'REDO_FAILED', /longer than a page allows/);
  });
});

describe('Heap DELETE, LOCK, LOCK_UPDATED, CONFIRM, INPLACE', () => {
  it('DELETE sets xmax, infomask bits, cmax, prune xid and ctid', () => {
    const page = heapPage(['a', 'b']);
    const out = redo(heapDelete({ lsn: nextLsn(), xid: 800, blkno: 3 }, 2, 800, 0x10 /* KEYS_UPDATED */, 0x01), page);
    const t = readTuple(out, 2);
    expect([t.xmax, t.cid, t.ctidBlock, t.ctidOffset]).toEqual([800, 0, 3, 2]);
    expect(t.infomask2 & 0x2000).toBe(0x2000);
    expect(t.infomask & 0x0800).toBe(0); // HEAP_XMAX_INVALID cleared
    expect(out[20] | (out[21] << 8)).toBe(800); // pd_prune_xid
    const superDel = redo(heapDelete({ lsn: nextLsn(), xid: 801, blkno: 3 }, 1, 801, 0, 0x08 | 0x10), page);
    const s = readTuple(superDel, 1);
    expect([s.xmin, s.ctidBlock >>> 0, s.ctidOffset]).toEqual([0, 0xffffffff, 0xfffd]);
    expectFailure(heapDelete({ lsn: nextLsn(), blkno: 3 }, 7, 800), page, 'REDO_FAILED', /invalid lp/);
  });

  it('LOCK of a lock-only xmax clears HOT_UPDATED and resets ctid; LOCK_UPDATED only sets xmax and bits', () => {
    const page = heapPage(['a']);
    const hot = redo(heapUpdate({ lsn: nextLsn(), blkno: 3 }, { hot: true, oldOffnum: 1, newOffnum: 2, oldXmax: 850, t: tuple('a2') }), page);
    expect(readTuple(hot, 1).infomask2 & 0x4000).toBe(0x4000);
    const locked = redo(heapLock({ lsn: nextLsn(), blkno: 3 }, 1, 860, 0x02 | 0x04), hot);
    const t = readTuple(locked, 1);
    expect(t.infomask2 & 0x4000).toBe(0);
    expect(t.infomask & 0x00c0).toBe(0x00c0); // LOCK_ONLY | EXCL_LOCK
    expect([t.xmax, t.ctidBlock, t.ctidOffset]).toEqual([860, 3, 1]);
    const lu = redo(heapLockUpdated({ lsn: nextLsn(), blkno: 3 }, 2, 870, 0x08), hot);
    const u = readTuple(lu, 2);
    expect(u.xmax).toBe(870);
    expect(u.infomask & 0x0010).toBe(0x0010);
  });

  it('CONFIRM points ctid at the tuple itself; INPLACE overwrites the body of the same length only', () => {
    const page = heapPage(['abc', 'def']);
    const t = readTuple(page, 2);
    expect(t.ctidOffset).toBe(2);
    const confirmed = redo(heapConfirm({ lsn: nextLsn(), blkno: 3 }, 2), page);
    expect(readTuple(confirmed, 2).ctidOffset).toBe(2);
    const inplace = redo(heapInplace({ lsn: nextLsn(), blkno: 3 }, 1, Buffer.from('xyz')), page);
    expect(body(inplace, 1)).toBe('xyz');
    expectFailure(heapInplace({ lsn: nextLsn(), blkno: 3 }, 1, Buffer.from('toolong')), page, 'REDO_FAILED', /wrong tuple length/);
  });
});

describe('Heap UPDATE / HOT_UPDATE', () => {
  it('same page: marks the old version, rebuilds the new one from prefix + logged bytes + suffix', () => {
    const page = heapPage(['AAAAABBBBBCCCCC']);
    // New body = prefix 'AAAAA' (from old, after its t_hoff) + 'XYZ' (logged) + suffix 'CCCCC' (from
    // old). The logged bytes start with t_hoff - 23 = 1 byte of header padding, which goes first.
    const out = redo(heapUpdate({ lsn: nextLsn(), xid: 880, blkno: 3 }, {
      hot: true, oldOffnum: 1, newOffnum: 2, oldXmax: 880, newXmax: 0, prefix: 5, suffix: 5,
      t: { infomask2: 0x8002, infomask: 0x2802, hoff: 24, body: Uint8Array.from([0, ...Buffer.from('XYZ')]) },
    }), page);
    expect(body(out, 2)).toBe('AAAAAXYZCCCCC');
    const oldT = readTuple(out, 1);
    expect([oldT.xmax, oldT.ctidBlock, oldT.ctidOffset]).toEqual([880, 3, 2]);
    expect(oldT.infomask2 & 0x4000).toBe(0x4000);
    const newT = readTuple(out, 2);
    expect([newT.xmin, newT.infomask2, newT.infomask]).toEqual([880, 0x8002, 0x2802]);
  });

  it('across pages: block 1 takes the old half, block 0 (+INIT) the new half', () => {
    const oldPage = heapPage(['old'], 5);
    const spec = { init: true, oldOffnum: 1, newOffnum: 1, oldXmax: 890, t: tuple('new'), oldBlkno: 5 };
    const oldOut = redo(heapUpdate({ lsn: nextLsn(), blkno: 9 }, { ...spec, targetId: 1 }), oldPage);
    expect([readTuple(oldOut, 1).xmax, readTuple(oldOut, 1).ctidBlock, readTuple(oldOut, 1).ctidOffset]).toEqual([890, 9, 1]);
    const newOut = redo(heapUpdate({ lsn: nextLsn(), blkno: 9 }, spec));
    expect(body(newOut, 1)).toBe('new');
    expect(readTuple(newOut, 1).ctidBlock).toBe(9);
    const newPage = heapPage(['x'], 9);
    expectFailure(heapUpdate({ lsn: nextLsn(), blkno: 9 }, { ...spec, newOffnum: 2, init: false, prefix: 1 }), newPage, 'REDO_FAILED', /another page/);
  });

  it('rejects a prefix longer than the old tuple', () => {
    const page = heapPage(['short']);
    expectFailure(heapUpdate({ lsn: nextLsn(), blkno: 3 }, { oldOffnum: 1, newOffnum: 2, oldXmax: 1, prefix: 90, t: tuple('x') }), page,
      'REDO_FAILED', /longer than the old tuple/);
  });
});

describe('Heap2 PRUNE, VACUUM, FREEZE_PAGE', () => {
  it('PRUNE redirects, kills and frees line pointers, then repacks the page', () => {
    const page = heapPage(['one', 'two', 'three', 'four', 'five']);
    const out = redo(heapPrune({ lsn: nextLsn(), blkno: 3 }, [[1, 3]], [2], [5]), page);
    expect([lpFlags(out, 1), lpFlags(out, 2), lpFlags(out, 3), lpFlags(out, 4)]).toEqual([2, 3, 1, 1]);
    expect(pageField16(out, 12)).toBe(24 + 4 * 4); // trailing unused pointer 5 truncated
    expect(body(out, 3)).toBe('three');
    expect(body(out, 4)).toBe('four');
    expect(pageField16(out, 14)).toBe(BLCKSZ - 32 - 32); // two tuples left, 32 bytes each
    expectFailure(heapPrune({ lsn: nextLsn(), blkno: 3 }, [], [9], []), page, 'REDO_FAILED', /offset 9 beyond the line pointer array \(5 items\)/);
  });

  it('VACUUM frees dead line pointers and truncates the array; FREEZE_PAGE applies the plans', () => {
    const page = heapPage(['a', 'b', 'c']);
    const dead = redo(heapPrune({ lsn: nextLsn(), blkno: 3 }, [], [2, 3], []), page);
    const vac = redo(heapVacuum({ lsn: nextLsn(), blkno: 3 }, [2, 3]), dead);
    expect(pageField16(vac, 12)).toBe(28);
    const frozen = redo(heapFreezePage({ lsn: nextLsn(), blkno: 3 }, [{ offset: 1, xmax: 0, infomask2: 2, infomask: 0x0b02, frzflags: 0 }]), page);
    const t = readTuple(frozen, 1);
    expect([t.xmax, t.infomask, t.infomask2]).toEqual([0, 0x0b02, 2]);
    const xvac = redo(heapFreezePage({ lsn: nextLsn(), blkno: 3 }, [{ offset: 2, xmax: 5, infomask2: 2, infomask: 0xc000, frzflags: 0x02 }]), page);
    expect(readTuple(xvac, 2).cid).toBe(2);
  });
});

describe('Heap2 VISIBLE', () => {
  it('heap page: PD_ALL_VISIBLE without an LSN bump, unless hint bits are logged', () => {
    const page = heapPage(['a']);
    const before = pageLsn(page);
    const out = redo(heapVisible({ lsn: nextLsn() }, 1, 3, 0, 3), page);
    expect(pageField16(out, 10) & PD_ALL_VISIBLE).toBe(PD_ALL_VISIBLE);
    expect(pageLsn(out)).toBe(before);
    const lsn = nextLsn();
    const hinted = redo(heapVisible({ lsn, clusterFlags: 0x02 }, 1, 3, 0, 3), page);
    expect(pageLsn(hinted)).toBe(lsn);
  });

  it('VM page: initialized when new, the heap block\'s two bits set, LSN bumped only on a change', () => {
    const heapBlk = 32672 + 4 * 10 + 2; // VM block 1, byte 10, bits 4..5
    const lsn = nextLsn();
    const vm = redo(heapVisible({ lsn }, 0, heapBlk, 1, 0x03));
    expect(pageField16(vm, 12)).toBe(24);
    expect(pageField16(vm, 16)).toBe(BLCKSZ);
    expect(vm[24 + 10]).toBe(0x03 << 4);
    expect(pageLsn(vm)).toBe(lsn);
    const again = redo(heapVisible({ lsn: nextLsn() }, 0, heapBlk, 1, 0x03), vm);
    expect(pageLsn(again)).toBe(lsn);
    expectFailure(heapVisible({ lsn: nextLsn() }, 0, 5, 1, 1), vm, 'REDO_FAILED', /wrong VM page/);
  });
});

describe('Heap2 MULTI_INSERT, no-op records', () => {
  it('+INIT places tuples at 1..n (SHORTALIGNed headers); without INIT at the logged offsets', () => {
    const ts = [tuple('x'), tuple('yy'), tuple('zzz')];
    const page = redo(heapMultiInsert({ lsn: nextLsn(), xid: 950, blkno: 4 }, ts, { init: true, flags: 0x20 }));
    expect([body(page, 1), body(page, 2), body(page, 3)]).toEqual(['x', 'yy', 'zzz']);
    expect(readTuple(page, 3).ctidOffset).toBe(3);
    expect(pageField16(page, 10) & PD_ALL_VISIBLE).toBe(PD_ALL_VISIBLE); // ALL_FROZEN_SET
    const more = redo(heapMultiInsert({ lsn: nextLsn(), xid: 951, blkno: 4 }, [tuple('p'), tuple('q')], { offsets: [4, 5] }), page);
    expect([body(more, 4), body(more, 5)]).toEqual(['p', 'q']);
    const bad = heapMultiInsert({ lsn: nextLsn(), blkno: 4 }, [tuple('p')], { offsets: [4, 5] });
    bad.writeUInt16LE(2, bad.length - 6); // ntuples 2 but one tuple's data
    expectFailure(bad, page, 'REDO_FAILED', /block data ends inside a tuple header/);
  });

  it('Heap TRUNCATE, Heap2 NEW_CID and REWRITE leave the page as it is', () => {
    const page = heapPage(['a']);
    for (const [rmid, info] of [[RM_HEAP, HEAP_TRUNCATE], [RM_HEAP2, HEAP2_NEW_CID], [RM_HEAP2, HEAP2_REWRITE]]) {
      expect(Buffer.compare(redo(noBlockRecord({ lsn: nextLsn() }, rmid, info), page), page)).toBe(0);
    }
  });
});

describe('Sequence LOG, XLOG FPI, rmgr 255', () => {
  it('Sequence LOG rebuilds the page: special magic, the tuple at 1, the LSN', () => {
    const item = Uint8Array.from({ length: 41 }, (_, i) => i + 1);
    const lsn = nextLsn();
    const page = redo(seqLog({ lsn }, item));
    expect(pageField16(page, 16)).toBe(BLCKSZ - 8);
    expect(Buffer.from(page).readUInt32LE(BLCKSZ - 8)).toBe(0x1717);
    expect(readTuple(page, 1).bytes).toEqual(item);
    expect(pageLsn(page)).toBe(lsn);
  });

  it('XLOG FPI_FOR_HINT without an image is a no-op; an FPI or an unapplied image cannot be redone', () => {
    const page = heapPage(['a']);
    expect(Buffer.compare(redo(xlogFpi({ lsn: nextLsn() }, XLOG_FPI_FOR_HINT, 'none'), page), page)).toBe(0);
    expectFailure(xlogFpi({ lsn: nextLsn() }, XLOG_FPI, 'none'), page, 'REDO_FAILED', /XLOG\/FPI at .*did not contain a full-page image/);
    expectFailure(xlogFpi({ lsn: nextLsn() }, XLOG_FPI_FOR_HINT, 'noapply'), page, 'REDO_FAILED', /BKPIMAGE_APPLY unset/);
    expectFailure(xlogFpi({ lsn: nextLsn() }, XLOG_FPI, 'apply'), page, 'REDO_FAILED', /should have been stored as an image record/);
  });

  it('VM_CLEAR clears the bits of the heap blocks on this VM page only; no LSN change', () => {
    const vm = new Uint8Array(BLCKSZ);
    pageInit(vm, 0);
    vm.fill(0xff, 24);
    const out = redo(vmClear({ lsn: nextLsn(), blkno: 0 }, 5, 40000, 0x03), vm);
    expect(out[24 + 1]).toBe(0xff & ~(0x03 << 2));
    expect(pageLsn(out)).toBe(0n);
    const frozenOnly = redo(vmClear({ lsn: nextLsn(), blkno: 1 }, 0xffffffff, 32672 + 3, 0x02), vm);
    expect(frozenOnly[24]).toBe(0xff & ~(0x02 << 6));
    const fresh = redo(vmClear({ lsn: nextLsn(), blkno: 0 }, 1, 0xffffffff, 0x03));
    expect(pageField16(fresh, 14)).toBe(BLCKSZ);
    expectFailure(vmClear({ lsn: nextLsn(), blkno: 2 }, 1, 2, 3), vm, 'REDO_FAILED', /no heap block of VM_CLEAR maps/);
    expectFailure(vmClear({ lsn: nextLsn(), blkno: 0 }, 1, 2, 3, 0), vm, 'REDO_FAILED', /outside the VM fork/);
  });

  it('VM_TRUNCATE clears the tail of the last VM page, leaves earlier pages, empties later ones', () => {
    const vm = new Uint8Array(BLCKSZ);
    pageInit(vm, 0);
    vm.fill(0xff, 24);
    const out = redo(vmTruncate({ lsn: nextLsn(), blkno: 0 }, 4 * 100 + 2), vm);
    expect(out[24 + 99]).toBe(0xff);
    expect(out[24 + 100]).toBe(0x0f);
    expect(out.subarray(24 + 101).every((b) => b === 0)).toBe(true);
    expect(Buffer.compare(redo(vmTruncate({ lsn: nextLsn(), blkno: 0 }, 32672), vm), vm)).toBe(0);
    const gone = redo(vmTruncate({ lsn: nextLsn(), blkno: 1 }, 100), vm);
    expect(gone.subarray(24).every((b) => b === 0)).toBe(true);
  });
});

describe('dispatch', () => {
  it('record types without redo fail with WAL_UNSUPPORTED naming rmgr/INFO and the LSN', () => {
    const page = heapPage(['a']);
    expectFailure(noBlockRecord({ lsn: 0x2_0000_1000n }, RM_HASH, 0x20), page, 'WAL_UNSUPPORTED', /^WAL_UNSUPPORTED: Hash\/INSERT at 2\/1000: /);
    expectFailure(noBlockRecord({ lsn: nextLsn() }, RM_BTREE, 0xf0), page, 'WAL_UNSUPPORTED', /Btree\/UNKNOWN \(f0\)/i);
    expectFailure(noBlockRecord({ lsn: nextLsn() }, RM_HEAP, 0x90), page, 'WAL_UNSUPPORTED', /Heap\/UNKNOWN \(90\)/);
    expectFailure(noBlockRecord({ lsn: nextLsn() }, RM_STRATA, 0x50), page, 'WAL_UNSUPPORTED', /Strata\/UNKNOWN \(50\)/);
    expectFailure(Buffer.from([4]), page, 'REDO_FAILED', /malformed PostgreSQL record/);
  });

  it('a checksummed cluster gets pd_checksum recomputed for the block', () => {
    const page = redo(heapInsert({ lsn: nextLsn(), blkno: 77, clusterFlags: 0x01 }, 1, tuple('sum'), { init: true }));
    expect(pageField16(page, 8)).toBe(pgChecksumPage(page, 77));
    expect(pageField16(page, 8)).not.toBe(0);
  });

  it('names every (rmid, info) as pg_waldump does, the same in both cores', () => {
    expect(rmgrInfoName(10, 0x80)).toBe('Heap/INSERT+INIT');
    expect(rmgrInfoName(9, 0xd0)).toBe('Heap2/MULTI_INSERT+INIT');
    expect(rmgrInfoName(1, 0x80)).toBe('Transaction/COMMIT');
    expect(rmgrInfoName(0, 0xb0)).toBe('XLOG/FPI');
    expect(rmgrInfoName(20, 0x30)).toBe('Generic/Generic');
    expect(rmgrInfoName(200, 0x10)).toBe('custom200/UNKNOWN (10)');
    if (NATIVE === null) return;
    for (let rmid = 0; rmid < 256; rmid++) {
      for (let info = 0; info < 256; info++) expect(NATIVE.pgRmgrInfoName(rmid, info)).toBe(rmgrInfoName(rmid, info));
    }
  });
});
