/**
 * A StrataError kept by a caller must not keep alive what threw it. V8 holds an error's raw stack
 * frames (with every frame's receiver) until `.stack` is first read, so an unread error pinned the
 * timeline, its repository and the core with its page cache: the 1,000-kill crash campaign, whose
 * test framework keeps each `expect(…).rejects` promise until the test ends, ran out of address
 * space after 377 kills (64 MiB of TS page cache per reopen). StrataError formats its stack at once.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect, it } from 'vitest';
import { isStrataError, Repository, StrataError } from '../lib';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Open a repository, keep a PAGE_NOT_FOUND from it (the error and the rejected promise), close it. */
async function openReadAndClose(dir: string, kept: unknown[], refs: Array<WeakRef<object>>): Promise<void> {
  const repo = await Repository.open(dir, { implementation: 'ts' });
  const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
  const key = (blockNum: number): { spcOid: number; dbOid: number; relNumber: number; forkNum: number; blockNum: number } => ({ spcOid: 1663, dbOid: 5, relNumber: 1, forkNum: 0, blockNum });
  tl.ingest([{ lsn: 0x10n, key: key(0), kind: 'image', page: new Uint8Array(8192).fill(3) }]);
  const p = tl.getPage(key(7), 0x10n); // PAGE_NOT_FOUND at once (0x10 is reached)
  await p.catch((e: unknown) => kept.push(e));
  kept.push(p); // the rejected promise too, as a test framework holds it
  refs.push(new WeakRef(repo), new WeakRef(tl));
  await repo.close();
}

it('an error kept after its repository closed does not keep the repository (or its timeline) alive', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-errret-'));
  const kept: unknown[] = [];
  const refs: Array<WeakRef<object>> = [];
  try {
    for (let i = 0; i < 3; i++) await openReadAndClose(path.join(dir, String(i)), kept, refs);
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 0));
      gc();
    }
    expect(kept.filter((e) => isStrataError(e)).length).toBe(3);
    expect(refs.filter((r) => r.deref() !== undefined).length).toBe(0);
    expect(new StrataError('BAD_ARGUMENT', 'x').stack).toMatch(/^StrataError: BAD_ARGUMENT: x/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
