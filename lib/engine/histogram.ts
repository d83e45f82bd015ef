/** An exact histogram of small non-negative integers (layers visited, records applied per read). */
export interface HistogramSummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export class IntHistogram {
  private counts: number[] = [];
  private total = 0;

  record(value: number, times = 1): void {
    const v = Math.max(0, Math.round(value));
    this.counts[v] = (this.counts[v] ?? 0) + times;
    this.total += times;
  }

  reset(): void {
    this.counts = [];
    this.total = 0;
  }

  /** Smallest value v such that at least q of the recorded values are ≤ v. */
  quantile(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.ceil(q * this.total);
    let seen = 0;
    for (let v = 0; v < this.counts.length; v++) {
      seen += this.counts[v] ?? 0;
      if (seen >= rank) return v;
    }
    return this.counts.length - 1;
  }

  summary(): HistogramSummary {
    return { count: this.total, p50: this.quantile(0.5), p99: this.quantile(0.99), max: this.total === 0 ? 0 : this.counts.length - 1 };
  }

  /** Cumulative counts at each bucket bound, for Prometheus-style export. */
  cumulative(bounds: readonly number[]): number[] {
    return bounds.map((b) => {
      let n = 0;
      for (let v = 0; v <= Math.min(b, this.counts.length - 1); v++) n += this.counts[v] ?? 0;
      return n;
    });
  }

  get count(): number {
    return this.total;
  }
}
