/**
 * Strata: an embeddable versioned page store. Hand it WAL records; read any 8 KB page at any LSN;
 * branch a timeline at an LSN without copying data.
 */
export { Repository } from './repository';
export {
  DEFAULT_CHECKPOINT_DISTANCE, DEFAULT_PAGE_CACHE_BYTES, DEFAULT_COMPACTION_THRESHOLD, DEFAULT_COMPACTION_UPPER_LIMIT,
  DEFAULT_COMPACTION_TARGET_SIZE, DEFAULT_IMAGE_CREATION_THRESHOLD, DEFAULT_GC_HORIZON, DEFAULT_BACKGROUND,
} from './engine/repository';
export type { RepositoryOptions, RepositoryStats, AttachTenantOptions, AttachTenantReport, DetachTenantReport } from './engine/repository';
export type { RemoteTimelineStats } from './engine/remote_timeline_client';
export type { LocalLayerStats } from './engine/eviction';
export type { RemoteRetryOptions } from './engine/upload_queue';
export type { RemoteConfig, LocalRemoteConfig, S3RemoteConfig, RemoteStorage, RemoteStorageOptions } from './remote/remote_storage';
export type { MetricFamily, MetricName, MetricSample } from './engine/metrics';
export type { CreateTimelineOptions } from './repository';
export { Timeline } from './timeline';
export type { ExportPgDatadirOptions, ExportProgress, ExportReport } from './timeline';
export type { LsnForTimestamp, LsnForTimestampKind } from './timeline';
export type { PgFollower, FollowPostgresOptions, FollowStatus, FollowState, FollowEvents } from './pg/walreceiver';
export { DEFAULT_WAIT_LSN_TIMEOUT_MS } from './engine/timeline';
export type { LayerInfo, GetPageOptions, TimelineStats, TimelineResidencyStats, CompactionReport, CompactOptions, GcReport, GcOptions } from './engine/timeline';
export type { BackgroundOptions, BackgroundStats } from './engine/background';
export type { HistogramSummary } from './engine/histogram';
export { StrataError, isStrataError, ERROR_CODES } from './errors';
export type { StrataErrorCode } from './errors';
export { parseLsn, formatLsn, LSN_MAX } from './lsn';
export type { Lsn } from './lsn';
export { encodeKey, decodeKey, formatKey, KEY_SIZE } from './key';
export type { PageKey } from './key';
export { PAGE_SIZE } from './record';
export type { WalRecord, ImageRecord, ZeroRecord, PatchRecord } from './record';
export type { ImplementationName, PageCachePolicy, PageCacheStats } from './core/core';
export type { DecodedPageCacheStats } from './engine/decoded_page_cache';
export type { CompressionName } from './core/format';
export { nativeInfo, setBackgroundThreads, backgroundLaneStats } from './core/native';
export type { NativeInfo, NativeSource, BackgroundLaneStats } from './core/native';
export { Server } from './service/page_server';
export type { ServerOptions, ServerStats, ServerEvent, RequestOutcome, ServiceLogger } from './service/page_server';
export { StrataClient, ThrottledError } from './service/client';
export { Throttle } from './service/throttle';
export { RetryingClient, fullJitterDelayMs } from './service/retrying_client';
export { ClientPool } from './service/client_pool';
export type { PoolOptions, PoolStats } from './service/client_pool';
export type { RetryingClientOptions, RetryOptions } from './service/retrying_client';
export { CircuitBreaker } from './service/circuit_breaker';
export type { BreakerOptions, BreakerState } from './service/circuit_breaker';
export { AdminApi } from './service/admin_api';
export type { AdminApiOptions, TenantInfo, TenantState, ThrottleInfo } from './service/admin_api';
export { registerRepositoryMetrics, PageServiceMetrics } from './service/prom_metrics';
export type { ThrottleLimit, ThrottleDecision, Clock } from './service/throttle';
export type { ClientOptions, PageReadOptions, RequestOptions } from './service/client';
export type { AuthConfig, TokenScope } from './service/auth';
export type { RelationInfo, RelTag } from './timeline';
