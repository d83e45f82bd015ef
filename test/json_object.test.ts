/**
 * Every reader of a JSON file or object refuses well-formed JSON that is not an object (null, an
 * array, a number, a string) with CORRUPT_MANIFEST naming the file — found by the remote_index fuzz
 * target (seed 1128234749), where `null` reached a field lookup as a TypeError.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeAttachment } from '../lib/engine/attachment';
import { readRemoteOnly, REMOTE_LAYERS_FILE } from '../lib/engine/layer_residency';
import { decodeManifest } from '../lib/engine/manifest';
import { decodeIndex } from '../lib/engine/remote_layout';
import { parseJsonObject } from '../lib/json_object';
import { isStrataError } from '../lib/errors';

const NOT_OBJECTS = ['null', '[]', '[{"format":1}]', '7', '"format"', 'true'];

function expectCorrupt(f: () => unknown, names: string): void {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(isStrataError(caught), String(caught)).toBe(true);
  expect((caught as Error).message).toMatch(/^CORRUPT_MANIFEST: /);
  expect((caught as Error).message).toContain(names);
}

describe('JSON that must be an object', () => {
  it('parseJsonObject returns objects and throws a SyntaxError for anything else', () => {
    expect(parseJsonObject('{"a":1}')).toEqual({ a: 1 });
    for (const t of NOT_OBJECTS) expect(() => parseJsonObject(t), t).toThrow(SyntaxError);
    expect(() => parseJsonObject('{')).toThrow(SyntaxError);
  });

  it.each(NOT_OBJECTS)('the remote index, attachment record and manifest decoders refuse %s', (text) => {
    expectCorrupt(() => decodeIndex('tenants/t/index', Buffer.from(text)), 'tenants/t/index');
    expectCorrupt(() => decodeAttachment('tenants/t/attachment', Buffer.from(text)), 'tenants/t/attachment');
    // The manifest's body is checksummed, so give it a valid trailer: the JSON itself is what is wrong.
    const trailer = `\ncrc32 ${crc32(text).toString(16).padStart(8, '0')}\n`;
    expectCorrupt(() => decodeManifest('timelines/x/manifest', text + trailer), 'timelines/x/manifest');
  });

  it.each(NOT_OBJECTS)('the remote-only layer list refuses %s', (text) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-json-'));
    try {
      fs.writeFileSync(path.join(dir, REMOTE_LAYERS_FILE), text);
      expectCorrupt(() => readRemoteOnly(dir), path.join(dir, REMOTE_LAYERS_FILE));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
