/**
 * Static on-disk B+-tree (docs/FORMAT.md, "B-tree index"): built bottom-up from sorted input, one
 * node per block, leaves contiguous, internal levels after them, root last.
 *
 * Because the builder is deterministic, the shape of the tree follows from the entry count alone
 * (btreeShape). The reader uses that to check every node it loads: its level, its exact entry
 * count and, in internal nodes, that each child pointer names the block the builder would have put
 * there. A corrupt index can therefore not send a lookup to a wrong block.
 */
import { BLOCK_PAYLOAD, BLOCK_SIZE, BTREE_NODE_HEADER, BTREE_VALUE_SIZE, btreeFanout } from '../format';
import type { BlockFile } from './block_io';

const TWO_POW_32 = 0x1_0000_0000;
const LEVEL_OFFSET = 0;
const RESERVED_OFFSET = 1;
const COUNT_OFFSET = 2;

/** Node counts per level, leaves first, as the builder lays them out. */
export interface BtreeShape {
  fanout: number;
  /** nodesPerLevel[0] = leaves; the last level has exactly one node, the root. */
  nodesPerLevel: number[];
  /** Absolute first block of each level. */
  levelStartBlk: number[];
  /** Entries held by each level (level 0: the entry count; level l: nodes of level l-1). */
  entriesPerLevel: number[];
  rootBlk: number;
  blkCount: number;
  height: number;
}

export function btreeShape(entryCount: number, keySize: number, indexStartBlk: number): BtreeShape {
  const fanout = btreeFanout(keySize);
  const nodesPerLevel: number[] = [];
  const entriesPerLevel: number[] = [];
  const levelStartBlk: number[] = [];
  let entries = entryCount;
  let blk = indexStartBlk;
  // An empty layer still has one (empty) leaf as its root.
  for (;;) {
    const nodes = Math.max(1, Math.ceil(entries / fanout));
    entriesPerLevel.push(entries);
    nodesPerLevel.push(nodes);
    levelStartBlk.push(blk);
    blk += nodes;
    if (nodes === 1) break;
    entries = nodes;
  }
  const blkCount = blk - indexStartBlk;
  return { fanout, nodesPerLevel, levelStartBlk, entriesPerLevel, rootBlk: blk - 1, blkCount, height: nodesPerLevel.length };
}

/** Entries the builder puts in node `pos` of a level holding `levelEntries` entries. */
export function nodeEntryCount(levelEntries: number, pos: number, fanout: number): number {
  return Math.max(0, Math.min(fanout, levelEntries - pos * fanout));
}

/** Compare `a[aOff, aOff+len)` with `b[bOff, bOff+len)` bytewise; negative, zero or positive. */
export function compareBytes(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number, len: number): number {
  for (let i = 0; i < len; i++) {
    const d = a[aOff + i] - b[bOff + i];
    if (d !== 0) return d;
  }
  return 0;
}

/** Read a u64 stored big-endian at `off` as a number (callers keep values below 2^53). */
export function readU64(buf: Uint8Array, off: number): number {
  const hi = ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
  const lo = ((buf[off + 4] << 24) | (buf[off + 5] << 16) | (buf[off + 6] << 8) | buf[off + 7]) >>> 0;
  return hi * TWO_POW_32 + lo;
}

function writeU64(buf: Buffer, off: number, v: number): void {
  buf.writeUInt32BE(Math.floor(v / TWO_POW_32), off);
  buf.writeUInt32BE(v % TWO_POW_32, off + 4);
}

// ---------------------------------------------------------------------------------------------
// Builder

/** Receives finished index blocks (payload filled, CRC not yet set) in block order. */
export type BlockSink = (block: Buffer) => void;

/** Index nodes built between two pauses of buildBtreeSteps (16 blocks: a few ms at most). */
export const BTREE_NODES_PER_STEP = 16;

/**
 * Write the index for `count` sorted entries (keys[i*keySize ..], values[i] as u64 numbers) as
 * blocks starting at `indexStartBlk`. Returns the tree's shape (root = last block written).
 * A generator that pauses every BTREE_NODES_PER_STEP nodes, so an async caller can yield to the
 * event loop between steps (a 44,000-entry index takes ≈ 25 ms on a loaded VM); a synchronous
 * caller runs it through. The blocks are the same whatever the caller does between steps.
 */
export function* buildBtreeSteps(
  keys: Buffer, values: Float64Array, count: number, keySize: number, indexStartBlk: number, sink: BlockSink,
): Generator<void, BtreeShape, void> {
  const shape = btreeShape(count, keySize, indexStartBlk);
  const block = Buffer.alloc(BLOCK_SIZE);
  let levelKeys = keys;
  let levelValues = values;
  for (let level = 0; level < shape.height; level++) {
    const entries = shape.entriesPerLevel[level];
    const nodes = shape.nodesPerLevel[level];
    // The next level up holds (first key, block) of every node of this level.
    const upKeys = Buffer.allocUnsafe(nodes * keySize);
    const upValues = new Float64Array(nodes);
    for (let pos = 0; pos < nodes; pos++) {
      const first = pos * shape.fanout;
      const n = nodeEntryCount(entries, pos, shape.fanout);
      encodeNode(block, level, levelKeys, levelValues, first, n, keySize);
      sink(block);
      if (n > 0) levelKeys.copy(upKeys, pos * keySize, first * keySize, (first + 1) * keySize);
      upValues[pos] = shape.levelStartBlk[level] + pos;
      if ((pos + 1) % BTREE_NODES_PER_STEP === 0) yield;
    }
    levelKeys = upKeys;
    levelValues = upValues;
  }
  return shape;
}

function encodeNode(
  block: Buffer, level: number, keys: Buffer, values: Float64Array, first: number, n: number, keySize: number,
): void {
  block.fill(0);
  block[LEVEL_OFFSET] = level;
  block.writeUInt16BE(n, COUNT_OFFSET);
  keys.copy(block, BTREE_NODE_HEADER, first * keySize, (first + n) * keySize);
  const valuesOff = BTREE_NODE_HEADER + n * keySize;
  for (let i = 0; i < n; i++) writeU64(block, valuesOff + i * BTREE_VALUE_SIZE, values[first + i]);
}

// ---------------------------------------------------------------------------------------------
// Reader

/** A position in the tree: the leaf it is on (held in `node`) and the entry index within it. */
export class BtreeCursor {
  readonly node = Buffer.alloc(BLOCK_SIZE);
  blk = -1;
  idx = 0;
  count = 0;
  keySize = 0;

  /** Offset in `node` of the current entry's key. */
  keyOff(): number {
    return BTREE_NODE_HEADER + this.idx * this.keySize;
  }

  /** The current entry's u64 value (as a number). */
  value(): number {
    return readU64(this.node, BTREE_NODE_HEADER + this.count * this.keySize + this.idx * BTREE_VALUE_SIZE);
  }
}

export class BtreeReader {
  readonly shape: BtreeShape;
  private readonly file: BlockFile;
  readonly keySize: number;
  /** Internal nodes are loaded here during a descent; the leaf lands in the cursor's own buffer. */
  private readonly scratch = Buffer.alloc(BLOCK_SIZE);

  constructor(file: BlockFile, keySize: number, shape: BtreeShape) {
    this.file = file;
    this.keySize = keySize;
    this.shape = shape;
  }

  get leafCount(): number {
    return this.shape.nodesPerLevel[0];
  }

  get firstLeafBlk(): number {
    return this.shape.levelStartBlk[0];
  }

  /**
   * Position `cur` at the greatest entry whose key is ≤ `search[searchOff, +keySize)`.
   * Returns false (cursor unusable) when every key is greater or the tree is empty.
   */
  seekLE(search: Uint8Array, searchOff: number, cur: BtreeCursor): boolean {
    const shape = this.shape;
    let level = shape.height - 1;
    let blk = shape.rootBlk;
    while (level > 0) {
      const count = this.loadNode(blk, level, this.scratch);
      const i = this.lastLE(this.scratch, count, search, searchOff);
      if (i < 0) return false;
      const child = readU64(this.scratch, BTREE_NODE_HEADER + count * this.keySize + i * BTREE_VALUE_SIZE);
      // The builder's layout fixes where each child is; anything else is a corrupt index.
      const pos = blk - shape.levelStartBlk[level];
      const expected = shape.levelStartBlk[level - 1] + pos * shape.fanout + i;
      if (child !== expected) throw this.file.corrupt(blk, `index child ${i} points to block ${child}, expected ${expected}`);
      blk = child;
      level--;
    }
    this.loadLeaf(blk, cur);
    const i = this.lastLE(cur.node, cur.count, search, searchOff);
    if (i < 0) return false;
    cur.idx = i;
    return true;
  }

  /** Move to the previous entry, crossing into the previous leaf if needed. */
  prev(cur: BtreeCursor): boolean {
    if (cur.idx > 0) {
      cur.idx--;
      return true;
    }
    if (cur.blk <= this.firstLeafBlk) return false;
    this.loadLeaf(cur.blk - 1, cur);
    cur.idx = cur.count - 1;
    return cur.idx >= 0;
  }

  /** Move to the next entry, crossing into the next leaf if needed. */
  next(cur: BtreeCursor): boolean {
    if (cur.idx + 1 < cur.count) {
      cur.idx++;
      return true;
    }
    if (cur.blk + 1 >= this.firstLeafBlk + this.leafCount) return false;
    this.loadLeaf(cur.blk + 1, cur);
    cur.idx = 0;
    return cur.count > 0;
  }

  /** Position at the first entry of the tree (full iteration); false when empty. */
  first(cur: BtreeCursor): boolean {
    this.loadLeaf(this.firstLeafBlk, cur);
    cur.idx = 0;
    return cur.count > 0;
  }

  private loadLeaf(blk: number, cur: BtreeCursor): void {
    cur.count = this.loadNode(blk, 0, cur.node);
    cur.blk = blk;
    cur.keySize = this.keySize;
  }

  /** Read a node through the cache and check its header against the shape; returns its count. */
  private loadNode(blk: number, level: number, into: Buffer): number {
    this.file.readBlock(blk, into);
    return checkNodeHeader(this.file, this.shape, blk, level, into);
  }

  /** Index of the last key ≤ search in the node, or -1 (binary search). */
  private lastLE(node: Buffer, count: number, search: Uint8Array, searchOff: number): number {
    const k = this.keySize;
    let lo = 0;
    let hi = count; // answer is lo-1 once lo === hi: keys[0..lo) ≤ search < keys[hi..)
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(node, BTREE_NODE_HEADER + mid * k, search, searchOff, k) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }
}

/**
 * Check that block `blk` holds the node the builder wrote there: expected level, reserved byte 0,
 * exact entry count. Returns the count.
 */
export function checkNodeHeader(file: BlockFile, shape: BtreeShape, blk: number, level: number, node: Buffer): number {
  const levelStart = shape.levelStartBlk[level];
  const pos = blk - levelStart;
  if (pos < 0 || pos >= shape.nodesPerLevel[level]) {
    throw file.corrupt(blk, `block is not a level-${level} index node`);
  }
  if (node[LEVEL_OFFSET] !== level) throw file.corrupt(blk, `index node level ${node[LEVEL_OFFSET]}, expected ${level}`);
  if (node[RESERVED_OFFSET] !== 0) throw file.corrupt(blk, 'index node reserved byte is not zero');
  const count = node.readUInt16BE(COUNT_OFFSET);
  const expected = nodeEntryCount(shape.entriesPerLevel[level], pos, shape.fanout);
  if (count !== expected) throw file.corrupt(blk, `index node holds ${count} entries, expected ${expected}`);
  return count;
}

/** Byte offset where a node's zero padding starts (after keys and values). */
export function nodeUsedBytes(count: number, keySize: number): number {
  return BTREE_NODE_HEADER + count * (keySize + BTREE_VALUE_SIZE);
}

/** Whether bytes [from, BLOCK_PAYLOAD) of a block are zero. */
export function zeroTail(block: Uint8Array, from: number): boolean {
  if (from >= BLOCK_PAYLOAD) return true;
  // memcmp against zeros, not a byte loop: every layer open checks its summary block's 8 KB tail.
  return Buffer.compare(block.subarray(from, BLOCK_PAYLOAD), ZERO_PAYLOAD.subarray(from)) === 0;
}

const ZERO_PAYLOAD = new Uint8Array(BLOCK_PAYLOAD);
