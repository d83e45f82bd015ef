/**
 * The flush pipeline (docs/ARCHITECTURE.md, "Flush"): with several frozen layers, the next
 * layer's L0 is written while the one before commits, the commits stay in LSN order, L0
 * backpressure turns the overlap off, and a layer written ahead of a failed commit is removed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { isStrataError, PAGE_SIZE, Repository, type RepositoryOptions, type Timeline, type WalRecord } from '../lib';
import type { ImplementationName } from '../lib/core/core';
import type { InMemoryLayer } from '../lib/engine/inmemory_layer';
import type { LayerSet, WrittenL0 } from '../lib/engine/layer_set';
import { armFault, clearFaults } from '../lib/fault_injection';
import { timelineImpl } from '../lib/timeline';
import { describeEachCore } from './helpers/cores';

const LAYERS = 4;
const PAGES_PER_LAYER = 6;
const LSN_STEP = 0x40n;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

interface Event { what: 'write start' | 'write end' | 'commit start' | 'commit end'; layerStart: bigint }

/** Log every write and commit of the timeline's flush, by the frozen layer's start LSN. */
function spyOnFlush(tl: Timeline): Event[] {
  const events: Event[] = [];
  const set = (timelineImpl(tl) as unknown as { layerSet: LayerSet }).layerSet;
  const write = set.writeFrozen.bind(set);
  const commit = set.commitFrozen.bind(set);
  set.writeFrozen = async (layer: InMemoryLayer, onEncoded: () => void): Promise<WrittenL0> => {
    const layerStart = layer.startLsn;
    events.push({ what: 'write start', layerStart });
    const w = await write(layer, onEncoded);
    events.push({ what: 'write end', layerStart });
    return w;
  };
  set.commitFrozen = async (w: WrittenL0): Promise<void> => {
    events.push({ what: 'commit start', layerStart: w.layer.startLsn });
    await commit(w);
    events.push({ what: 'commit end', layerStart: w.layer.startLsn });
  };
  return events;
}

function pageFor(n: number): Buffer {
  const page = Buffer.alloc(PAGE_SIZE, n & 0xff);
  page.writeUInt32BE(n, 0);
  return page;
}

/** LAYERS batches, each crossing the checkpoint distance, so each freezes a layer. */
function ingestLayers(tl: Timeline): void {
  for (let b = 0; b < LAYERS; b++) {
    const batch: WalRecord[] = [];
    for (let i = 0; i < PAGES_PER_LAYER; i++) {
      const n = b * PAGES_PER_LAYER + i;
      batch.push({ lsn: BigInt(n + 1) * LSN_STEP, key: { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: n }, kind: 'image', page: pageFor(n) });
    }
    tl.ingest(batch);
  }
}

async function openTimeline(impl: ImplementationName, extra: Partial<RepositoryOptions>): Promise<{ dir: string; repo: Repository; tl: Timeline }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-flush-pipeline-${impl}-`));
  dirs.push(dir);
  const repo = await Repository.open(dir, {
    implementation: impl, checkpointDistance: PAGE_SIZE, compactionThreshold: 1_000, l0FlushDelayThreshold: 0, l0FlushStallThreshold: 0, ...extra,
  });
  const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
  return { dir, repo, tl };
}

function layerFiles(dir: string): string[] {
  return fs.readdirSync(path.join(dir, 'tenants', 't', 'timelines', 'main')).filter((f) => f !== 'manifest' && !f.startsWith('.')).sort();
}

async function expectAllPages(tl: Timeline, upTo: number): Promise<void> {
  for (let n = 0; n < upTo; n++) {
    const got = await tl.getPage({ spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: n }, tl.lastRecordLsn);
    expect(got.equals(pageFor(n)), `page ${n}`).toBe(true);
  }
}

describeEachCore('flush pipeline (%s core)', (impl) => {
  it('writes the next layer while the one before commits, and commits in LSN order', async () => {
    const { dir, repo, tl } = await openTimeline(impl, {});
    const events = spyOnFlush(tl);
    ingestLayers(tl);
    await tl.flush();
    const commits = events.filter((e) => e.what === 'commit end').map((e) => e.layerStart);
    expect(commits.length).toBe(LAYERS);
    expect([...commits].sort((a, b) => (a < b ? -1 : 1))).toEqual(commits);
    // Some layer's write started before the commit of the layer before it ended.
    const overlapped = commits.slice(1).some((start, i) => {
      const writeStart = events.findIndex((e) => e.what === 'write start' && e.layerStart === start);
      const prevCommitEnd = events.findIndex((e) => e.what === 'commit end' && e.layerStart === commits[i]);
      return writeStart < prevCommitEnd;
    });
    expect(overlapped, JSON.stringify(events, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString(16) : v))).toBe(true);
    expect(tl.stats().l0Count).toBe(LAYERS);
    await repo.close();
    const again = await Repository.open(dir, { implementation: impl });
    await expectAllPages(again.getTimeline('t', 'main'), LAYERS * PAGES_PER_LAYER);
    await again.close();
  });

  it('does not write ahead while L0 backpressure applies', async () => {
    const { repo, tl } = await openTimeline(impl, { l0FlushDelayThreshold: 1 });
    const events = spyOnFlush(tl);
    ingestLayers(tl);
    await tl.flush();
    // Each write starts only after the commit before it ended: strictly alternating.
    const kinds = events.filter((e) => e.what === 'write start' || e.what === 'commit end').map((e) => e.what);
    expect(kinds).toEqual(Array.from({ length: LAYERS }, () => ['write start', 'commit end']).flat());
    await repo.close();
  });

  it('removes the layer written ahead when the commit before it fails', async () => {
    const { dir, repo, tl } = await openTimeline(impl, {});
    const events = spyOnFlush(tl);
    // The first manifest write is the first frozen layer's commit.
    armFault('write', 1, 'EIO');
    let failure: unknown = null;
    try {
      ingestLayers(tl);
      await tl.flush();
    } catch (e) {
      failure = e;
    } finally {
      clearFaults();
    }
    expect(isStrataError(failure, 'IO_ERROR'), String(failure)).toBe(true);
    // Later layers were written ahead, and are gone again. The first layer's own file stays an
    // orphan until reopen, as after any failed commit.
    const written = events.filter((e) => e.what === 'write end').map((e) => e.layerStart);
    expect(written.length).toBeGreaterThanOrEqual(2);
    expect(events[0].what).toBe('write start');
    const left = layerFiles(dir).filter((f) => !f.endsWith('.tmp'));
    expect(left.length).toBe(1);
    expect(left[0]).toMatch(new RegExp(`__${(events[0].layerStart + 1n).toString(16).toUpperCase().padStart(16, '0')}-`));
    await repo.close();
    const again = await Repository.open(dir, { implementation: impl });
    expect(again.getTimeline('t', 'main').diskConsistentLsn).toBe(0n);
    expect(layerFiles(dir)).toEqual([]);
    await again.close();
  });
});
