/**
 * Seeded random frames over real connections: STRATA_SERVICE_WIRE_FRAMES (default 20,000 in npm test;
 * `npm run test:wire` runs 1,000,000) frames
 * in pipelined bursts of 200 per connection. Half the connections send only valid requests and must
 * get exactly one whole answer per request; the other half carry one mutated frame (bit flips, a
 * cut payload, random bytes of a random type, a random length) and may be closed with a
 * PROTOCOL_VIOLATION. Nothing may crash the server, no connection may see half a frame, and a good
 * client reads correct pages afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LSN_MAX, type Repository, StrataClient, type Timeline } from '../../lib';
import { encodeRequest, FRAME_HEADER_BYTES, MAX_FRAME_BYTES, type Request, type ServerFrame } from '../../lib/service/frames';
import type { Server } from '../../lib/service/page_server';
import { IMPLEMENTATIONS } from '../helpers/cores';
import { Rng } from '../helpers/random';
import { KEYS, keyOf, LSN_FLUSHED, LSN_LAST, RawConn, removeDir, repoWithData, startServer, TENANT, TIMELINE } from '../helpers/service';

const TOTAL_FRAMES = Number(process.env.STRATA_SERVICE_WIRE_FRAMES ?? 20_000);
const FRAMES_PER_CONNECTION = 200;
const PARALLEL_CONNECTIONS = 4;

function randomRequest(rng: Rng, id: number): Request {
  const lsn = rng.int(0, 4) === 0 ? LSN_MAX : rng.int(0, 2) === 0 ? LSN_FLUSHED : LSN_LAST;
  const lsns = { requestLsn: lsn, notModifiedSince: lsn === LSN_MAX ? 0n : lsn };
  const rel = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0 };
  switch (rng.int(0, 8)) {
    case 0: return { kind: 'getPages', id, lsns, keys: Array.from({ length: rng.int(1, 9) }, () => KEYS[rng.int(0, KEYS.length)]) };
    case 1: return { kind: 'getRelSize', id, lsns, rel };
    case 2: return { kind: 'exists', id, lsns, rel };
    case 3: return { kind: 'listRelations', id, lsns, dbOid: rng.int(0, 2) === 0 ? null : 5 };
    case 4: return { kind: 'getPage', id, lsns, key: keyOf(rng.int(0, 1000), 777) }; // not found
    default: return { kind: 'getPage', id, lsns, key: KEYS[rng.int(0, KEYS.length)] };
  }
}

function mutate(rng: Rng, frame: Buffer): Buffer {
  let b = Buffer.from(frame);
  switch (rng.int(0, 4)) {
    case 0:
      for (let n = rng.int(1, 4); n > 0; n--) b[rng.int(4, b.length)] ^= 1 << rng.int(0, 8);
      break;
    case 1:
      b = b.subarray(0, rng.int(FRAME_HEADER_BYTES, b.length));
      b.writeUInt32BE(b.length, 0);
      break;
    case 2:
      b = Buffer.alloc(FRAME_HEADER_BYTES + rng.int(0, 48));
      for (let j = 4; j < b.length; j++) b[j] = rng.int(0, 256);
      b.writeUInt32BE(b.length, 0);
      break;
    default:
      b.writeUInt32BE(rng.int(0, 2 * MAX_FRAME_BYTES), 0);
  }
  return b;
}

interface Outcome {
  clean: boolean;
  sent: number;
  answered: number;
  violation: boolean;
}

async function oneConnection(port: number, rng: Rng, clean: boolean): Promise<Outcome> {
  const c = await RawConn.ready(port);
  const bad = clean ? -1 : rng.int(0, FRAMES_PER_CONNECTION);
  const sentIds = new Set<number>();
  const parts: Buffer[] = [];
  for (let i = 0; i < FRAMES_PER_CONNECTION; i++) {
    const id = i + 1;
    const f = encodeRequest(randomRequest(rng, id));
    if (i === bad) parts.push(mutate(rng, f));
    else {
      parts.push(f);
      sentIds.add(id);
    }
  }
  c.socket.end(Buffer.concat(parts)); // FIN after the burst: the server answers everything it read, then closes
  await c.closed;
  expect(c.decodeError).toBeNull();
  expect(c.trailingBytes, 'a half frame').toBe(0);
  const answers = new Map<number, number>();
  let violation = false;
  for (const f of c.frames as ServerFrame[]) {
    if (f.kind === 'helloOk') continue;
    if (f.kind === 'violation') {
      violation = true;
      continue;
    }
    expect(f.kind).not.toBe('refuse');
    if (f.kind === 'relations' && !f.final) continue;
    const id = (f as { id: number }).id;
    answers.set(id, (answers.get(id) ?? 0) + 1);
  }
  if (clean) {
    // (A mutated id may legally repeat one already answered, so this holds for clean connections.)
    for (const n of answers.values()) expect(n, 'one answer per request').toBe(1);
    expect(violation).toBe(false);
    expect([...answers.keys()].sort((a, b) => a - b)).toEqual([...sentIds].sort((a, b) => a - b));
  }
  return { clean, sent: FRAMES_PER_CONNECTION, answered: answers.size, violation };
}

describe('page service: seeded random frames on the wire', () => {
  let dir: string;
  let repo: Repository;
  let tl: Timeline;
  let server: Server;
  let port: number;

  beforeAll(async () => {
    ({ dir, repo, tl } = await repoWithData(IMPLEMENTATIONS[IMPLEMENTATIONS.length - 1], 'wirefuzz'));
    // A flipped bit can make notModifiedSince ask for WAL that never comes: time those reads out fast.
    ({ server, port } = await startServer(repo, { maxInFlight: 8, waitLsnTimeoutMs: 50 }));
  });

  afterAll(async () => {
    await server.close();
    await repo.close();
    removeDir(dir);
  });

  it(`${TOTAL_FRAMES} frames in bursts of ${FRAMES_PER_CONNECTION}: 0 crashes, 0 half frames, clean connections fully answered`, async () => {
    const rng = new Rng(0xf00d);
    const connections = Math.ceil(TOTAL_FRAMES / FRAMES_PER_CONNECTION);
    const outcomes: Outcome[] = [];
    for (let i = 0; i < connections; i += PARALLEL_CONNECTIONS) {
      const n = Math.min(PARALLEL_CONNECTIONS, connections - i);
      outcomes.push(...await Promise.all(Array.from({ length: n }, (_, j) => oneConnection(port, rng, (i + j) % 2 === 0))));
    }
    const sent = outcomes.reduce((s, o) => s + o.sent, 0);
    expect(sent).toBeGreaterThanOrEqual(TOTAL_FRAMES);
    const violations = outcomes.filter((o) => o.violation).length;
    expect(violations).toBeGreaterThan(0);
    expect(violations).toBe(server.stats().violations);
    expect(outcomes.filter((o) => o.clean).every((o) => o.answered === o.sent)).toBe(true);
    // The server is still whole: a good client reads exact pages.
    const c = await StrataClient.connect({ host: '127.0.0.1', port, tenantId: TENANT, timelineId: TIMELINE });
    const got = await c.getPages(KEYS, LSN_LAST);
    const want = await tl.getPages(KEYS, LSN_LAST);
    expect(got.every((p, i) => p.equals(want[i]))).toBe(true);
    await c.close();
  }, 600_000);
});
