/**
 * Shared pieces of the page service tests (test/service/): a repository with data on a plain
 * timeline, a server on a loopback port, and a raw socket that speaks frames by hand (for the
 * malformed-frame and vanishing-client tests, which a well-behaved StrataClient cannot produce).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import type { ImplementationName } from '../../lib/core/core';
import { isStrataError, type PageKey, PAGE_SIZE, Repository, type Timeline, type WalRecord } from '../../lib';
import { decodeServerFrame, encodeHello, FrameReader, PROTOCOL_VERSION, type ServerFrame } from '../../lib/service/frames';
import { Server, type ServerOptions } from '../../lib/service/page_server';
import { tmpDir } from './layers';

export const TENANT = 'tenant_a';
export const TIMELINE = 'main';
export const PAGES = 64;
/** LSNs of the data: images at 0x100, a patch per page at 0x200 (flushed), another at 0x300 (in memory). */
export const LSN_IMAGES = 0x100n;
export const LSN_FLUSHED = 0x200n;
export const LSN_LAST = 0x300n;

export function keyOf(block: number, rel = 16384): PageKey {
  return { spcOid: 1663, dbOid: 5, relNumber: rel, forkNum: 0, blockNum: block };
}

export const KEYS: PageKey[] = Array.from({ length: PAGES }, (_, i) => keyOf(i));

function page(seed: number): Uint8Array {
  const p = new Uint8Array(PAGE_SIZE);
  for (let i = 0; i < PAGE_SIZE; i++) p[i] = (seed * 131 + (i >> 5)) & 0xff;
  return p;
}

/** A repository with one plain timeline: images, a flushed layer of patches and patches in memory. */
export async function repoWithData(impl: ImplementationName, tag: string): Promise<{ dir: string; repo: Repository; tl: Timeline }> {
  const dir = tmpDir(`svc-${tag}-${impl}`);
  const repo = await Repository.open(dir, { implementation: impl });
  const tl = await repo.createTimeline({ tenantId: TENANT, timelineId: TIMELINE });
  tl.ingest(KEYS.map((key, i): WalRecord => ({ lsn: LSN_IMAGES, key, kind: 'image', page: page(i) })));
  tl.ingest(KEYS.map((key, i): WalRecord => ({ lsn: LSN_FLUSHED, key, kind: 'patch', offset: i * 8, data: Uint8Array.of(1, 2, 3, i) })));
  await tl.flush();
  tl.ingest(KEYS.map((key, i): WalRecord => ({ lsn: LSN_LAST, key, kind: 'patch', offset: 100 + i, data: Uint8Array.of(9, i) })));
  return { dir, repo, tl };
}

export async function startServer(repo: Repository, opts: Partial<ServerOptions> = {}): Promise<{ server: Server; port: number }> {
  const server = new Server(repo, { auth: { disabled: true }, ...opts });
  const { port } = await server.listen('127.0.0.1', 0);
  return { server, port };
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** A socket speaking frames by hand: everything the server sends is decoded into `frames`. */
export class RawConn {
  readonly frames: ServerFrame[] = [];
  readonly closed: Promise<void>;
  /** Bytes received that did not form a whole frame when the socket closed (a half frame). */
  trailingBytes = 0;
  decodeError: Error | null = null;
  private readonly reader = new FrameReader();
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk);
      try {
        for (let raw = this.reader.next(); raw !== null; raw = this.reader.next()) this.frames.push(decodeServerFrame(raw));
      } catch (e) {
        this.decodeError = e as Error;
      }
      this.wake();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.trailingBytes = this.reader.pendingBytes;
      this.wake();
      resolve();
    }));
  }

  static connect(port: number): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(new RawConn(s)));
      s.once('error', reject);
    });
  }

  /** Connect and complete the handshake (HELLO_OK expected). */
  static async ready(port: number, token = '', tenantId = TENANT, timelineId = TIMELINE): Promise<RawConn> {
    const c = await RawConn.connect(port);
    c.send(encodeHello({ version: PROTOCOL_VERSION, tenantId, timelineId, token }));
    await c.waitFor((f) => f.kind === 'helloOk');
    return c;
  }

  send(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Resolves with the first frame matching `pred` (already received or still to come); rejects if the socket closes first. */
  async waitFor(pred: (f: ServerFrame) => boolean): Promise<ServerFrame> {
    for (;;) {
      const f = this.frames.find(pred);
      if (f !== undefined) return f;
      if (this.socket.destroyed || this.socket.readableEnded) throw new Error(`closed without the frame; got ${this.frames.map((x) => x.kind).join(', ')}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}

/** The StrataError code a promise rejects with, or 'resolved'; anything else is rethrown. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isStrataError(e)) return e.code;
    throw e;
  }
  return 'resolved';
}
