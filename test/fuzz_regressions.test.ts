/**
 * Inputs found by the fuzz targets (scripts/fuzz.js; reproducers in test/fuzz/regressions/), kept
 * as tests through the addon's own entry points so `npm run test:asan` replays them under the
 * sanitizers too.
 */
import { expect, test } from 'vitest';
import { decompress } from '../lib/core/ts/codec';
import { CODEC_LZ4 } from '../lib/core/format';
import { loadNativeBinding } from '../lib/core/native';
import { IMPLEMENTATIONS } from './helpers/cores';

// layer_blob, lz4-empty-value-null-output.bin: a compressed blob whose record is 0 bytes long. The
// LZ4 decoder copied its empty literal run with memcpy into an output with no storage (a null
// pointer, undefined behaviour UBSan reports even for 0 bytes).
test('lz4: an empty block decodes to an empty value in both cores', () => {
  const stored = Buffer.from([0, 0, 0, 0, 0x00]); // size prefix 0, then one token with no literals
  expect(decompress(CODEC_LZ4, stored, 0).length).toBe(0);
  if (IMPLEMENTATIONS.includes('native')) expect(loadNativeBinding().decompress(CODEC_LZ4, stored, 0).length).toBe(0);
});
