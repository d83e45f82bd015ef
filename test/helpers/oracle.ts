/**
 * The plain in-memory model every randomized test checks Strata against: every record of every
 * timeline kept in a list, pages computed by replaying from the newest will_init record.
 */
import type { PageKey, WalRecord } from '../../lib';
import { PAGE_SIZE } from '../../lib';

interface OracleTimeline {
  ancestor: string | null;
  ancestorLsn: bigint | null;
  records: Map<string, WalRecord[]>; // per key, ascending LSN
  lastRecordLsn: bigint;
}

export function keyId(k: PageKey): string {
  return `${k.spcOid}/${k.dbOid}/${k.relNumber}/${k.forkNum}/${k.blockNum}`;
}

export class Oracle {
  readonly timelines = new Map<string, OracleTimeline>();

  createTimeline(id: string, ancestor: string | null = null, ancestorLsn: bigint | null = null): void {
    const start = ancestorLsn ?? 0n;
    this.timelines.set(id, { ancestor, ancestorLsn, records: new Map(), lastRecordLsn: start });
  }

  ingest(id: string, records: readonly WalRecord[]): void {
    const t = this.timelines.get(id)!;
    for (const r of records) {
      const k = keyId(r.key);
      let list = t.records.get(k);
      if (!list) t.records.set(k, (list = []));
      list.push(r);
      t.lastRecordLsn = r.lsn;
    }
  }

  lastRecordLsn(id: string): bigint {
    return this.timelines.get(id)!.lastRecordLsn;
  }

  /** The page at `lsn`, or null when no will_init record exists at or below it. */
  getPage(id: string, key: PageKey, lsn: bigint): Buffer | null {
    const chain: WalRecord[] = [];
    let cap = lsn;
    for (let tid: string | null = id; tid !== null;) {
      const t: OracleTimeline = this.timelines.get(tid)!;
      const list = t.records.get(keyId(key)) ?? [];
      for (let i = list.length - 1; i >= 0; i--) {
        if (list[i].lsn > cap) continue;
        chain.push(list[i]);
        if (list[i].kind !== 'patch') return replay(chain);
      }
      if (t.ancestorLsn !== null && t.ancestorLsn < cap) cap = t.ancestorLsn;
      tid = t.ancestor;
    }
    return null;
  }

  /** Every key any timeline has touched. */
  allKeys(): PageKey[] {
    const m = new Map<string, PageKey>();
    for (const t of this.timelines.values()) for (const list of t.records.values()) m.set(keyId(list[0].key), list[0].key);
    return [...m.values()];
  }
}

function replay(newestFirst: WalRecord[]): Buffer {
  const page = Buffer.alloc(PAGE_SIZE);
  for (let i = newestFirst.length - 1; i >= 0; i--) {
    const r = newestFirst[i];
    if (r.kind === 'image') page.set(r.page);
    else if (r.kind === 'zero') page.fill(0);
    else page.set(r.data, r.offset);
  }
  return page;
}
