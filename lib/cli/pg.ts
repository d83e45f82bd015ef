/**
 * The `strata` commands for PostgreSQL (docs/POSTGRES.md, "CLI"): import a data directory, ingest
 * WAL, export a data directory at an LSN, follow a running primary, relation sizes and lists, the LSN as of a time. Each opens the repository like the library does (import-pg and
 * ingest-wal for writing, the others read-only), reports progress on stderr and the result on
 * stdout (`--json` for scripts).
 */
import { formatLsn, type Lsn } from '../lsn';
import { Repository } from '../repository';
import type { ImportReport, Timeline } from '../timeline';
import { StrataError } from '../errors';
import { checkRelTag } from '../pg/keyspace';
import type { FollowStatus } from '../pg/walreceiver';
import { type ImplementationChoice } from '../core/select';
import { requireRepository } from './repo';
import { parseLsnArg, parseTimeArg } from './util';

export interface PgCliOpts {
  json: boolean;
  impl: ImplementationChoice | undefined;
  waitMs: number;
  progress: boolean;
  startLsn: Lsn | undefined;
  endLsn: Lsn | undefined;
  dbOid: number | undefined;
  connection: string | undefined;
  slot: string | undefined;
  createSlot: boolean;
  flushIntervalMs: number | undefined;
  /** follow: status lines this often (ms). */
  intervalMs: number;
  /** export-pg: the LSN to export at. */
  lsn: Lsn | undefined;
  /** export-pg: the time to export as of (resolved with lsnForTimestamp). */
  at: Date | undefined;
}

type Out = (text: string) => number;
type OutJson = (v: unknown) => number;

const REL_ARG = /^(\d+)\/(\d+)\/(\d+)\.(\d)$/;

/** `spc/db/rel.fork`, e.g. 1663/5/16384.0. */
export function parseRelArg(text: string): { spcOid: number; dbOid: number; relNumber: number; forkNum: number } {
  const m = REL_ARG.exec(text);
  if (m === null) throw new StrataError('BAD_ARGUMENT', `not a relation fork: ${JSON.stringify(text)} (use spc/db/rel.fork, e.g. 1663/5/16384.0)`);
  const rel = { spcOid: Number(m[1]), dbOid: Number(m[2]), relNumber: Number(m[3]), forkNum: Number(m[4]) };
  try {
    checkRelTag(rel);
  } catch (e) {
    // Refused here, before the repository is opened, naming the argument (fork 7, an OID above 2^32).
    throw new StrataError('BAD_ARGUMENT', `not a relation fork: ${JSON.stringify(text)}: ${(e as StrataError).message.replace(/^BAD_ARGUMENT: /, '')}`);
  }
  return rel;
}

function note(o: PgCliOpts, text: string): void {
  if (o.progress || !o.json) process.stderr.write(`${text}\n`);
}

/** import-pg <dir> <tenant> <timeline> <datadir>: a new timeline holding the cluster at its checkpoint. */
export async function runImportPg([dir, tenantId, timelineId, dataDir]: string[], o: PgCliOpts, print: Out, printJson: OutJson): Promise<number> {
  const repo = await Repository.open(dir, { implementation: o.impl });
  try {
    const tl = await repo.createTimeline({ tenantId, timelineId });
    note(o, `importing ${dataDir} into ${tenantId}/${timelineId} (${repo.implementation} core)…`);
    const started = Date.now();
    let r: ImportReport;
    try {
      r = await tl.importPgDatadir(dataDir);
    } catch (e) {
      // The timeline was made for this import: a failed import leaves none behind (not an empty one
      // that a second `import-pg` would refuse as existing).
      await repo.deleteTimeline(tenantId, timelineId).catch(() => undefined);
      throw e;
    }
    const seconds = (Date.now() - started) / 1000;
    if (o.json) return printJson({ tenantId, timelineId, lsn: r.lsn, relations: r.relations, pages: r.pages, seconds });
    return print(`imported ${r.relations} relations, ${r.pages} pages at ${formatLsn(r.lsn)} in ${seconds.toFixed(1)} s\n`);
  } finally {
    await repo.close();
  }
}

/** ingest-wal <dir> <tenant> <timeline> <waldir> [--start LSN] [--end LSN]: store WAL, then flush. */
export async function runIngestWal([dir, tenantId, timelineId, walDir]: string[], o: PgCliOpts, print: Out, printJson: OutJson): Promise<number> {
  // An existing repository: Repository.open would make one in a missing or empty directory, and
  // a command that then fails (no such timeline) would leave it behind.
  requireRepository(dir);
  const repo = await Repository.open(dir, { implementation: o.impl });
  try {
    const tl = repo.getTimeline(tenantId, timelineId);
    note(o, `ingesting ${walDir} into ${tenantId}/${timelineId} from ${formatLsn(o.startLsn ?? tl.lastRecordLsn)}…`);
    const started = Date.now();
    const r = await tl.ingestPgWal(walDir, { startLsn: o.startLsn, endLsn: o.endLsn });
    await tl.flush();
    const seconds = (Date.now() - started) / 1000;
    if (o.json) return printJson({ tenantId, timelineId, ...r, seconds });
    const unsupported = Object.entries(r.unsupported).map(([k, v]) => `${k} ×${v}`).join(', ');
    return print(`ingested ${r.records} records (${r.blocks} block references) up to ${formatLsn(r.endLsn)} in ${seconds.toFixed(1)} s` +
      (unsupported === '' ? '\n' : `; not redoable: ${unsupported}\n`));
  } finally {
    await repo.close();
  }
}

async function withReadOnly<T>(dir: string, o: PgCliOpts, tenantId: string, timelineId: string, job: (tl: Timeline) => Promise<T>): Promise<T> {
  requireRepository(dir);
  const repo = await Repository.open(dir, { implementation: o.impl, readOnly: true });
  try {
    return await job(repo.getTimeline(tenantId, timelineId));
  } finally {
    await repo.close();
  }
}

/** rel-size <dir> <tenant> <timeline> <spc/db/rel.fork> <lsn>: blocks, as smgrnblocks. */
export async function runRelSize([dir, tenantId, timelineId, relText, lsnText]: string[], o: PgCliOpts, print: Out, printJson: OutJson): Promise<number> {
  const rel = parseRelArg(relText);
  const lsn = parseLsnArg(lsnText);
  const n = await withReadOnly(dir, o, tenantId, timelineId, (tl) => tl.getRelSize(rel, lsn, { timeoutMs: o.waitMs }));
  if (o.json) return printJson({ tenantId, timelineId, rel: relText, lsn, nblocks: n });
  return print(`${n}\n`);
}

/** relations <dir> <tenant> <timeline> <lsn> [--db OID]: every relation fork that exists there. */
export async function runRelations([dir, tenantId, timelineId, lsnText]: string[], o: PgCliOpts, print: Out, printJson: OutJson): Promise<number> {
  const lsn = parseLsnArg(lsnText);
  const rels = await withReadOnly(dir, o, tenantId, timelineId, (tl) => tl.listRelations(lsn, { dbOid: o.dbOid }));
  if (o.json) return printJson(rels);
  return print(rels.map((r) => `${r.spcOid}/${r.dbOid}/${r.relNumber}.${r.forkNum}\t${r.nblocks}`).join('\n') + (rels.length > 0 ? '\n' : ''));
}

/**
 * lsn-at <dir> <tenant> <timeline> <time>: the LSN that shows the cluster as of the time
 * (docs/POSTGRES.md, "LSN ↔ time"), as `<kind> <LSN>`; every kind exits 0 (scripts read the kind).
 */
export async function runLsnAt([dir, tenantId, timelineId, timeText]: string[], o: PgCliOpts, print: Out, printJson: OutJson): Promise<number> {
  const at = parseTimeArg(timeText);
  const r = await withReadOnly(dir, o, tenantId, timelineId, (tl) => tl.lsnForTimestamp(at));
  if (o.json) return printJson({ tenantId, timelineId, time: at.toISOString(), kind: r.kind, lsn: r.lsn });
  return print(`${r.kind} ${formatLsn(r.lsn)}\n`);
}

/** export-pg: progress lines at most this often (ms). */
const EXPORT_PROGRESS_INTERVAL_MS = 1_000;

/**
 * The LSN export-pg writes the cluster at: `--lsn`, or `--at <time>` resolved with lsnForTimestamp,
 * which must be 'present' (a time before the first or after the last commit names no state the
 * timeline can show as of that time: BAD_ARGUMENT with the kind, exit 3).
 */
async function exportLsn(o: PgCliOpts, tl: Timeline): Promise<Lsn> {
  if ((o.lsn === undefined) === (o.at === undefined)) {
    throw new StrataError('BAD_ARGUMENT', 'export-pg needs exactly one of --lsn LSN (e.g. --lsn 0/16B3748) or --at TIME (e.g. --at 2026-12-01T14:03:12Z)');
  }
  if (o.at !== undefined) {
    const found = await tl.lsnForTimestamp(o.at);
    if (found.kind !== 'present') {
      throw new StrataError('BAD_ARGUMENT', `${tl.tenantId}/${tl.timelineId}: --at ${o.at.toISOString()} is '${found.kind}' (${formatLsn(found.lsn)}): ` +
        'no commit on the timeline is after it, or none before it; `strata lsn-at` shows the kinds');
    }
    return found.lsn;
  }
  const lsn = o.lsn as Lsn;
  // The repository is opened read-only (an export may run beside a follower or ingest): it holds
  // what was durable at the open, and an LSN past it would never come.
  if (lsn > tl.lastRecordLsn) {
    throw new StrataError('LSN_TIMEOUT', `${tl.tenantId}/${tl.timelineId}: LSN ${formatLsn(lsn)} is past the timeline's newest durable LSN ${formatLsn(tl.lastRecordLsn)}`);
  }
  return lsn;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/**
 * export-pg <dir> <tenant> <timeline> <datadir> --lsn LSN | --at TIME: write a PostgreSQL 15 data
 * directory holding the cluster at the LSN (or as of the time). Progress lines on stderr, the report on stdout.
 */
export async function runExportPg([dir, tenantId, timelineId, dataDir]: string[], o: PgCliOpts, print: Out, printJson: OutJson): Promise<number> {
  return withReadOnly(dir, o, tenantId, timelineId, async (tl) => {
    const lsn = await exportLsn(o, tl);
    note(o, `exporting ${tenantId}/${timelineId} at ${formatLsn(lsn)} into ${dataDir}…`);
    let lastNote = Date.now();
    const r = await tl.exportPgDatadir(dataDir, {
      lsn,
      onProgress: (p) => {
        if (p.phase !== 'relations' || Date.now() - lastNote < EXPORT_PROGRESS_INTERVAL_MS) return;
        lastNote = Date.now();
        note(o, `  ${p.pages}/${p.pagesTotal} pages, ${p.forks}/${p.forksTotal} relation forks, ${mib(p.bytes)} written`);
      },
    });
    const seconds = r.durationMs / 1000;
    if (o.json) return printJson({ tenantId, timelineId, ...r, seconds });
    return print(`exported ${r.relations} relations, ${r.pages} pages (${mib(r.bytes)}) at ${formatLsn(r.lsn)} into ${r.dir} in ${seconds.toFixed(1)} s; ` +
      `checkpoint at ${formatLsn(r.checkpointLsn)} in pg_wal/${r.walSegment}, ${r.preparedTransactions} prepared transactions, ${r.configFiles} configuration files\n`);
  });
}

/** One status as a compact JSON line (LSNs in X/Y form, the error as { code, message }). */
function statusLine(st: FollowStatus, event: string): string {
  return JSON.stringify({
    time: new Date().toISOString(), event, state: st.state,
    receivedLsn: formatLsn(st.receivedLsn), lastRecordLsn: formatLsn(st.lastRecordLsn), diskConsistentLsn: formatLsn(st.diskConsistentLsn),
    serverWalEnd: st.serverWalEnd === null ? null : formatLsn(st.serverWalEnd), lagBytes: st.lagBytes, reconnects: st.reconnects,
    slotName: st.slotName, lastError: st.lastError === null ? null : { code: st.lastError.code, message: st.lastError.message },
  }) + '\n';
}

function statusText(st: FollowStatus): string {
  const lag = st.lagBytes < 1024 * 1024 ? `${st.lagBytes} B` : `${(st.lagBytes / 2 ** 20).toFixed(1)} MiB`;
  return `${st.state}: received ${formatLsn(st.receivedLsn)}, ingested ${formatLsn(st.lastRecordLsn)}, flushed ${formatLsn(st.diskConsistentLsn)}, ` +
    `lag ${lag}, reconnects ${st.reconnects}` + (st.lastError === null ? '' : `; last error ${st.lastError.message}`);
}

/**
 * follow <dir> <tenant> <timeline> --connection CONNINFO [--slot NAME] [--create-slot] [--start LSN]
 * [--flush-interval MS] [--interval MS]: follow until SIGINT/SIGTERM (a graceful stop: the last WAL
 * received is flushed and reported to the slot), or until the follower fails (its error's exit code).
 * The repository runs its background work meanwhile (compaction of the flushed layers, GC).
 */
export async function runFollow([dir, tenantId, timelineId]: string[], o: PgCliOpts): Promise<number> {
  if (o.connection === undefined) throw new StrataError('BAD_ARGUMENT', 'follow needs --connection CONNINFO (e.g. postgresql://user:password@host:5432/postgres)');
  requireRepository(dir);
  const repo = await Repository.open(dir, { implementation: o.impl, background: true });
  try {
    const tl = repo.getTimeline(tenantId, timelineId);
    const f = repo.followPostgres(tl, {
      connectionString: o.connection,
      slotName: o.slot,
      createSlot: o.createSlot,
      startLsn: o.startLsn,
      ...(o.flushIntervalMs !== undefined ? { flushIntervalMs: Math.max(1, o.flushIntervalMs) } : {}),
    });
    const report = (event: string): void => {
      const st = f.status();
      if (o.json) process.stdout.write(statusLine(st, event));
      process.stderr.write(`strata follow ${tenantId}/${timelineId}: ${statusText(st)}\n`);
    };
    process.stderr.write(`strata follow ${tenantId}/${timelineId}: from ${formatLsn(o.startLsn ?? tl.lastRecordLsn)} (${repo.implementation} core)\n`);
    f.on('state', () => report('state'));
    const timer = setInterval(() => report('progress'), Math.max(1, o.intervalMs));
    const onSignal = (): void => {
      void f.stop();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let st: FollowStatus;
    try {
      st = await f.done;
    } finally {
      clearInterval(timer);
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    }
    report('end');
    if (st.state === 'failed' && st.lastError !== null) throw st.lastError;
    return 0;
  } finally {
    await repo.close();
  }
}
