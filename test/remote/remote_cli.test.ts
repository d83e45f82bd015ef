/**
 * `strata remote status`, `strata attach`, `strata detach`, run as the real binary (node
 * bin/strata.js → dist/cli/cli.js, built by pretest) against repositories written through the
 * library, with a local-directory remote (the S3 flags are checked for parsing only: the S3 path
 * through attach and detach is the library's, tested against radosgw in remote_fencing.test.ts).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type PageKey, Repository } from '../../lib';

const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'strata.js');
const KEY: PageKey = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: 0 };
/** README's exit codes ("CLI"). */
const EXIT = { OK: 0, USAGE: 2, NOT_FOUND: 4, REMOTE: 14 } as const;

interface Run { status: number | null; stdout: string; stderr: string }

function strata(args: string[]): Run {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function json<T>(r: Run, status: number = EXIT.OK): T {
  expect(r.status, `exit status; stderr: ${r.stderr}`).toBe(status);
  return JSON.parse(r.stdout) as T;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-rcli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface StatusRow { tenantId: string; timelineId: string; generation: number | null; stale: boolean; diskConsistentLsn: string; remoteConsistentLsn: string | null; pendingLayers: number; behind: boolean }

describe('strata remote status / attach / detach (local directory remote)', () => {
  it('status shows what is not uploaded; detach hands over; attach elsewhere continues; a stale node shows STALE', async () => {
    const store = path.join(tmp, 'store');
    const dirA = path.join(tmp, 'a');
    const dirB = path.join(tmp, 'b');
    const remote = ['--remote-path', store];
    const repo = await Repository.open(dirA, { remote: { type: 'local', path: store } });
    const tl = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
    tl.ingest([{ lsn: 0x10n, key: KEY, kind: 'image', page: Buffer.alloc(8192, 7) }]);
    await tl.flush();
    await tl.syncRemote();
    tl.ingest([{ lsn: 0x20n, key: KEY, kind: 'patch', offset: 10, data: Buffer.from('x') }]);
    await tl.flush();
    // Closed before the second flush's upload is awaited: status may see it pending or done.
    await repo.close();

    let st = json<{ timelines: StatusRow[] }>(strata(['remote', 'status', dirA, ...remote, '--json']));
    expect(st.timelines).toHaveLength(1);
    expect(st.timelines[0]).toMatchObject({ tenantId: 't1', timelineId: 'main', generation: 1, stale: false, diskConsistentLsn: '0/20' });
    const human = strata(['remote', 'status', dirA, ...remote]);
    expect(human.status).toBe(EXIT.OK);
    expect(human.stdout).toMatch(/t1\s+main\s+1\s+ok\s+0\/20/);
    expect(human.stdout).toMatch(/attachment object generation 1/);

    const detached = json<{ generation: number; timelines: string[]; stale: boolean }>(strata(['detach', dirA, 't1', ...remote, '--json']));
    expect(detached).toEqual({ tenantId: 't1', generation: 1, timelines: ['main'], stale: false });
    expect(json<{ timelines: StatusRow[] }>(strata(['remote', 'status', dirA, ...remote, '--json'])).timelines).toEqual([]);

    const attached = strata(['attach', dirB, 't1', ...remote]);
    expect(attached.status, attached.stderr).toBe(EXIT.OK);
    expect(attached.stdout).toMatch(/attached t1 at generation 2: 1 timeline\(s\) \(main\)/);
    st = json<{ timelines: StatusRow[] }>(strata(['remote', 'status', dirB, ...remote, '--json']));
    expect(st.timelines[0]).toMatchObject({ generation: 2, stale: false, diskConsistentLsn: '0/20', remoteConsistentLsn: '0/20', pendingLayers: 0, behind: false });

    // A third node takes the tenant with a caller-given generation: B is then stale.
    const dirC = path.join(tmp, 'c');
    expect(json<{ generation: number }>(strata(['attach', dirC, 't1', '--generation', '9', ...remote, '--json'])).generation).toBe(9);
    const err = json<{ error: { code: string } }>(strata(['attach', path.join(tmp, 'd'), 't1', '--generation', '9', ...remote, '--json']), EXIT.REMOTE);
    expect(err.error.code).toBe('STALE_GENERATION');
    st = json<{ timelines: StatusRow[] }>(strata(['remote', 'status', dirB, ...remote, '--json']));
    expect(st.timelines[0]).toMatchObject({ generation: 2, stale: true });
    expect(strata(['remote', 'status', dirB, ...remote]).stdout).toMatch(/STALE/);
    expect(json<{ stale: boolean }>(strata(['detach', dirB, 't1', ...remote, '--json'])).stale).toBe(true);

    const c = await Repository.open(dirC, { remote: { type: 'local', path: store } });
    try {
      expect((await c.getTimeline('t1', 'main').getPage(KEY, 0x20n)).subarray(10, 11).toString()).toBe('x');
    } finally {
      await c.close();
    }
  }, 60_000);

  it('remote flags and arguments are checked', () => {
    const dir = path.join(tmp, 'empty');
    expect(strata(['remote', 'status', dir]).status).toBe(EXIT.NOT_FOUND); // not a repository
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'strata.json'), '{"format":1}\n');
    expect(strata(['remote', 'status', dir]).stderr).toMatch(/--remote-path DIR or --s3-bucket/);
    expect(strata(['remote', 'status', dir]).status).toBe(EXIT.USAGE);
    expect(strata(['remote', 'status', dir, '--remote-path', tmp, '--s3-bucket', 'b']).status).toBe(EXIT.USAGE);
    expect(strata(['remote', 'status', dir, '--s3-endpoint', 'http://x']).status).toBe(EXIT.USAGE);
    expect(strata(['remote', 'frobnicate', dir]).status).toBe(EXIT.USAGE);
    expect(strata(['attach', dir, '--remote-path', tmp]).status).toBe(EXIT.USAGE);
    expect(strata(['detach', dir, 'nobody', '--remote-path', path.join(tmp, 'store2')]).status).toBe(EXIT.NOT_FOUND);
  });
});
