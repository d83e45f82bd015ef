'use strict';
/**
 * Reads a .cpuprofile taken with bench/tools/storm_profile.js (or any script running a function
 * named LOOP_MARKER on a short timer) and reports the gaps between marker runs longer than
 * THRESHOLD_MS: how many, how long, and which functions the samples inside them were in, self and
 * inclusive, as shares of all gap samples.
 *
 *   node bench/tools/loop_gaps.js PROFILE [THRESHOLD_MS=4] [TOP=25]
 */
const fs = require('node:fs');

const MARKER = 'LOOP_MARKER';
const US_PER_MS = 1000;

function frameName(node) {
  const f = node.callFrame;
  return `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber}`;
}

function main() {
  const [file, thresholdArg, topArg] = process.argv.slice(2);
  if (!file) throw new Error('usage: node bench/tools/loop_gaps.js PROFILE [THRESHOLD_MS] [TOP]');
  const thresholdUs = Number(thresholdArg || 4) * US_PER_MS;
  const top = Number(topArg || 25);
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
  const inMarker = (id) => {
    for (let x = id; x !== undefined; x = parent.get(x)) if (byId.get(x).callFrame.functionName === MARKER) return true;
    return false;
  };

  const gaps = [];
  let t = profile.startTime;
  let last = null;
  let inside = [];
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    const id = profile.samples[i];
    if (inMarker(id)) {
      if (last !== null && t - last > thresholdUs) gaps.push({ us: t - last, ids: inside });
      last = t;
      inside = [];
    } else if (last !== null) {
      inside.push(id);
    }
  }

  const self = new Map();
  const inclusive = new Map();
  let samples = 0;
  for (const g of gaps) {
    for (const id of g.ids) {
      samples++;
      const s = frameName(byId.get(id));
      self.set(s, (self.get(s) || 0) + 1);
      const seen = new Set();
      for (let x = id; x !== undefined; x = parent.get(x)) {
        const n = frameName(byId.get(x));
        if (seen.has(n)) continue;
        seen.add(n);
        inclusive.set(n, (inclusive.get(n) || 0) + 1);
      }
    }
  }
  const ms = gaps.map((g) => g.us / US_PER_MS).sort((a, b) => a - b);
  const total = ms.reduce((a, b) => a + b, 0);
  console.log(`${gaps.length} gaps > ${thresholdUs / US_PER_MS} ms, ${total.toFixed(0)} ms in all; median ${(ms[ms.length >> 1] || 0).toFixed(1)} ms, longest ${(ms[ms.length - 1] || 0).toFixed(1)} ms`);
  const show = (title, m) => {
    console.log(`--- ${title} (% of the ${samples} samples inside gaps)`);
    for (const [name, n] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((100 * n) / samples).toFixed(1).padStart(6)}  ${name}`);
  };
  show('self', self);
  show('inclusive', inclusive);
}

main();
