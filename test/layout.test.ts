/**
 * The tree is the architecture (docs/ARCHITECTURE.md, "The tree"): imports flow one way,
 * tools → the network service → public facades → subsystems → engine → object storage → core
 * selection → the two cores → the core contract → the public vocabulary, and no module imports
 * itself through a cycle. This test reads every import in lib/
 * and fails on an import against that direction or on any cycle.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';

const LIB = path.join(__dirname, '..', 'lib');

/** Layers from the bottom up; a module may import its own layer or any layer below it. */
const LAYERS: ReadonlyArray<{ name: string; test: (rel: string) => boolean }> = [
  { name: 'vocabulary', test: (r) => /^(errors|lsn|key|record|bytes|fs_util|json_object|fault_injection)\.ts$/.test(r) },
  { name: 'core contract', test: (r) => /^core\/(core|format|read_plan|compress|compress_worker|worker_thread|entry_batch|delta_arena|pg_wal_format)\.ts$/.test(r) },
  { name: 'cores', test: (r) => r.startsWith('core/ts/') || r === 'core/native.ts' },
  { name: 'core selection', test: (r) => r === 'core/select.ts' || r === 'core/pg_decoder.ts' },
  { name: 'object storage', test: (r) => r.startsWith('remote/') },
  { name: 'engine', test: (r) => r.startsWith('engine/') },
  { name: 'subsystems', test: (r) => /^pg\//.test(r) },
  { name: 'public facades', test: (r) => /^(repository|timeline)\.ts$/.test(r) },
  { name: 'service', test: (r) => r.startsWith('service/') },
  { name: 'tools', test: (r) => r.startsWith('cli/') },
  { name: 'entry', test: (r) => r === 'index.ts' },
];

/**
 * Edges where the engine may reach past the contract into the TS twin. None: compaction's merge
 * moved behind Core.compactDeltas (issue 11 step 4).
 */
const ALLOWED_SKIPS: ReadonlySet<string> = new Set<string>([]);

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listTs(p));
    else if (e.name.endsWith('.ts')) out.push(path.relative(LIB, p));
  }
  return out.sort();
}

/** Relative imports of a module, resolved to lib-relative file names. */
function importsOf(rel: string): string[] {
  const src = fs.readFileSync(path.join(LIB, rel), 'utf8');
  const specs = [...src.matchAll(/(?:from\s+|import\s+|import\(\s*|require\(\s*)'(\.{1,2}\/[^']*)'/g)].map((m) => m[1]);
  return specs.map((s) => {
    const base = path.normalize(path.join(path.dirname(rel), s));
    if (fs.existsSync(path.join(LIB, `${base}.ts`))) return `${base}.ts`;
    if (fs.existsSync(path.join(LIB, base, 'index.ts'))) return path.join(base, 'index.ts');
    throw new Error(`${rel}: cannot resolve import '${s}'`);
  });
}

function layerOf(rel: string): number {
  const i = LAYERS.findIndex((l) => l.test(rel));
  if (i < 0) throw new Error(`lib/${rel} belongs to no layer: add its folder to docs/ARCHITECTURE.md and this test`);
  return i;
}

describe('source layout', () => {
  const modules = listTs(LIB);
  const graph = new Map(modules.map((m) => [m, importsOf(m)]));

  test('every module belongs to a layer', () => {
    for (const m of modules) expect(layerOf(m)).toBeGreaterThanOrEqual(0);
  });

  test('imports only go down the layers (tools → engine → core → vocabulary)', () => {
    const wrong: string[] = [];
    for (const [from, tos] of graph) {
      for (const to of tos) {
        const edge = `${from} -> ${to}`;
        const up = layerOf(to) > layerOf(from);
        const above = LAYERS[layerOf(from)].name;
        const skipsContract = (above === 'engine' || above === 'subsystems') && to.startsWith('core/ts/') && !ALLOWED_SKIPS.has(edge);
        if (up || skipsContract) wrong.push(`${edge} (${LAYERS[layerOf(from)].name} → ${LAYERS[layerOf(to)].name})`);
      }
    }
    expect(wrong).toEqual([]);
  });

  test('object storage (lib/remote/) stands on the vocabulary alone: no engine, no core', () => {
    // The engine's upload queue and on-demand downloads (issue 15) will use it, so it must not use them.
    const wrong: string[] = [];
    for (const [from, tos] of graph) {
      if (!from.startsWith('remote/')) continue;
      for (const to of tos) if (!to.startsWith('remote/') && LAYERS[layerOf(to)].name !== 'vocabulary') wrong.push(`${from} -> ${to}`);
    }
    expect(wrong).toEqual([]);
  });

  test('no import cycles', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const stack: string[] = [];
    const visit = (m: string): void => {
      state.set(m, 'visiting');
      stack.push(m);
      for (const to of graph.get(m) ?? []) {
        if (state.get(to) === 'visiting') cycles.push([...stack.slice(stack.indexOf(to)), to].join(' → '));
        else if (!state.has(to)) visit(to);
      }
      stack.pop();
      state.set(m, 'done');
    };
    for (const m of modules) if (!state.has(m)) visit(m);
    expect(cycles).toEqual([]);
  });

  test('the TS twin mirrors native/ file names, folder by folder', () => {
    // The N-API boundary (addon.cc, pg/pg_addon.cc) has no twin; crc32.cc's is zlib's CRC-32 in block_io.ts;
    // fault_injection.cc's is lib/fault_injection.ts (test-only failpoints, shared by the engine and the TS core);
    // background_thread.cc's (a libuv thread's nice-10 companion) is the TS workers' nice, in lib/core/worker_thread.ts.
    const boundary = new Set(['addon', 'pg_addon', 'crc32', 'fault_injection', 'background_thread']);
    // compaction_worker.ts and read_worker.ts are the TS core's threads for its merge and its
    // background reads; the native core's are the libuv AsyncWorkers in addon.cc, part of the
    // boundary above.
    const twinsOfBoundary = new Set(['compaction_worker', 'read_worker']);
    const problems: string[] = [];
    for (const sub of ['', 'pg']) {
      const nativeDir = path.join(LIB, '..', 'native', sub);
      const twinDir = path.join(LIB, 'core', 'ts', sub);
      if (!fs.existsSync(nativeDir)) continue;
      const files = fs.readdirSync(nativeDir);
      const sources = files.filter((f) => f.endsWith('.cc')).map((f) => f.slice(0, -3));
      const names = new Set([...sources, ...files.filter((f) => f.endsWith('.h')).map((f) => f.slice(0, -2))]);
      const twins = fs.existsSync(twinDir) ? fs.readdirSync(twinDir).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3)) : [];
      for (const n of sources) if (!twins.includes(n) && !boundary.has(n)) problems.push(`native/${sub ? `${sub}/` : ''}${n}.cc has no lib/core/ts twin`);
      for (const t of twins) if (!names.has(t) && !twinsOfBoundary.has(t)) problems.push(`lib/core/ts/${sub ? `${sub}/` : ''}${t}.ts has no native file of its name`);
    }
    expect(problems).toEqual([]);
  });
});
