/**
 * A PostgreSQL timeline as an import leaves it, minus the relations: the `pg` extension and the
 * cluster and control state values at the import LSN (what WAL ingest reads when it starts). For
 * tests that feed hand-built WAL (test/pg/wal_builder.ts) without importing a data directory.
 */
import { formatLsn, type Lsn, type Repository, type Timeline } from '../../lib';
import { encodeClusterState } from '../../lib/pg/cluster_state';
import { type ControlState, encodeControlState } from '../../lib/pg/control_state';
import { AUX_CLUSTER_STATE, AUX_CONTROL_STATE, auxChunks } from '../../lib/pg/keyspace';
import { serializeValueRecord } from '../../lib/record';
import { timelineImpl } from '../../lib/timeline';
import { DEFAULT_SYSID } from '../pg/wal_builder';

export async function bareImportedTimeline(repo: Repository, timelineId: string, importLsn: Lsn, control: ControlState): Promise<Timeline> {
  const tl = await repo.createTimeline({ tenantId: 't', timelineId });
  const impl = timelineImpl(tl);
  await impl.setExtension('pg', { systemIdentifier: String(DEFAULT_SYSID), timeline: '1', importLsn: formatLsn(importLsn) });
  const chunks = [
    ...auxChunks(AUX_CLUSTER_STATE, 0, 0, 0, encodeClusterState({ dataChecksums: false, walLogHints: false })),
    ...auxChunks(AUX_CONTROL_STATE, 0, 0, 0, encodeControlState({ ...control })),
  ];
  impl.ingestPrepared({ keys: chunks.map((c) => c.key), lsns: chunks.map(() => importLsn), values: chunks.map((c) => serializeValueRecord(c.payload)) });
  impl.advanceLsn(importLsn);
  return tl;
}
