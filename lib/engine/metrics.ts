/**
 * Prometheus text exposition (format 0.0.4) of repository and per-timeline metrics, labelled by
 * tenant and timeline as Neon's pageserver labels them. Written by hand: the format is a few lines
 * of text and a client library would add a registry Strata does not need.
 */
import type { PageCacheStats } from '../core/core';
import type { IntHistogram } from './histogram';
import type { TimelineImpl } from './timeline';

/** Read-amplification buckets, as Neon's pageserver_layers_per_read (1 … 1024). */
const READ_BUCKETS = [1, 2, 3, 4, 8, 16, 32, 64, 128, 256, 1024];

type Labels = Record<string, string>;

class Writer {
  private readonly lines: string[] = [];
  private readonly declared = new Set<string>();

  metric(name: string, type: 'counter' | 'gauge' | 'histogram', help: string, labels: Labels, value: number | bigint): void {
    this.declare(name, type, help);
    this.lines.push(`${name}${fmtLabels(labels)} ${String(value)}`);
  }

  histogram(name: string, help: string, labels: Labels, h: IntHistogram, sum: number): void {
    this.declare(name, 'histogram', help);
    const cumulative = h.cumulative(READ_BUCKETS);
    READ_BUCKETS.forEach((b, i) => this.lines.push(`${name}_bucket${fmtLabels({ ...labels, le: String(b) })} ${cumulative[i]}`));
    this.lines.push(`${name}_bucket${fmtLabels({ ...labels, le: '+Inf' })} ${h.count}`);
    this.lines.push(`${name}_sum${fmtLabels(labels)} ${sum}`);
    this.lines.push(`${name}_count${fmtLabels(labels)} ${h.count}`);
  }

  text(): string {
    return this.lines.join('\n') + '\n';
  }

  private declare(name: string, type: string, help: string): void {
    if (this.declared.has(name)) return;
    this.declared.add(name);
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  }
}

function fmtLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

export function renderMetrics(implementation: string, cache: PageCacheStats, timelines: readonly TimelineImpl[]): string {
  const w = new Writer();
  const impl = { implementation };
  w.metric('strata_page_cache_hits_total', 'counter', 'Layer-file block reads served from the page cache.', impl, cache.hits);
  w.metric('strata_page_cache_misses_total', 'counter', 'Layer-file block reads that went to disk.', impl, cache.misses);
  w.metric('strata_page_cache_evictions_total', 'counter', 'Blocks evicted by the clock.', impl, cache.evictions);
  w.metric('strata_page_cache_capacity_pages', 'gauge', 'Page cache slots (8 KiB each).', impl, cache.capacityPages);
  w.metric('strata_page_cache_used_pages', 'gauge', 'Page cache slots holding a block.', impl, cache.usedPages);
  for (const t of timelines) {
    const l: Labels = { tenant_id: t.tenantId, timeline_id: t.timelineId };
    const st = t.stats();
    const hist = t.readHistograms();
    w.metric('strata_last_record_lsn', 'gauge', 'Newest ingested LSN.', l, st.lastRecordLsn);
    w.metric('strata_disk_consistent_lsn', 'gauge', 'Newest durable LSN.', l, st.diskConsistentLsn);
    w.metric('strata_gc_cutoff_lsn', 'gauge', 'Reads below this LSN are refused.', l, st.gcCutoffLsn);
    w.metric('strata_layers', 'gauge', 'Layer files by kind and level.', { ...l, kind: 'delta', level: '0' }, st.l0Count);
    w.metric('strata_layers', 'gauge', 'Layer files by kind and level.', { ...l, kind: 'delta', level: '1' }, st.l1Count);
    w.metric('strata_layers', 'gauge', 'Layer files by kind and level.', { ...l, kind: 'image', level: '0' }, st.imageLayerCount);
    w.metric('strata_open_layer_bytes', 'gauge', 'Bytes of records in the open in-memory layer.', l, st.openLayerBytes);
    w.metric('strata_physical_size_bytes', 'gauge', 'Bytes of layer files.', l, st.physicalSizeBytes);
    w.metric('strata_reads_total', 'counter', 'GetPage@LSN requests served.', l, st.reads);
    w.histogram('strata_layers_visited_per_read', 'Layer files visited per GetPage@LSN.', l, hist.layersVisited, st.layersVisited);
    w.histogram('strata_records_applied_per_read', 'WAL records applied per GetPage@LSN.', l, hist.recordsApplied, st.recordsApplied);
    for (const [op, bytes] of [['flush', st.bytesFlushed], ['compaction', st.bytesCompacted], ['image', st.bytesImages]] as const) {
      w.metric('strata_bytes_written_total', 'counter', 'Layer-file bytes written, by operation (write amplification).', { ...l, op }, bytes);
    }
    w.metric('strata_gc_bytes_removed_total', 'counter', 'Layer-file bytes removed by GC.', l, st.gcBytesRemoved);
    w.metric('strata_flush_delays_total', 'counter', 'Flushes slowed by L0 backpressure.', l, st.flushDelays);
    w.metric('strata_flush_stalls_total', 'counter', 'Flushes that compacted first under L0 backpressure.', l, st.flushStalls);
    const r = st.remote;
    if (r !== null) {
      // Neon's names, where it has them (pageserver_remote_*).
      if (r.remoteConsistentLsn !== null) w.metric('strata_remote_consistent_lsn', 'gauge', 'diskConsistentLsn of the newest index in remote storage.', l, r.remoteConsistentLsn);
      w.metric('strata_remote_upload_queue_objects', 'gauge', 'Layers and index waiting to be uploaded.', l, r.queuedObjects);
      w.metric('strata_remote_upload_queue_bytes', 'gauge', 'Layer bytes waiting to be uploaded.', l, r.queuedBytes);
      w.metric('strata_remote_deletion_queue_objects', 'gauge', 'Remote layer objects waiting to be deleted.', l, r.deletionsQueued);
      w.metric('strata_remote_uploads_total', 'counter', 'Objects uploaded (layers and indexes).', l, r.uploads);
      w.metric('strata_remote_uploaded_bytes_total', 'counter', 'Bytes uploaded.', l, r.uploadedBytes);
      w.metric('strata_remote_deletions_total', 'counter', 'Remote layer objects deleted.', l, r.deletions);
      w.metric('strata_remote_failures_total', 'counter', 'Failed remote storage calls (each is retried).', l, r.failures);
    }
  }
  return w.text();
}
