'use strict';
/**
 * Side-by-side measurement. Every comparison group runs in rounds; each round runs every task of
 * the group once (tinybench: warm-up, then a fixed time budget), in alternating order so that slow
 * drift of the shared machine hits all tasks alike. A ratio between two tasks is computed per
 * round and summarized as median [min–max] over rounds: both sides of every ratio were measured
 * within seconds of each other.
 *
 * Two kinds of task:
 *   { name, fn, opsPerCall = 1, bytesPerOp, inner = 1 }  a JS call timed by tinybench; `inner`
 *       repeats fn inside one sample for sub-microsecond calls, where one performance.now() pair
 *       would otherwise be a visible share of the sample (latency is then sample / inner);
 *   { name, loop: (n) => ns, opsPerCall = 1, bytesPerOp }  a C++ loop that times itself
 *       (floors); run with a calibrated n so it takes about the same time budget.
 */
const { Bench } = require('tinybench');

function median(xs) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

function summary(xs) {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

class Harness {
  /** @param {{ time: number, warmupTime: number, rounds: number, log?: (s: string) => void }} opts */
  constructor(opts) {
    this.time = opts.time;
    this.warmupTime = opts.warmupTime;
    this.rounds = opts.rounds;
    this.log = opts.log ?? (() => {});
  }

  /**
   * Run `tasks` side by side for `rounds` rounds. Returns { [name]: result } with per-round
   * throughput (`perRound`, ops/s) kept for ratios.
   */
  async group(label, tasks, opts = {}) {
    const rounds = opts.rounds ?? this.rounds;
    const time = opts.time ?? this.time;
    const state = new Map(tasks.map((t) => [t.name, { perRound: [], samples: [], calls: 0, task: t }]));
    const loopIters = new Map();
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? tasks : [...tasks].reverse();
      for (const t of order) {
        const st = state.get(t.name);
        const ops = t.opsPerCall ?? 1;
        if (t.loop) {
          // Calibrate once (also the warm-up): aim each run at `time` ms.
          if (!loopIters.has(t.name)) {
            let n = 64;
            for (;;) {
              const ns = t.loop(n);
              if (ns > 20e6 || n > 1e9) {
                loopIters.set(t.name, Math.max(1, Math.round((n * time * 1e6) / ns)));
                break;
              }
              n *= 4;
            }
          }
          const n = loopIters.get(t.name);
          const ns = t.loop(n);
          st.perRound.push((n * ops) / (ns / 1e9));
          st.calls += n;
          continue;
        }
        const inner = t.inner ?? 1;
        const fn = inner === 1 ? t.fn : innerLoop(t.fn, inner);
        const bench = new Bench({ time, warmupTime: this.warmupTime, iterations: 5, warmupIterations: 5, throws: true });
        bench.add(t.name, fn);
        await bench.warmup();
        await bench.run();
        const res = bench.tasks[0].result;
        if (!res || res.error) throw res?.error ?? new Error(`task ${t.name} produced no result`);
        // hz is calls of fn per second; each call is inner × opsPerCall operations.
        st.perRound.push(res.hz * inner * ops);
        st.calls += res.samples.length * inner;
        // Per-call latency in µs (a call = one getPage, or one batch of opsPerCall pages).
        for (const ms of res.samples) st.samples.push((ms * 1000) / inner);
      }
      this.log(`  ${label}: round ${r + 1}/${rounds}`);
    }
    const out = {};
    for (const [name, st] of state) {
      const sorted = st.samples.sort((a, b) => a - b);
      const ops = summary(st.perRound);
      const t = st.task;
      out[name] = {
        opsPerSec: ops,
        mbPerSec: t.bytesPerOp ? (ops.median * t.bytesPerOp) / 1e6 : null,
        latencyUs: sorted.length
          ? { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), mean: sorted.reduce((a, b) => a + b, 0) / sorted.length, per: (t.opsPerCall ?? 1) === 1 ? 'op' : `call of ${t.opsPerCall} ops`, averagedOver: t.inner ?? 1 }
          : null,
        opsPerCall: t.opsPerCall ?? 1,
        calls: st.calls,
        perRound: st.perRound,
      };
    }
    return out;
  }
}

function innerLoop(fn, inner) {
  return () => {
    for (let i = 0; i < inner; i++) fn();
  };
}

/** a ÷ b per round (same round, so measured side by side), summarized over rounds. */
function ratio(a, b) {
  if (!a || !b) return null;
  const n = Math.min(a.perRound.length, b.perRound.length);
  const rs = [];
  for (let i = 0; i < n; i++) rs.push(a.perRound[i] / b.perRound[i]);
  return summary(rs);
}

module.exports = { Harness, ratio, median, percentile, summary };
