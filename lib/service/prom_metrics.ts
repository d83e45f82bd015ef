/**
 * Strata's metrics in a prom-client Registry — the caller's, so a service embedding Strata exports
 * them beside its own. Two kinds:
 *
 * - the repository's (lib/engine/metrics.ts: page cache, per-timeline LSNs, layers, reads,
 *   amplification), registered as one collector per family that reads the repository when the
 *   registry is scraped — nothing is copied or updated between scrapes;
 * - the page service's, per tenant (`PageServiceMetrics`): requests, errors and throttled requests
 *   counted, latency in a histogram, observed as the Server answers (Server.addRequestListener),
 *   and removed for a deleted tenant.
 */
import { Counter, Histogram, type Metric, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';
import { StrataError } from '../errors';
import { METRIC_DEFS, type MetricFamily, type MetricName, type Repository } from '../repository';
import type { RequestOutcome } from './page_server';

/** Request kinds as they appear in the `kind` label. */
const REQUEST_KINDS: readonly RequestOutcome['kind'][] = ['getPage', 'getPages', 'getRelSize', 'exists', 'listRelations'];
/** Latency buckets (s): 50 µs, a cached page on loopback, up to the 10 s a read may wait for WAL. */
const LATENCY_BUCKETS_SECONDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

/**
 * Register the repository's metric families into `registry`; returns the function that removes
 * them again. Each scrape reads the repository once (the families of one scrape come from one
 * reading); a closed repository exports no samples.
 */
export function registerRepositoryMetrics(repo: Repository, registry: Registry): () => void {
  let reading: Map<string, MetricFamily> | null = null;
  const read = (): Map<string, MetricFamily> => {
    if (reading === null) {
      let families: MetricFamily[] = [];
      try {
        families = repo.metricFamilies();
      } catch {
        // A closed repository: its families are empty.
      }
      reading = new Map(families.map((f) => [f.name, f]));
      // Forget it once this scrape (a run of microtasks) is over.
      setImmediate(() => {
        reading = null;
      });
    }
    return reading;
  };
  const names = Object.keys(METRIC_DEFS) as MetricName[];
  for (const name of names) {
    const def = METRIC_DEFS[name];
    // prom-client's registry takes any object with this shape (name, help, type, get); its types
    // name only its own four classes, hence the cast.
    const collector = {
      name,
      help: def.help,
      type: def.type,
      aggregator: 'sum',
      get: (): MetricObjectWithValues<MetricValue<string>> => {
        const f = read().get(name);
        const values = (f?.samples ?? []).map((s) => ({
          value: Number(s.value),
          labels: s.labels,
          ...(s.suffix === '' ? {} : { metricName: `${name}${s.suffix}` }),
        }));
        return { name, help: def.help, type: def.type, aggregator: 'sum', values } as unknown as MetricObjectWithValues<MetricValue<string>>;
      },
      reset: (): void => undefined,
    };
    try {
      registry.registerMetric(collector as unknown as Metric);
    } catch (e) {
      for (const n of names.slice(0, names.indexOf(name))) registry.removeSingleMetric(n);
      throw new StrataError('BAD_ARGUMENT', `registerRepositoryMetrics: the registry already has ${name} (another repository or AdminApi registered there?): ${(e as Error).message}`);
    }
  }
  return () => {
    for (const name of names) registry.removeSingleMetric(name);
  };
}

/** Per-tenant page service metrics; `observe` is a Server request listener. */
export class PageServiceMetrics {
  private readonly requests: Counter<'tenant_id' | 'kind'>;
  private readonly errors: Counter<'tenant_id' | 'kind'>;
  private readonly throttled: Counter<'tenant_id' | 'kind'>;
  private readonly pages: Counter<'tenant_id'>;
  private readonly latency: Histogram<'tenant_id' | 'kind'>;

  constructor(private readonly registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({ name: 'strata_page_service_requests_total', help: 'Page service requests answered, by tenant and kind (throttled ones included).', labelNames: ['tenant_id', 'kind'], registers });
    this.errors = new Counter({ name: 'strata_page_service_errors_total', help: 'Page service requests answered with ERROR.', labelNames: ['tenant_id', 'kind'], registers });
    this.throttled = new Counter({ name: 'strata_page_service_throttled_total', help: 'Page service requests refused with THROTTLED (not run).', labelNames: ['tenant_id', 'kind'], registers });
    this.pages = new Counter({ name: 'strata_page_service_pages_total', help: 'Pages asked for by requests that were run (GetPages counts its keys).', labelNames: ['tenant_id'], registers });
    this.latency = new Histogram({
      name: 'strata_page_service_request_duration_seconds', help: 'From taking a request up to its answer, for requests that were run.',
      labelNames: ['tenant_id', 'kind'], buckets: LATENCY_BUCKETS_SECONDS, registers,
    });
  }

  observe(r: RequestOutcome): void {
    const labels = { tenant_id: r.tenantId, kind: r.kind };
    this.requests.inc(labels);
    if (r.outcome === 'throttled') {
      this.throttled.inc(labels);
      return;
    }
    if (r.outcome === 'error') this.errors.inc(labels);
    this.pages.inc({ tenant_id: r.tenantId }, r.pages);
    this.latency.observe(labels, r.seconds);
  }

  /** Drop a deleted tenant's series (so /metrics stops reporting it). */
  removeTenant(tenantId: string): void {
    for (const kind of REQUEST_KINDS) {
      const labels = { tenant_id: tenantId, kind };
      this.requests.remove(labels);
      this.errors.remove(labels);
      this.throttled.remove(labels);
      this.latency.remove(labels);
    }
    this.pages.remove({ tenant_id: tenantId });
  }

  unregister(): void {
    for (const m of [this.requests, this.errors, this.throttled, this.pages, this.latency]) this.registry.removeSingleMetric((m as unknown as { name: string }).name);
  }
}
