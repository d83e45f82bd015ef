/**
 * The remote-storage measurement (issue 15, item 8), run by bench/remote.js with vite-node because
 * the radosgw helper is a TypeScript test helper: per backend (a local directory; S3 against a
 * radosgw the script starts, when it can run here), with `compression: 'none'` and random pages:
 *
 *   upload MB/s        `await tl.syncRemote()` right after each flush of `layerPages` pages
 *                      (the upload starts at the flush's commit; layer bytes / sync time)
 *   attach ms          `attachTenant` on a second directory (on demand: indexes only)
 *   first read ms      attach-to-first-read: attach plus one getPage at the newest LSN, which
 *                      downloads the layers that read needs (an image layer and the delta below it)
 *   download MB/s      bytes that first read downloaded / its time
 *   cold read p50/p99  one getPage at each segment's LSN, in random order, each downloading its
 *                      segment's layers (on demand), beside the same reads again (local layers)
 *
 * Prints one JSON object. Usage: vite-node bench/lib/remote_bench.ts '{"layerPages":2000,"segments":12}'
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type PageKey, Repository, type Timeline, type WalRecord } from '../../lib';
import type { RemoteConfig, RemoteStorageOptions } from '../../lib/remote/remote_storage';
import { s3Availability, S3Server } from '../../test/helpers/s3_server';

interface Params {
  /** Pages per flush (each an 8 KB random image): a layer of about layerPages × 8 KB. */
  layerPages: number;
  /** Segments: a flushed delta and an image layer each. */
  segments: number;
}

interface BackendResult {
  backend: string;
  layerBytes: number;
  uploadMBps: number[];
  attachMs: number;
  firstReadMs: number;
  firstReadDownloadedBytes: number;
  downloadMBps: number;
  coldReads: number;
  coldBytesPerRead: number;
  coldP50Ms: number;
  coldP99Ms: number;
  localP50Ms: number;
  localP99Ms: number;
}

const MB = 1e6;
const params: Params = { layerPages: 2000, segments: 12, ...(JSON.parse(process.argv[2] ?? '{}') as Partial<Params>) };

function key(i: number): PageKey {
  return { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: i };
}

/** A deterministic xorshift, so runs write the same bytes. */
function filler(seed: number): (buf: Buffer) => void {
  let x = seed >>> 0 || 1;
  return (buf) => {
    for (let o = 0; o < buf.length; o += 4) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      buf.writeUInt32LE(x, o);
    }
  };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

async function measure(backend: string, remote: RemoteConfig, options: RemoteStorageOptions, root: string): Promise<BackendResult> {
  const fill = filler(7);
  const uploadMBps: number[] = [];
  const segmentLsns: bigint[] = [];
  let layerBytes = 0;
  const a = await Repository.open(path.join(root, `${backend}-a`), { remote, remoteStorageOptions: options, compression: 'none', checkpointDistance: 2 ** 30 });
  try {
    const tl = await a.createTimeline({ tenantId: 't1', timelineId: 'main' });
    let lsn = 0x100n;
    for (let s = 0; s < params.segments; s++) {
      const records: WalRecord[] = [];
      for (let i = 0; i < params.layerPages; i++) {
        const page = Buffer.allocUnsafe(8192);
        fill(page);
        records.push({ lsn: (lsn += 8n), key: key(i), kind: 'image', page });
      }
      tl.ingest(records);
      await tl.flush();
      const bytes = tl.layers().at(-1)!.sizeBytes;
      layerBytes = Math.max(layerBytes, bytes);
      const t0 = performance.now();
      await tl.syncRemote();
      uploadMBps.push(bytes / MB / ((performance.now() - t0) / 1000));
      await tl.createImageLayer(tl.lastRecordLsn);
      segmentLsns.push(tl.lastRecordLsn);
    }
    await tl.syncRemote();
  } finally {
    await a.close();
  }

  const b = await Repository.open(path.join(root, `${backend}-b`), { remote, remoteStorageOptions: options });
  let attachMs: number;
  let firstReadMs: number;
  let firstBytes: number;
  let tl: Timeline;
  try {
    const t0 = performance.now();
    await b.attachTenant('t1');
    attachMs = performance.now() - t0;
    tl = b.getTimeline('t1', 'main');
    await tl.getPage(key(1), tl.lastRecordLsn);
    firstReadMs = performance.now() - t0;
    firstBytes = b.stats().localLayers!.downloadedBytes;
  } finally {
    await b.close();
  }

  // Cold reads: a fresh attach; each segment's LSN once, in a shuffled order, then again (local).
  const c = await Repository.open(path.join(root, `${backend}-c`), { remote, remoteStorageOptions: options });
  const cold: number[] = [];
  const local: number[] = [];
  let coldBytes = 0;
  try {
    await c.attachTenant('t1');
    const ctl = c.getTimeline('t1', 'main');
    const order = segmentLsns.map((l, i) => ({ l, r: (i * 7919) % segmentLsns.length })).sort((x, y) => x.r - y.r).map((x) => x.l);
    for (const [i, l] of order.entries()) {
      const t0 = performance.now();
      await ctl.getPage(key(i % params.layerPages), l);
      cold.push(performance.now() - t0);
    }
    coldBytes = c.stats().localLayers!.downloadedBytes;
    for (let round = 0; round < 5; round++) {
      for (const [i, l] of order.entries()) {
        const t0 = performance.now();
        await ctl.getPage(key((i + round + 1) % params.layerPages), l);
        local.push(performance.now() - t0);
      }
    }
  } finally {
    await c.close();
  }
  cold.sort((x, y) => x - y);
  local.sort((x, y) => x - y);
  return {
    backend, layerBytes, uploadMBps,
    attachMs, firstReadMs, firstReadDownloadedBytes: firstBytes, downloadMBps: firstBytes / MB / ((firstReadMs - attachMs) / 1000),
    coldReads: cold.length, coldBytesPerRead: coldBytes / cold.length,
    coldP50Ms: percentile(cold, 0.5), coldP99Ms: percentile(cold, 0.99),
    localP50Ms: percentile(local, 0.5), localP99Ms: percentile(local, 0.99),
  };
}

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-remote-bench-'));
  const results: Array<BackendResult | { backend: string; skipped: string }> = [];
  let server: S3Server | null = null;
  try {
    results.push(await measure('local', { type: 'local', path: path.join(root, 'store') }, {}, root));
    const s3 = s3Availability();
    if (!s3.ok) {
      results.push({ backend: 's3', skipped: s3.reason });
    } else {
      server = await S3Server.start();
      results.push(await measure('s3', server.config('bench'), server.options(), root));
    }
  } finally {
    await server?.destroy();
    fs.rmSync(root, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify({ params, results }) + '\n');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
