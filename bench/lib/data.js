'use strict';
/**
 * Seeded data generators shared by every workload, so the engine, the baselines and the floors
 * see byte-identical inputs: PostgreSQL-like 8 KB heap pages (reference/machine-limits.md §4,
 * "1c codecs", the "mixed" kind), ≈100-byte tuple-update patches, page keys, Zipf samplers.
 */

const PAGE_SIZE = 8192;

/** mulberry32, as test/helpers/random.ts: small, fast, and good enough for workload generation. */
class Rng {
  constructor(seed) {
    this.s = seed >>> 0;
  }
  next() {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo, hiExclusive) {
    return lo + Math.floor(this.next() * (hiExclusive - lo));
  }
}

// About 100 common English words; text columns draw from them with a skew, which gives pages
// the ~2:1 lz4 ratio the reference measured on its "mixed" heap pages.
const WORDS = (
  'the of and to in is you that it he was for on are as with his they at be this have from or one had by word but ' +
  'not what all were we when your can said there use an each which she do how their if will up other about out many ' +
  'then them these so some her would make like him into time has look two more write go see number no way could ' +
  'people my than first water been call who oil its now find long down day did get come made may part over new sound ' +
  'take only little work know place year live me back give most very after thing our just name good sentence man think'
).split(' ');

const HEADER_SIZE = 24;
const LINE_POINTER_SIZE = 4;
const T_HOFF = 24; // the 23-byte tuple header, MAXALIGNed
const LP_NORMAL = 1;
const MAXALIGN = 8;

function skewedWord(rng) {
  const u = rng.next();
  return WORDS[Math.floor(u * u * u * WORDS.length)];
}

function wordsText(rng, minWords, maxWords) {
  const n = rng.int(minWords, maxWords + 1);
  const parts = [];
  for (let i = 0; i < n; i++) parts.push(skewedWord(rng));
  return Buffer.from(parts.join(' '), 'latin1');
}

/**
 * One heap page of "mixed" rows (int4 id, int8 timestamp, two int2, a text of 3–17 skewed words)
 * with a real page header, line pointers and 23-byte tuple headers, tuples placed MAXALIGNed from
 * the end down to a random fill factor of 70–100 %; the hole between pd_lower and pd_upper is zero.
 */
function heapPage(rng, pageNo) {
  const p = Buffer.alloc(PAGE_SIZE);
  const fill = 0.7 + 0.3 * rng.next();
  let lower = HEADER_SIZE;
  let upper = PAGE_SIZE;
  let nextId = pageNo * 100;
  const t0 = 700_000_000_000_000 + pageNo * 1_000_000;
  // Tuples of one page were mostly inserted by nearby transactions: xmins are close together.
  const xminBase = 1000 + pageNo * 40;
  for (;;) {
    const text = wordsText(rng, 3, 17);
    const dataLen = 4 + 4 /* pad to 8 */ + 8 + 2 + 2 + 4 + text.length;
    const len = T_HOFF + dataLen;
    const start = (upper - len) & ~(MAXALIGN - 1);
    if (start < lower + LINE_POINTER_SIZE || (PAGE_SIZE - start) / PAGE_SIZE > fill) break;
    // tuple header: xmin, xmax (set on 10 %), cid, ctid, infomask2 (5 attributes), infomask, hoff
    p.writeUInt32LE(xminBase + rng.int(0, 64), start);
    p.writeUInt32LE(rng.next() < 0.1 ? xminBase + 5000 + rng.int(0, 5000) : 0, start + 4);
    p.writeUInt32LE(0, start + 8);
    p.writeUInt16LE(0, start + 12);
    p.writeUInt16LE(pageNo & 0xffff, start + 14);
    p.writeUInt16LE((lower - HEADER_SIZE) / LINE_POINTER_SIZE + 1, start + 16);
    p.writeUInt16LE(5, start + 18);
    p.writeUInt16LE(0x0902, start + 20);
    p[start + 22] = T_HOFF;
    let o = start + T_HOFF;
    p.writeInt32LE(nextId++, o); o += 8;
    p.writeBigInt64LE(BigInt(t0 + nextId * 1000 + rng.int(0, 1000)), o); o += 8;
    p.writeInt16LE(rng.int(0, 1000), o); o += 2;
    p.writeInt16LE(rng.int(0, 10), o); o += 2;
    p.writeUInt32LE(((4 + text.length) << 2) >>> 0, o); o += 4; // 4-byte varlena header
    text.copy(p, o);
    // line pointer: lp_off:15 | lp_flags:2 | lp_len:15
    p.writeUInt32LE((start | (LP_NORMAL << 15) | (len << 17)) >>> 0, lower);
    lower += LINE_POINTER_SIZE;
    upper = start;
  }
  // page header: pd_lsn, checksum, flags, pd_lower, pd_upper, pd_special, size|version, prune_xid
  p.writeUInt32LE(0, 0);
  p.writeUInt32LE(0x01000000 + pageNo * 64, 4);
  p.writeUInt16LE(lower, 12);
  p.writeUInt16LE(upper, 14);
  p.writeUInt16LE(PAGE_SIZE, 16);
  p.writeUInt16LE(PAGE_SIZE | 4, 18);
  return p;
}

/** `n` heap pages from one seed: page i is the same whatever n is. */
function heapPages(seed, n) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = heapPage(new Rng((seed * 1_000_003 + i) >>> 0), i);
  return out;
}

/**
 * A ≈100-byte tuple update (90–110 bytes): a fresh xmin/xmax pair and a rewritten text run,
 * written somewhere in the tuple area (at or above pd_upper) of a page from heapPage().
 */
function patchFor(rng, page) {
  const upper = page.readUInt16LE(14);
  const len = rng.int(90, 111);
  const lo = Math.min(upper, PAGE_SIZE - len);
  const offset = rng.int(lo, PAGE_SIZE - len + 1);
  const data = Buffer.alloc(len);
  data.writeUInt32LE(1000 + rng.int(0, 100_000), 0);
  data.writeUInt32LE(2000 + rng.int(0, 100_000), 4);
  wordsText(rng, 20, 30).copy(data, 8, 0, len - 8);
  return { offset, data };
}

/** Apply a patch to a page copy, as the baselines must at write time (Strata redoes at read time). */
function applyPatch(page, offset, data) {
  const next = Buffer.from(page);
  data.copy(next, offset);
  return next;
}

/** Page i's key: 7 relations, blocks numbered within each, as the sustained-write test does. */
function keyOf(i) {
  return { spcOid: 1663, dbOid: 5, relNumber: 16384 + (i % 7), forkNum: 0, blockNum: Math.floor(i / 7) };
}

/** 18-byte key ‖ u64 BE lsn: the baselines' composite key, sorted like Strata's delta index. */
function versionKey(encodedKey, lsn) {
  const b = Buffer.allocUnsafe(26);
  encodedKey.copy(b, 0);
  b.writeBigUInt64BE(BigInt(lsn), 18);
  return b;
}

/** Zipf(s) over [0, n) by inverse CDF on a precomputed table (binary search per draw). */
function zipfSampler(rng, n, s) {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) cdf[i] = sum += 1 / Math.pow(i + 1, s);
  return () => {
    const u = rng.next() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/** A random permutation of [0, n) (Fisher–Yates). */
function permutation(rng, n) {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    const t = p[i]; p[i] = p[j]; p[j] = t;
  }
  return p;
}

module.exports = { PAGE_SIZE, Rng, heapPage, heapPages, patchFor, applyPatch, keyOf, versionKey, zipfSampler, permutation };
