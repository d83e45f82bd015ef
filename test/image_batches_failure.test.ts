/**
 * ImageBatches when a chunk's compression fails while an earlier chunk's append is still in
 * flight (the native core's appendAsync settles later): the failure reaches the caller once, and
 * no promise is left rejected without a handler (Node would end the process on one).
 */
import { afterEach, expect, it, vi } from 'vitest';
import { CODEC_LZ4 } from '../lib/core/format';
import { IMAGE_BATCH_KEYS, ImageBatches } from '../lib/engine/image_batches';
import { KEY_SIZE } from '../lib/key';
import { PAGE_SIZE } from '../lib/record';

const COMPRESS_FAILURE = new Error('compression failed (injected)');
/** The append is slower than the failing compression, so that chunk's rejection waits for a handler. */
const APPEND_DELAY_MS = 30;
const COMPRESS_DELAY_MS = 5;

let compressCalls = 0;
vi.mock('../lib/core/compress_worker', async (importOriginal) => {
  const real = await importOriginal<typeof import('../lib/core/compress_worker')>();
  return {
    ...real,
    // The second chunk's compression fails a little later, the others succeed at once.
    compressOffThread: (...args: Parameters<typeof real.compressOffThread>): Promise<void> => {
      if (++compressCalls === 2) return new Promise((_, reject) => setTimeout(() => reject(COMPRESS_FAILURE), COMPRESS_DELAY_MS));
      return real.compressOffThread(...args);
    },
  };
});

afterEach(() => { compressCalls = 0; });

it('a chunk whose compression fails behind a slow append rejects finish, with no unhandled rejection', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => { unhandled.push(e); };
  process.on('unhandledRejection', onUnhandled);
  try {
    let appended = 0;
    const batches = new ImageBatches(CODEC_LZ4, async () => {
      await new Promise((r) => setTimeout(r, APPEND_DELAY_MS));
      appended++;
    });
    const pages = Buffer.alloc(IMAGE_BATCH_KEYS * PAGE_SIZE, 7);
    const keysOf = (c: number): Buffer[] => Array.from({ length: IMAGE_BATCH_KEYS }, (_, i) => {
      const k = Buffer.alloc(KEY_SIZE);
      k.writeUInt32BE(c * IMAGE_BATCH_KEYS + i, KEY_SIZE - 4);
      return k;
    });
    for (let c = 0; c < 3; c++) await batches.add(keysOf(c), pages, () => true);
    await expect(batches.finish()).rejects.toBe(COMPRESS_FAILURE);
    await batches.idle();
    await new Promise((r) => setTimeout(r, APPEND_DELAY_MS));
    expect(appended).toBe(1); // the first chunk only: nothing is appended behind the failure
    expect(unhandled).toEqual([]);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
