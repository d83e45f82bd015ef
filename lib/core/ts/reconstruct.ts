/**
 * GetPage@LSN for a batch: parse the read plan (docs/FORMAT.md, "Read plan"), walk each request's
 * segments exactly as docs/ARCHITECTURE.md ("GetPage@LSN") says, redo, fill out/status.
 *
 * The plan is checked completely before any page is produced (lengths, map ids, in-memory
 * records), so a malformed plan fails the call without partial output.
 */
import { COUNTS_PER_REQUEST } from '../core';
import { PAGE_STATUS_NOT_FOUND, PAGE_STATUS_OK } from '../core';
import { ReadScratch, collectDeltaChain } from './delta_layer';
import { StrataError, isStrataError } from '../../errors';
import { lookupImage } from './image_layer';
import { KEY_SIZE, formatEncodedKey } from '../../key';
import type { Layer } from './layer_file';
import { type LayerMap, coveringLayers, deltaFloor, pickLayer } from './layer_map';
import { PAGE_SIZE, recordWillInit } from '../../record';
import { RecordChain, validateRecord } from './walredo';

const U32 = 4;
const U64 = 8;
const SEGMENT_HEADER = U32 + U64 + U32;
const MEM_RECORD_HEADER = U64 + U32;

/** What walking one segment's layers ended with. */
const U32_MAX = 0xffff_ffff;
const WALK_CONTINUE = 0;  // no will_init yet: go on to the next segment
const WALK_FOUND = 1;     // a will_init record ended the chain
const WALK_MISSING = 2;   // an image layer covering the key lacks it: the page does not exist

export class Reconstructor {
  private readonly maps: ReadonlyMap<number, LayerMap>;
  private readonly chain = new RecordChain();
  private readonly scratch = new ReadScratch();
  private covering: Layer[] = [];
  private layersVisited = 0;

  constructor(maps: ReadonlyMap<number, LayerMap>) {
    this.maps = maps;
  }

  getPages(planIn: Uint8Array, out: Uint8Array, status: Uint8Array, counts: Uint32Array): void {
    if (!(planIn instanceof Uint8Array) || !(out instanceof Uint8Array) || !(status instanceof Uint8Array) || !(counts instanceof Uint32Array)) {
      throw new StrataError('BAD_ARGUMENT', 'getPages takes (Buffer plan, Uint8Array out, Uint8Array status, Uint32Array counts)');
    }
    const plan = Buffer.isBuffer(planIn) ? planIn : Buffer.from(planIn.buffer, planIn.byteOffset, planIn.length);
    const count = this.validatePlan(plan);
    if (out.length !== count * PAGE_SIZE) {
      throw new StrataError('BAD_ARGUMENT', `read plan has ${count} requests but out holds ${out.length} bytes (expected ${count * PAGE_SIZE})`);
    }
    if (status.length !== count) {
      throw new StrataError('BAD_ARGUMENT', `read plan has ${count} requests but status holds ${status.length} bytes`);
    }
    if (counts.length !== count * COUNTS_PER_REQUEST) {
      throw new StrataError('BAD_ARGUMENT', `read plan has ${count} requests but counts holds ${counts.length} entries (expected ${count * COUNTS_PER_REQUEST})`);
    }
    let off = U32;
    for (let r = 0; r < count; r++) {
      const keyOff = off;
      this.layersVisited = 0;
      let recordsApplied = 0;
      const found = this.collect(plan, keyOff);
      off = this.skipRequest(plan, keyOff);
      const outOff = r * PAGE_SIZE;
      if (found) {
        recordsApplied = this.redo(plan, keyOff, out, outOff);
        status[r] = PAGE_STATUS_OK;
      } else {
        out.fill(0, outOff, outOff + PAGE_SIZE);
        status[r] = PAGE_STATUS_NOT_FOUND;
      }
      // A Uint32Array store wraps; saturate like the C++ core.
      counts[r * COUNTS_PER_REQUEST] = Math.min(this.layersVisited, U32_MAX);
      counts[r * COUNTS_PER_REQUEST + 1] = Math.min(recordsApplied, U32_MAX);
    }
  }

  /**
   * Redo the collected chain into out[outOff]. PostgreSQL redo failures keep their code
   * (WAL_UNSUPPORTED, REDO_FAILED); the message gains the page being read, as in native/reconstruct.cc.
   */
  private redo(plan: Buffer, keyOff: number, out: Uint8Array, outOff: number): number {
    try {
      return this.chain.redoInto(out, outOff);
    } catch (e) {
      if (!isStrataError(e, 'WAL_UNSUPPORTED') && !isStrataError(e, 'REDO_FAILED')) throw e;
      const detail = e.message.slice(e.code.length + 2);
      throw new StrataError(e.code, `page ${formatEncodedKey(plan.subarray(keyOff, keyOff + KEY_SIZE))}: ${detail}`, { cause: e });
    }
  }

  /** Build the chain for the request at `keyOff`; true when it ends at a will_init record. */
  private collect(plan: Buffer, keyOff: number): boolean {
    const chain = this.chain;
    chain.reset();
    let off = keyOff + KEY_SIZE;
    const segments = plan.readUInt32BE(off);
    off += U32;
    for (let s = 0; s < segments; s++) {
      const map = this.maps.get(plan.readUInt32BE(off)) as LayerMap; // checked by validatePlan
      const cap = plan.readBigUInt64BE(off + U32);
      const memCount = plan.readUInt32BE(off + U32 + U64);
      off += SEGMENT_HEADER;
      for (let m = 0; m < memCount; m++) {
        const len = plan.readUInt32BE(off + U64);
        const recOff = off + MEM_RECORD_HEADER;
        chain.push(plan, recOff, len);
        if (recordWillInit(plan, recOff)) return true;
        off = recOff + len;
      }
      const walk = this.walkLayers(map, plan, keyOff, cap + 1n);
      if (walk !== WALK_CONTINUE) return walk === WALK_FOUND;
    }
    return false;
  }

  /** The layer walk of one segment, from `cont` (cap + 1) down. */
  private walkLayers(map: LayerMap, key: Buffer, keyOff: number, cont: bigint): number {
    const covering = this.covering;
    const n = coveringLayers(map, key, keyOff, covering);
    for (;;) {
      const i = pickLayer(covering, n, cont);
      if (i < 0) return WALK_CONTINUE;
      const layer = covering[i];
      this.layersVisited++;
      if (layer.isImage) {
        return lookupImage(layer, key, keyOff, this.chain, this.scratch) ? WALK_FOUND : WALK_MISSING;
      }
      const floor = deltaFloor(covering, n, cont, layer);
      if (collectDeltaChain(layer, key, keyOff, floor, cont, this.chain, this.scratch)) return WALK_FOUND;
      cont = floor;
    }
  }

  /** Offset just past the request starting at `keyOff` (the plan is already validated). */
  private skipRequest(plan: Buffer, keyOff: number): number {
    let off = keyOff + KEY_SIZE;
    const segments = plan.readUInt32BE(off);
    off += U32;
    for (let s = 0; s < segments; s++) {
      const memCount = plan.readUInt32BE(off + U32 + U64);
      off += SEGMENT_HEADER;
      for (let m = 0; m < memCount; m++) off += MEM_RECORD_HEADER + plan.readUInt32BE(off + U64);
    }
    return off;
  }

  /** Check the whole plan's structure; returns the request count. */
  private validatePlan(plan: Buffer): number {
    const bad = (what: string): StrataError => new StrataError('BAD_ARGUMENT', `read plan: ${what}`);
    const need = (off: number, n: number, what: string): void => {
      if (off + n > plan.length) throw bad(`truncated at byte ${off} (${what})`);
    };
    need(0, U32, 'request count');
    const count = plan.readUInt32BE(0);
    let off = U32;
    for (let r = 0; r < count; r++) {
      need(off, KEY_SIZE + U32, `request ${r} header`);
      const segments = plan.readUInt32BE(off + KEY_SIZE);
      off += KEY_SIZE + U32;
      for (let s = 0; s < segments; s++) {
        need(off, SEGMENT_HEADER, `request ${r} segment ${s}`);
        const mapId = plan.readUInt32BE(off);
        if (!this.maps.has(mapId)) throw bad(`request ${r} segment ${s}: unknown layer map id ${mapId}`);
        const memCount = plan.readUInt32BE(off + U32 + U64);
        off += SEGMENT_HEADER;
        for (let m = 0; m < memCount; m++) {
          need(off, MEM_RECORD_HEADER, `request ${r} segment ${s} record ${m}`);
          const len = plan.readUInt32BE(off + U64);
          off += MEM_RECORD_HEADER;
          need(off, len, `request ${r} segment ${s} record ${m} body`);
          const err = validateRecord(plan.subarray(off, off + len));
          if (err !== null) throw bad(`request ${r} segment ${s} record ${m} at LSN ${plan.readBigUInt64BE(off - MEM_RECORD_HEADER)}: ${err}`);
          off += len;
        }
      }
    }
    if (off !== plan.length) throw bad(`${plan.length - off} trailing bytes after ${count} requests`);
    return count;
  }
}
