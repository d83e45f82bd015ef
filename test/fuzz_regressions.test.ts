/**
 * Inputs found by the fuzz targets (scripts/fuzz.js; reproducers in test/fuzz/regressions/), kept
 * as tests through the addon's own entry points so `npm run test:asan` replays them under the
 * sanitizers too. Every reproducer also goes through the TS target of the same name (the TS twins
 * take the native targets' input layouts), which must end in success or a coded StrataError; the
 * libFuzzer binaries replay the native ones in `npm run test:fuzz`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import { readInputs, REGRESSIONS_DIR, runOne } from './fuzz/ts/harness';
import { TS_TARGETS } from './fuzz/ts/targets';
import { decompress } from '../lib/core/ts/codec';
import { CODEC_LZ4 } from '../lib/core/format';
import { loadNativeBinding } from '../lib/core/native';
import { IMPLEMENTATIONS } from './helpers/cores';
import { nativePg } from './helpers/pg_native';
import { redoRecord } from '../lib/core/ts/pg/rmgr';
import { isStrataError } from '../lib/errors';

// layer_blob, lz4-empty-value-null-output.bin: a compressed blob whose record is 0 bytes long. The
// LZ4 decoder copied its empty literal run with memcpy into an output with no storage (a null
// pointer, undefined behaviour UBSan reports even for 0 bytes).
test('lz4: an empty block decodes to an empty value in both cores', () => {
  const stored = Buffer.from([0, 0, 0, 0, 0x00]); // size prefix 0, then one token with no literals
  expect(decompress(CODEC_LZ4, stored, 0).length).toBe(0);
  if (IMPLEMENTATIONS.includes('native')) expect(loadNativeBinding().decompress(CODEC_LZ4, stored, 0).length).toBe(0);
});

describe('every reproducer through its TS target', () => {
  const dirs = fs.readdirSync(REGRESSIONS_DIR).filter((d) => fs.statSync(path.join(REGRESSIONS_DIR, d)).isDirectory());
  test('each regression directory is named for a TS or native target', () => {
    const native = fs.readdirSync(path.join(REGRESSIONS_DIR, '..', 'targets')).filter((f) => f.endsWith('.cc')).map((f) => f.slice(0, -3));
    for (const d of dirs) expect([...native, ...TS_TARGETS.map((t) => t.name)]).toContain(d);
  });
  for (const t of TS_TARGETS) {
    const inputs = readInputs(path.join(REGRESSIONS_DIR, t.name));
    if (inputs.length === 0) continue;
    test(`${t.name}: ${inputs.length} reproducers end in success or a coded StrataError`, async () => {
      for (const i of inputs) await runOne(t, i.bytes);
    });
  }
});

/** [u16 LE length][stored record][base page bytes] (the pg_redo target's layout) → the two cores' outcomes. */
function pgRedoBoth(input: Buffer): Array<{ core: string; outcome: string }> {
  const len = input.readUInt16LE(0);
  const rec = input.subarray(2, 2 + len);
  const base = new Uint8Array(8192);
  base.set(input.subarray(2 + len, 2 + len + 8192));
  const cores: Array<[string, (r: Uint8Array, p: Uint8Array) => void]> = [['ts', (r, p) => redoRecord(r, 0, r.length, p, 0)]];
  const native = nativePg();
  if (native !== null) cores.push(['native', (r, p) => native.pgRedoRecord(r, p)]);
  return cores.map(([core, redo]) => {
    try {
      redo(rec, Uint8Array.from(base));
      return { core, outcome: 'ok' };
    } catch (e) {
      return { core, outcome: isStrataError(e) ? `${e.code}: ${e.message}` : `not coded: ${String(e)}` };
    }
  });
}

// pg_redo, heap-vacuum-pd-lower-past-page.bin: Heap2/VACUUM on a page whose pd_lower (64856) lies
// past the page. PageTruncateLinePointerArray walked line pointers up to pd_lower and read outside
// the 8192 bytes (ASan: SEGV in the native core; the TS core read undefined). A page whose header
// bounds are impossible is now refused before redo touches it, as PostgreSQL's PageIsVerified would.
test('pg redo: a page header with bounds past the page is REDO_FAILED in both cores', () => {
  const input = fs.readFileSync(path.join(REGRESSIONS_DIR, 'pg_redo', 'heap-vacuum-pd-lower-past-page.bin'));
  const out = pgRedoBoth(input);
  for (const o of out) expect(o.outcome, o.core).toMatch(/^REDO_FAILED: .*page header/);
  expect(new Set(out.map((o) => o.outcome)).size).toBe(1);
});
