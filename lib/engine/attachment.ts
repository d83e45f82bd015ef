/**
 * Fencing through remote storage itself (docs/REMOTE.md, "Fencing"): each tenant has one attachment
 * object, `tenants/<id>/attachment`, naming the generation currently allowed to change the tenant's
 * objects. It is only ever written by conditional puts — create-only for the first attachment,
 * compare-and-swap on the ETag afterwards — so among nodes racing for it exactly one wins each
 * write, without any consensus of our own; and it only ever moves to a higher generation.
 *
 * - `acquireGeneration` (attachTenant): a generation above every one the tenant has seen (the
 *   attachment object's and every generation in a key), or the caller's, which must be above them
 *   (STALE_GENERATION otherwise), recorded by compare-and-swap.
 * - `TenantFence.validate` (the upload queues, before each index upload and each batch of
 *   deletions): the object still names this attachment; otherwise the tenant here is stale, and
 *   the fence says so for good (STALE_GENERATION).
 *
 * The ETag of a whole-object put is the MD5 of its bytes on both backends (remote_storage.ts), so
 * the compare-and-swap compares content; every record carries a random attachment id and a time,
 * so a record never repeats an earlier one.
 */
import * as crypto from 'node:crypto';
import * as os from 'node:os';
import { isStrataError, StrataError } from '../errors';
import { parseJsonObject } from '../json_object';
import { RemoteStorageError, type RemoteStorage } from '../remote/remote_storage';
import { checkGeneration, splitGeneration, tenantPrefix } from './remote_layout';

export const ATTACHMENT_FORMAT = 1;
/**
 * The generation a tenant created on a node takes without asking storage (createTimeline works
 * while storage is down; the fence claims the object at the first validation). Compare-and-swap
 * attaches therefore start above it, so they never hand out a number a creating node may hold.
 */
export const IMPLICIT_GENERATION = 1;
/** Rounds of read → conditional put before a contended or unanswered write is reported. */
const CAS_ROUNDS = 8;
/** Up to this long between rounds after a transient failure of a conditional put. */
const CAS_RETRY_JITTER_MS = 50;

/** What the attachment object holds. */
export interface AttachmentRecord {
  format: number;
  tenantId: string;
  generation: number;
  /** Random per attachment: tells two attachments given the same generation apart. */
  attachmentId: string;
  /** Who attached (for people: host, process, repository directory). */
  node: string;
  /** When, ISO-8601. */
  time: string;
}

/** What this node holds of an attachment (recorded locally in the tenant's remote.json). */
export interface LocalAttachment {
  generation: number;
  attachmentId: string;
}

export function attachmentKey(tenantId: string): string {
  return `tenants/${tenantId}/attachment`;
}

export function newAttachmentId(): string {
  return crypto.randomBytes(8).toString('hex');
}

/** A default node name: host, process and repository directory. */
export function defaultNodeName(repoDir: string): string {
  return `${os.hostname()}:${process.pid}:${repoDir}`;
}

/** The attachment object and its ETag (the MD5 of its bytes), or null when the tenant has none. */
export async function readAttachment(storage: RemoteStorage, tenantId: string): Promise<{ record: AttachmentRecord; etag: string } | null> {
  const key = attachmentKey(tenantId);
  let bytes: Buffer;
  try {
    bytes = await storage.get(key);
  } catch (e) {
    if (isStrataError(e, 'REMOTE_NOT_FOUND')) return null;
    throw e;
  }
  return { record: decodeAttachment(key, bytes), etag: crypto.createHash('md5').update(bytes).digest('hex') };
}

export function decodeAttachment(key: string, bytes: Buffer): AttachmentRecord {
  let j: AttachmentRecord;
  try {
    j = parseJsonObject(bytes.toString('utf8')) as unknown as AttachmentRecord;
  } catch (e) {
    throw new StrataError('CORRUPT_MANIFEST', `attachment object ${key}: bad JSON: ${(e as Error).message}`);
  }
  if (j === null || typeof j !== 'object' || j.format !== ATTACHMENT_FORMAT || typeof j.attachmentId !== 'string' || typeof j.node !== 'string') {
    throw new StrataError('CORRUPT_MANIFEST', `attachment object ${key}: not an attachment record of format ${ATTACHMENT_FORMAT}`);
  }
  try {
    checkGeneration(j.generation, 'generation');
  } catch {
    throw new StrataError('CORRUPT_MANIFEST', `attachment object ${key}: bad generation ${JSON.stringify(j.generation)}`);
  }
  return j;
}

function encodeAttachment(r: AttachmentRecord): Buffer {
  return Buffer.from(JSON.stringify(r) + '\n');
}

/**
 * Write `record` over what `current` says the object holds: create-only when absent,
 * compare-and-swap on its ETag otherwise. Returns whether this write is now in place — a lost
 * condition is false; an answer that never came is settled by reading the object back.
 */
async function conditionalWrite(storage: RemoteStorage, record: AttachmentRecord, current: { etag: string } | null): Promise<boolean> {
  const key = attachmentKey(record.tenantId);
  try {
    await storage.put(key, encodeAttachment(record), current === null ? { ifNoneMatch: '*' } : { ifMatch: current.etag });
    return true;
  } catch (e) {
    if (isStrataError(e, 'REMOTE_PRECONDITION_FAILED')) return false;
    // The put may have happened with its answer lost: only a read tells.
    const now = await readAttachment(storage, record.tenantId);
    if (now !== null && now.record.attachmentId === record.attachmentId && now.record.generation === record.generation) return true;
    // radosgw answers some concurrent conditional puts of one key with HTTP 500 instead of 412:
    // a transient failure that did not write is a lost round, decided again after a fresh read.
    if (e instanceof RemoteStorageError && e.transient) {
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * CAS_RETRY_JITTER_MS)));
      return false;
    }
    throw e;
  }
}

/** The newest generation any key of the tenant carries (0 when none). */
export async function newestKeyGeneration(storage: RemoteStorage, tenantId: string): Promise<number> {
  const prefix = tenantPrefix(tenantId);
  let newest = 0;
  for (const obj of await storage.list(prefix)) {
    newest = Math.max(newest, splitGeneration(obj.key.slice(obj.key.lastIndexOf('/') + 1))?.generation ?? 0);
  }
  return newest;
}

/**
 * A new attachment of the tenant: the generation given (control-plane mode; STALE_GENERATION when
 * it is not above the attachment object's and every key's generation) or one above them (CAS
 * mode), recorded in the attachment object by a conditional put. A lost race is retried in CAS
 * mode (read again, take the next number) and is STALE_GENERATION in control-plane mode when the
 * winner took a generation at or above the given one.
 */
export async function acquireGeneration(storage: RemoteStorage, tenantId: string, node: string, given?: number): Promise<LocalAttachment> {
  const fromKeys = await newestKeyGeneration(storage, tenantId);
  for (let round = 0; round < CAS_ROUNDS; round++) {
    const current = await readAttachment(storage, tenantId);
    const newest = Math.max(fromKeys, current?.record.generation ?? 0);
    const generation = given ?? Math.max(newest, IMPLICIT_GENERATION) + 1;
    if (generation <= newest) {
      const holder = current !== null && current.record.generation === newest ? ` (attachment object: generation ${newest} on ${current.record.node})` : '';
      throw new StrataError('STALE_GENERATION', `attachTenant ${tenantId}: generation ${generation} is not above generation ${newest}, which remote storage ${storage.description} already has${holder}`);
    }
    checkGeneration(generation, 'generation');
    const record: AttachmentRecord = { format: ATTACHMENT_FORMAT, tenantId, generation, attachmentId: newAttachmentId(), node, time: new Date().toISOString() };
    if (await conditionalWrite(storage, record, current)) return { generation, attachmentId: record.attachmentId };
  }
  throw new StrataError('REMOTE_ERROR', `attachTenant ${tenantId}: the attachment object ${attachmentKey(tenantId)} on ${storage.description} kept changing under ${CAS_ROUNDS} compare-and-swap attempts`);
}

export interface FenceStats {
  /** The attachment object named a newer attachment: this node no longer uploads or deletes. */
  stale: boolean;
  /** Validations against the attachment object, and the uploads / deletion batches refused. */
  validations: number;
  refusals: number;
  /** Why it is stale, when it is. */
  staleReason: string | null;
}

/**
 * One tenant's fence on this node, shared by its timelines' upload queues. `validate()` reads the
 * attachment object (no cache: the read must come after the upload it guards) and resolves while
 * it names this attachment; a tenant whose object does not exist yet, or names an older
 * generation (a tenant created here, or before fencing existed), is claimed by a conditional put.
 * Otherwise it throws STALE_GENERATION, now and on every later call.
 */
export class TenantFence {
  private staleError: StrataError | null = null;
  private validations = 0;
  private refusals = 0;
  /** Validations of one tenant run one at a time (its timelines' queues call concurrently). */
  private serial: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly storage: RemoteStorage,
    readonly tenantId: string,
    readonly attachment: LocalAttachment,
    private readonly node: string,
  ) {}

  get stale(): StrataError | null {
    return this.staleError;
  }

  stats(): FenceStats {
    return { stale: this.staleError !== null, validations: this.validations, refusals: this.refusals, staleReason: this.staleError?.message ?? null };
  }

  /** Count an upload or deletion batch refused because the fence is stale. */
  refused(): void {
    this.refusals++;
  }

  validate(): Promise<void> {
    const run = this.serial.then(() => this.validateNow());
    this.serial = run.catch(() => undefined);
    return run;
  }

  private async validateNow(): Promise<void> {
    if (this.staleError !== null) throw this.staleError;
    this.validations++;
    const { generation, attachmentId } = this.attachment;
    for (let round = 0; round < CAS_ROUNDS; round++) {
      const current = await readAttachment(this.storage, this.tenantId);
      const r = current?.record;
      if (r !== undefined && r.generation === generation && r.attachmentId === attachmentId) return;
      if (r !== undefined && r.generation >= generation) {
        const why = r.generation > generation
          ? `generation ${r.generation} (${r.node}, ${r.time}) attached it`
          : `generation ${generation} was given to another attachment too (${r.node}, ${r.time})`;
        this.staleError = new StrataError('STALE_GENERATION', `tenant ${this.tenantId}: this node's generation ${generation} is stale: ${why}; it no longer uploads or deletes anything`);
        throw this.staleError;
      }
      // Absent, or an older generation: claim it for this one.
      const record: AttachmentRecord = { format: ATTACHMENT_FORMAT, tenantId: this.tenantId, generation, attachmentId, node: this.node, time: new Date().toISOString() };
      if (await conditionalWrite(this.storage, record, current)) return;
    }
    throw new StrataError('REMOTE_ERROR', `tenant ${this.tenantId}: the attachment object ${attachmentKey(this.tenantId)} kept changing under ${CAS_ROUNDS} compare-and-swap attempts`);
  }
}
