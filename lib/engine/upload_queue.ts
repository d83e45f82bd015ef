/**
 * The pieces of a timeline's upload queue that do not talk to storage: retry timing (exponential
 * backoff with full jitter), the queue's settings, and which layers a manifest still needs
 * uploaded. The worker that uses them is remote_timeline_client.ts.
 */
import { StrataError } from '../errors';
import type { LayerDesc } from './manifest';

export interface RemoteRetryOptions {
  /** First retry waits up to this long (full jitter: a uniform draw in [0, cap]). */
  baseMs: number;
  /** The cap never exceeds this: min(maxMs, baseMs × 2^attempt). */
  maxMs: number;
  /**
   * After this many failed attempts at one object (or at once for a failure a retry cannot fix),
   * pending syncRemote() calls reject with the storage's error; the queue itself keeps retrying.
   */
  failSyncAfterAttempts: number;
  /** The remote's circuit breaker opens after this many calls in a row (of all its queues) got no answer. */
  breakerFailures: number;
  /** An open breaker lets no call through for this long, then one probe (circuit_breaker.ts). */
  breakerCooldownMs: number;
}

/**
 * AWS's recommended full-jitter backoff, starting at 100 ms and capped at 30 s (Neon caps at 60 s);
 * the breaker opens after 5 unanswered calls in a row and probes every 5 s while storage is down.
 */
export const DEFAULT_REMOTE_RETRY: Readonly<RemoteRetryOptions> = Object.freeze({
  baseMs: 100, maxMs: 30_000, failSyncAfterAttempts: 6, breakerFailures: 5, breakerCooldownMs: 5_000,
});

export function resolveRetryOptions(o: Partial<RemoteRetryOptions> | undefined): RemoteRetryOptions {
  const r = { ...DEFAULT_REMOTE_RETRY, ...(o ?? {}) };
  for (const [k, v] of Object.entries(r)) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new StrataError('BAD_ARGUMENT', `remoteRetry.${k} must be a positive integer: got ${String(v)}`);
  }
  if (r.maxMs < r.baseMs) throw new StrataError('BAD_ARGUMENT', `remoteRetry.maxMs (${r.maxMs}) is below baseMs (${r.baseMs})`);
  return r;
}

/** Full jitter: uniform in [0, min(maxMs, baseMs × 2^(attempt−1))], attempt counting from 1. */
export function backoffDelayMs(attempt: number, o: RemoteRetryOptions, random: () => number = Math.random): number {
  const cap = Math.min(o.maxMs, o.baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.floor(random() * cap);
}

/** What the remote side holds of one layer: the generation in its key and its size. */
export interface RemoteLayer {
  generation: number;
  sizeBytes: number;
}

/** Layers of `layers` that remote storage does not hold yet (by name and size). */
export function layersToUpload(layers: readonly LayerDesc[], remote: ReadonlyMap<string, RemoteLayer>): LayerDesc[] {
  return layers.filter((l) => remote.get(l.fileName)?.sizeBytes !== l.sizeBytes);
}
