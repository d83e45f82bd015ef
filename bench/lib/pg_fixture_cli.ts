/**
 * Prints a PostgreSQL oracle fixture's descriptor as JSON (building and caching it like the tests
 * do, test/helpers/pg_fixture.ts), so the JavaScript bench can use the same real WAL:
 * `vite-node bench/lib/pg_fixture_cli.ts <variant>`. Without PostgreSQL it prints
 * `{ "skipped": "<why>" }`.
 */
import { pgAvailability } from '../../test/helpers/pg_cluster';
import { type FixtureVariant, getPgFixture } from '../../test/helpers/pg_fixture';

async function main(): Promise<void> {
  const variant = (process.argv[2] ?? 'plain') as FixtureVariant;
  const pg = pgAvailability();
  if (!pg.ok) {
    process.stdout.write(JSON.stringify({ skipped: pg.reason }) + '\n');
    return;
  }
  const fx = await getPgFixture(variant);
  const out = {
    variant, baseDir: fx.baseDir, walDir: fx.walDir, walBytes: fx.walBytes,
    importLsn: fx.base.checkpointEndLsn.toString(), finalEndLsn: fx.finalEndLsn.toString(), pgVersion: fx.pgVersion,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
