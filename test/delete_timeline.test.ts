/**
 * Repository.deleteTimeline (the library call under the admin API's DELETE routes), on both cores:
 * refused while branches exist; removes the timeline's files; survives a reopen; the id can be
 * reused; old handles fail with CLOSED; and a delete cut short after its first durable step (the
 * manifest gone, the directory left) is finished by the next open.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { Repository } from '../lib';
import { describeEachCore } from './helpers/cores';
import { KEYS, LSN_FLUSHED, LSN_LAST, removeDir, repoWithData, TENANT, TIMELINE } from './helpers/service';

describeEachCore('Repository.deleteTimeline (%s core)', (impl) => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) removeDir(d);
  });

  it('refuses while branches exist, deletes leaf first, survives reopen, frees the id', async () => {
    const { dir, repo, tl } = await repoWithData(impl, 'delete');
    dirs.push(dir);
    const want = await tl.getPage(KEYS[3], LSN_LAST);
    const branch = await repo.createTimeline({ tenantId: TENANT, timelineId: 'br', ancestorTimelineId: TIMELINE, ancestorLsn: LSN_FLUSHED });
    await expect(repo.deleteTimeline(TENANT, TIMELINE)).rejects.toThrow(/BAD_ARGUMENT.*has branches \(br\)/);
    await expect(repo.deleteTimeline(TENANT, 'nope')).rejects.toThrow(/TIMELINE_NOT_FOUND/);
    await repo.deleteTimeline(TENANT, 'br');
    const timelinesDir = path.join(dir, 'tenants', TENANT, 'timelines');
    expect(fs.readdirSync(timelinesDir)).toEqual([TIMELINE]);
    await expect(branch.getPage(KEYS[0], LSN_FLUSHED)).rejects.toThrow(/CLOSED/);
    expect(repo.listTimelines(TENANT).map((t) => t.timelineId)).toEqual([TIMELINE]);
    await repo.close();

    const again = await Repository.open(dir, { implementation: impl });
    expect(again.listTimelines(TENANT).map((t) => t.timelineId)).toEqual([TIMELINE]);
    expect((await again.getTimeline(TENANT, TIMELINE).getPage(KEYS[3], LSN_LAST)).equals(want)).toBe(true);
    await again.deleteTimeline(TENANT, TIMELINE);
    expect(again.listTenants()).toEqual([]);
    // The id is free again, and the new timeline starts empty.
    const fresh = await again.createTimeline({ tenantId: TENANT, timelineId: TIMELINE });
    expect(fresh.lastRecordLsn).toBe(0n);
    await expect(fresh.getPage(KEYS[3], LSN_LAST, { timeoutMs: 0 })).rejects.toThrow(/PAGE_NOT_FOUND|LSN_TIMEOUT/);
    await again.close();
  });

  it('a delete cut short after the manifest went is finished by the next open', async () => {
    const { dir, repo } = await repoWithData(impl, 'delete-crash');
    dirs.push(dir);
    await repo.createTimeline({ tenantId: TENANT, timelineId: 'other' });
    await repo.close();
    // The state deleteTimeline leaves between its two steps: no manifest, layer files still there.
    const tlDir = path.join(dir, 'tenants', TENANT, 'timelines', TIMELINE);
    fs.rmSync(path.join(tlDir, 'manifest'), { force: true });
    expect(fs.readdirSync(tlDir).length).toBeGreaterThan(0);
    const again = await Repository.open(dir, { implementation: impl });
    expect(again.listTimelines(TENANT).map((t) => t.timelineId)).toEqual(['other']);
    expect(fs.existsSync(tlDir)).toBe(false);
    await again.close();
  });
});
