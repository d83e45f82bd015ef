'use strict';
/** Markdown tables for the console (they paste into docs/PERFORMANCE.md and the README as is). */

function fmtRate(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k`;
  return x.toFixed(0);
}

function fmtNum(x, digits = 2) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(digits);
}

function fmtRatio(r) {
  if (!r) return '–';
  if (typeof r === 'number') return fmtNum(r, 3);
  if (r.n === 1 || r.min === r.max) return fmtNum(r.median, 3);
  return `${fmtNum(r.median, 3)} [${fmtNum(r.min, 3)}–${fmtNum(r.max, 3)}]`;
}

function fmtPct(x) {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : `${(x * 100).toFixed(1)} %`;
}

/** `align`: one of 'l' / 'r' per column; default: first column left, the rest right (numbers). */
function table(headers, rows, align = null) {
  const al = (i) => (align ? align[i] : i === 0 ? 'l' : 'r');
  const lines = [`| ${headers.join(' | ')} |`, `|${headers.map((_, i) => (al(i) === 'l' ? '---' : '---:')).join('|')}|`];
  for (const r of rows) lines.push(`| ${r.join(' | ')} |`);
  return lines.join('\n');
}

/** One row per measured task: ops/s (median [min–max] over rounds), MB/s, p50 / p99 µs. */
function taskRow(label, res) {
  if (!res) return [label, '–', '–', '–', '–'];
  const o = res.opsPerSec;
  const spread = o.n > 1 ? ` [${fmtRate(o.min)}–${fmtRate(o.max)}]` : '';
  const lat = res.latencyUs;
  const per = lat && res.opsPerCall > 1 ? ` /${res.opsPerCall}` : '';
  return [
    label,
    `${fmtRate(o.median)}${spread}`,
    res.mbPerSec === null ? '–' : fmtNum(res.mbPerSec, 1),
    lat ? `${fmtNum(lat.p50)}${per}` : '–',
    lat ? `${fmtNum(lat.p99)}${per}` : '–',
  ];
}

const TASK_HEADERS = ['task', 'ops/s (pages/s) median [min–max]', 'MB/s', 'p50 µs', 'p99 µs'];

module.exports = { fmtRate, fmtNum, fmtRatio, fmtPct, table, taskRow, TASK_HEADERS };
