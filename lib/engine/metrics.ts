/**
 * The repository's metrics, labelled by tenant and timeline as Neon's pageserver labels them, as
 * metric families: rendered here as Prometheus text exposition (format 0.0.4, each family's samples
 * together under its HELP and TYPE), and read by lib/service/prom_metrics.ts, which registers them
 * into a caller's prom-client Registry. The engine itself needs no metrics library.
 */
import type { PageCacheStats } from '../core/core';
import type { DecodedPageCacheStats } from './decoded_page_cache';
import type { BreakerState } from './circuit_breaker';
import type { IntHistogram } from './histogram';
import type { TimelineImpl } from './timeline';

/** Read-amplification buckets, as Neon's pageserver_layers_per_read (1 … 1024). */
const READ_BUCKETS = [1, 2, 3, 4, 8, 16, 32, 64, 128, 256, 1024];

export type MetricLabels = Record<string, string>;
export type MetricType = 'counter' | 'gauge' | 'histogram';

/** One sample line: `suffix` is '_bucket', '_sum' or '_count' for a histogram's lines, '' otherwise. */
export interface MetricSample {
  suffix: '' | '_bucket' | '_sum' | '_count';
  labels: MetricLabels;
  /** LSNs stay bigint so the text form is exact; Prometheus itself keeps a float64. */
  value: number | bigint;
}

export interface MetricFamily {
  name: string;
  type: MetricType;
  help: string;
  samples: MetricSample[];
}

class Collector {
  private readonly families = new Map<string, MetricFamily>();

  metric(name: MetricName, labels: MetricLabels, value: number | bigint): void {
    this.family(name).samples.push({ suffix: '', labels, value });
  }

  histogram(name: MetricName, labels: MetricLabels, h: IntHistogram, sum: number): void {
    const f = this.family(name);
    const cumulative = h.cumulative(READ_BUCKETS);
    READ_BUCKETS.forEach((b, i) => f.samples.push({ suffix: '_bucket', labels: { ...labels, le: String(b) }, value: cumulative[i] }));
    f.samples.push({ suffix: '_bucket', labels: { ...labels, le: '+Inf' }, value: h.count });
    f.samples.push({ suffix: '_sum', labels, value: sum });
    f.samples.push({ suffix: '_count', labels, value: h.count });
  }

  list(): MetricFamily[] {
    return [...this.families.values()];
  }

  private family(name: MetricName): MetricFamily {
    let f = this.families.get(name);
    if (f === undefined) {
      f = { name, ...METRIC_DEFS[name], samples: [] };
      this.families.set(name, f);
    }
    return f;
  }
}

function fmtLabels(labels: MetricLabels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** Prometheus text exposition of metric families. */
export function formatMetrics(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) lines.push(`${f.name}${s.suffix}${fmtLabels(s.labels)} ${String(s.value)}`);
  }
  return lines.join('\n') + '\n';
}

export function renderMetrics(implementation: string, cache: PageCacheStats, decoded: DecodedPageCacheStats, timelines: readonly TimelineImpl[]): string {
  return formatMetrics(collectMetrics(implementation, cache, decoded, timelines));
}

/** Every family the repository exports: name → type and help (the one place they are declared). */
export const METRIC_DEFS = {
  strata_page_cache_hits_total: { type: 'counter', help: 'Layer-file block reads served from the page cache.' },
  strata_page_cache_misses_total: { type: 'counter', help: 'Layer-file block reads that went to disk.' },
  strata_page_cache_evictions_total: { type: 'counter', help: 'Blocks evicted by the clock.' },
  strata_page_cache_capacity_pages: { type: 'gauge', help: 'Page cache slots (8 KiB each).' },
  strata_page_cache_used_pages: { type: 'gauge', help: 'Page cache slots holding a block.' },
  strata_decoded_page_cache_hits_total: { type: 'counter', help: 'GetPage@LSN requests answered from the decoded-page cache.' },
  strata_decoded_page_cache_misses_total: { type: 'counter', help: 'GetPage@LSN requests the decoded-page cache did not hold.' },
  strata_decoded_page_cache_evictions_total: { type: 'counter', help: 'Whole pages evicted from the decoded-page cache.' },
  strata_decoded_page_cache_invalidations_total: { type: 'counter', help: 'Decoded pages closed by a newer record of their key.' },
  strata_decoded_page_cache_capacity_pages: { type: 'gauge', help: 'Decoded-page cache slots (8 KiB each).' },
  strata_decoded_page_cache_used_pages: { type: 'gauge', help: 'Decoded-page cache slots holding a page.' },
  strata_last_record_lsn: { type: 'gauge', help: 'Newest ingested LSN.' },
  strata_disk_consistent_lsn: { type: 'gauge', help: 'Newest durable LSN.' },
  strata_gc_cutoff_lsn: { type: 'gauge', help: 'Reads below this LSN are refused.' },
  strata_layers: { type: 'gauge', help: 'Layer files by kind and level.' },
  strata_open_layer_bytes: { type: 'gauge', help: 'Bytes of records in the open in-memory layer.' },
  strata_physical_size_bytes: { type: 'gauge', help: 'Bytes of layer files.' },
  strata_reads_total: { type: 'counter', help: 'GetPage@LSN requests served.' },
  strata_bytes_written_total: { type: 'counter', help: 'Layer-file bytes written, by operation (write amplification).' },
  strata_gc_bytes_removed_total: { type: 'counter', help: 'Layer-file bytes removed by GC.' },
  strata_flush_delays_total: { type: 'counter', help: 'Flushes slowed by L0 backpressure.' },
  strata_flush_stalls_total: { type: 'counter', help: 'Flushes that compacted first under L0 backpressure.' },
  strata_layers_visited_per_read: { type: 'histogram', help: 'Layer files visited per GetPage@LSN.' },
  strata_records_applied_per_read: { type: 'histogram', help: 'WAL records applied per GetPage@LSN.' },
  strata_remote_consistent_lsn: { type: 'gauge', help: 'diskConsistentLsn of the newest index in remote storage.' },
  strata_remote_upload_queue_objects: { type: 'gauge', help: 'Layers and index waiting to be uploaded.' },
  strata_remote_upload_queue_bytes: { type: 'gauge', help: 'Layer bytes waiting to be uploaded.' },
  strata_remote_deletion_queue_objects: { type: 'gauge', help: 'Remote layer objects waiting to be deleted.' },
  strata_remote_uploads_total: { type: 'counter', help: 'Objects uploaded (layers and indexes).' },
  strata_remote_uploaded_bytes_total: { type: 'counter', help: 'Bytes uploaded.' },
  strata_remote_deletions_total: { type: 'counter', help: 'Remote layer objects deleted.' },
  strata_remote_failures_total: { type: 'counter', help: 'Failed remote storage calls (each is retried).' },
  strata_remote_local_layer_bytes: { type: 'gauge', help: 'Bytes of layer files on local disk.' },
  strata_remote_only_layer_bytes: { type: 'gauge', help: 'Bytes of layers in remote storage only (evicted or not yet downloaded).' },
  strata_remote_ondemand_downloads_total: { type: 'counter', help: 'Layers downloaded on demand.' },
  strata_remote_ondemand_downloaded_bytes_total: { type: 'counter', help: 'Bytes of layers downloaded on demand.' },
  strata_remote_evictions_total: { type: 'counter', help: 'Layer files evicted from local disk under localLayerBudgetBytes.' },
  strata_remote_download_wait_seconds_total: { type: 'counter', help: 'Time reads and rewrites waited for on-demand downloads, summed over waiters.' },
  strata_remote_stale: { type: 'gauge', help: '1 when the tenant\'s generation here is stale (another node attached it): nothing is uploaded or deleted.' },
  strata_remote_fence_validations_total: { type: 'counter', help: 'Checks of the tenant\'s generation against its attachment object.' },
  strata_remote_stale_refusals_total: { type: 'counter', help: 'Index uploads and deletion batches refused because the generation is stale.' },
  strata_remote_breaker_open: { type: 'gauge', help: 'The remote circuit breaker: 0 closed, 1 open, 2 half-open (probing).' },
  strata_remote_breaker_opens_total: { type: 'counter', help: 'Times the remote circuit breaker opened.' },
} as const satisfies Record<string, { type: MetricType; help: string }>;
export type MetricName = keyof typeof METRIC_DEFS;

const BREAKER_GAUGE: Readonly<Record<BreakerState, number>> = { closed: 0, open: 1, 'half-open': 2 };

export function collectMetrics(implementation: string, cache: PageCacheStats, decoded: DecodedPageCacheStats, timelines: readonly TimelineImpl[]): MetricFamily[] {
  const w = new Collector();
  const impl = { implementation };
  w.metric('strata_page_cache_hits_total', impl, cache.hits);
  w.metric('strata_page_cache_misses_total', impl, cache.misses);
  w.metric('strata_page_cache_evictions_total', impl, cache.evictions);
  w.metric('strata_page_cache_capacity_pages', impl, cache.capacityPages);
  w.metric('strata_page_cache_used_pages', impl, cache.usedPages);
  w.metric('strata_decoded_page_cache_hits_total', impl, decoded.hits);
  w.metric('strata_decoded_page_cache_misses_total', impl, decoded.misses);
  w.metric('strata_decoded_page_cache_evictions_total', impl, decoded.evictions);
  w.metric('strata_decoded_page_cache_invalidations_total', impl, decoded.invalidations);
  w.metric('strata_decoded_page_cache_capacity_pages', impl, decoded.capacityPages);
  w.metric('strata_decoded_page_cache_used_pages', impl, decoded.usedPages);
  for (const t of timelines) {
    const l: MetricLabels = { tenant_id: t.tenantId, timeline_id: t.timelineId };
    const st = t.stats();
    const hist = t.readHistograms();
    w.metric('strata_last_record_lsn', l, st.lastRecordLsn);
    w.metric('strata_disk_consistent_lsn', l, st.diskConsistentLsn);
    w.metric('strata_gc_cutoff_lsn', l, st.gcCutoffLsn);
    w.metric('strata_layers', { ...l, kind: 'delta', level: '0' }, st.l0Count);
    w.metric('strata_layers', { ...l, kind: 'delta', level: '1' }, st.l1Count);
    w.metric('strata_layers', { ...l, kind: 'image', level: '0' }, st.imageLayerCount);
    w.metric('strata_open_layer_bytes', l, st.openLayerBytes);
    w.metric('strata_physical_size_bytes', l, st.physicalSizeBytes);
    w.metric('strata_reads_total', l, st.reads);
    w.histogram('strata_layers_visited_per_read', l, hist.layersVisited, st.layersVisited);
    w.histogram('strata_records_applied_per_read', l, hist.recordsApplied, st.recordsApplied);
    for (const [op, bytes] of [['flush', st.bytesFlushed], ['compaction', st.bytesCompacted], ['image', st.bytesImages]] as const) {
      w.metric('strata_bytes_written_total', { ...l, op }, bytes);
    }
    w.metric('strata_gc_bytes_removed_total', l, st.gcBytesRemoved);
    w.metric('strata_flush_delays_total', l, st.flushDelays);
    w.metric('strata_flush_stalls_total', l, st.flushStalls);
    const r = st.remote;
    if (r !== null) {
      // Neon's names, where it has them (pageserver_remote_*).
      if (r.remoteConsistentLsn !== null) w.metric('strata_remote_consistent_lsn', l, r.remoteConsistentLsn);
      w.metric('strata_remote_upload_queue_objects', l, r.queuedObjects);
      w.metric('strata_remote_upload_queue_bytes', l, r.queuedBytes);
      w.metric('strata_remote_deletion_queue_objects', l, r.deletionsQueued);
      w.metric('strata_remote_uploads_total', l, r.uploads);
      w.metric('strata_remote_uploaded_bytes_total', l, r.uploadedBytes);
      w.metric('strata_remote_deletions_total', l, r.deletions);
      w.metric('strata_remote_failures_total', l, r.failures);
      w.metric('strata_remote_local_layer_bytes', l, r.localLayerBytes);
      w.metric('strata_remote_only_layer_bytes', l, r.remoteOnlyLayerBytes);
      w.metric('strata_remote_ondemand_downloads_total', l, r.onDemandDownloads);
      w.metric('strata_remote_ondemand_downloaded_bytes_total', l, r.onDemandDownloadedBytes);
      w.metric('strata_remote_evictions_total', l, r.evictions);
      w.metric('strata_remote_download_wait_seconds_total', l, r.downloadWaitMs / 1000);
      w.metric('strata_remote_stale', l, r.stale ? 1 : 0);
      w.metric('strata_remote_fence_validations_total', l, r.fenceValidations);
      w.metric('strata_remote_stale_refusals_total', l, r.staleRefusals);
      w.metric('strata_remote_breaker_open', l, BREAKER_GAUGE[r.breakerState]);
      w.metric('strata_remote_breaker_opens_total', l, r.breakerOpens);
    }
  }
  return w.list();
}
