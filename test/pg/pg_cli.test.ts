/**
 * The `strata` commands for PostgreSQL, run as the real binary on the plain oracle fixture:
 * import-pg, ingest-wal (progress on stderr, the report on stdout and as --json), rel-size,
 * relations and get of a relation page, with the exit codes README's CLI table gives.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { formatLsn } from '../../lib';
import { pgAvailability } from '../helpers/pg_cluster';
import { dataDirSizeSource } from '../helpers/pg_compare';
import { getPgFixture } from '../helpers/pg_fixture';

const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'strata.js');
const pg = pgAvailability();
const skipNote = pg.ok ? '' : ` — skipped: ${pg.reason}`;
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

function strata(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('strata CLI for PostgreSQL', () => {
  test.skipIf(!pg.ok)(`import-pg, ingest-wal, rel-size, relations and get work from the command line${skipNote}`, async () => {
    const fx = await getPgFixture('plain');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-pgcli-'));
    dirs.push(dir);
    const imp = strata(['import-pg', dir, 'pg', 'main', fx.baseDir, '--json']);
    expect(imp.status, imp.stderr).toBe(0);
    const imported = JSON.parse(imp.stdout) as { lsn: string; relations: number; pages: number };
    expect(imported.lsn).toBe(formatLsn(fx.base.checkpointEndLsn));
    expect(imported.pages).toBeGreaterThan(100);

    const ing = strata(['ingest-wal', dir, 'pg', 'main', fx.walDir]);
    expect(ing.status, ing.stderr).toBe(0);
    expect(ing.stderr).toContain('ingesting');
    expect(ing.stdout).toMatch(new RegExp(`^ingested \\d+ records \\(\\d+ block references\\) up to ${formatLsn(fx.finalEndLsn)}`));

    // pgbench_accounts: its size at the end as the file in final/ says.
    const accounts = fx.relations.find((r) => r.relname === 'pgbench_accounts');
    expect(accounts).toBeDefined();
    const relText = `${accounts!.spcOid}/${accounts!.dbOid}/${accounts!.relNumber}.0`;
    const end = formatLsn(fx.finalEndLsn);
    const size = strata(['rel-size', dir, 'pg', 'main', relText, end, '--json']);
    expect(size.status, size.stderr).toBe(0);
    const want = await dataDirSizeSource(fx.finalDir)({ spcOid: accounts!.spcOid, dbOid: accounts!.dbOid, relNumber: accounts!.relNumber, forkNum: 0 });
    expect((JSON.parse(size.stdout) as { nblocks: number }).nblocks).toBe(want);

    const rels = strata(['relations', dir, 'pg', 'main', end, '--db', String(accounts!.dbOid)]);
    expect(rels.status, rels.stderr).toBe(0);
    expect(rels.stdout).toContain(`${relText}\t${want}`);

    const get = strata(['get', dir, 'pg', 'main', `${relText.slice(0, -2)}.0#0`, end, '--json']);
    expect(get.status, get.stderr).toBe(0);
    expect((JSON.parse(get.stdout) as { bytes: number }).bytes).toBe(8192);
    // Past the relation's end: PAGE_NOT_FOUND, exit 4.
    expect(strata(['get', dir, 'pg', 'main', `${relText.slice(0, -2)}.0#${want}`, end]).status).toBe(4);
    // A relation that does not exist: REL_NOT_FOUND, exit 4; a malformed relation: exit 3.
    const missing = strata(['rel-size', dir, 'pg', 'main', '1663/1/999999.0', end, '--json']);
    expect(missing.status).toBe(4);
    expect((JSON.parse(missing.stdout) as { error: { code: string } }).error.code).toBe('REL_NOT_FOUND');
    expect(strata(['rel-size', dir, 'pg', 'main', 'nope', end]).status).toBe(3);
    // Importing into a timeline that exists is refused, and the repository is untouched.
    expect(strata(['import-pg', dir, 'pg', 'main', fx.baseDir]).status).not.toBe(0);
    // A directory that is no PostgreSQL cluster: BAD_PG_DATADIR.
    const bad = strata(['import-pg', dir, 'pg', 'other', dir, '--json']);
    expect((JSON.parse(bad.stdout) as { error: { code: string } }).error.code).toBe('BAD_PG_DATADIR');
  });
});
