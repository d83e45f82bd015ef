/**
 * Inputs for the TS fuzz targets: real seeds mutated the way libFuzzer's default mutators do (bit
 * flips, interesting bytes and integers, truncation, insertion, deletion, duplication, splices with
 * another seed) and purely random bytes, plus a JSON-aware mutator for the JSON formats (a text
 * mutation almost never leaves valid JSON, so it would never reach the validation behind the parse).
 *
 * An input is described by a few integers that fast-check draws (and shrinks); the bytes are
 * derived from them deterministically, so a failure reproduces from its fast-check seed and the
 * harness also saves the bytes (test/fuzz/regressions/<target>/).
 */
import fc from 'fast-check';

/** What fast-check draws for one input. */
export interface InputRecipe {
  /** Which seed (modulo the count); ignored for random inputs. */
  seed: number;
  /** PRNG state for the mutations. */
  rng: number;
  /** Mutations stacked on the seed, 1..MAX_STACKED_MUTATIONS. */
  mutations: number;
  /** 0..RANDOM_INPUT_ONE_IN-1: 0 makes a random input instead of a mutated seed. */
  kind: number;
}

const MAX_STACKED_MUTATIONS = 8;
/** One input in this many is random bytes rather than a mutated seed. */
const RANDOM_INPUT_ONE_IN = 10;
const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff, 0x10, 0x20, 0x40];
const INTERESTING_32 = [0, 1, 2, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x1_0000, 0x2000, 0x1fff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0xffff_fffe];

/** xorshift32: small, fast, deterministic. */
export class Prng {
  private s: number;

  constructor(seed: number) {
    this.s = (seed | 0) === 0 ? 0x9e37_79b9 : seed | 0;
  }

  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x;
    return x >>> 0;
  }

  /** Uniform in [0, n) for n ≥ 1. */
  below(n: number): number {
    return n <= 1 ? 0 : this.next() % n;
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.next() & 0xff;
    return b;
  }
}

export const recipeArbitrary: fc.Arbitrary<InputRecipe> = fc.record({
  seed: fc.nat(),
  rng: fc.integer(),
  mutations: fc.integer({ min: 1, max: MAX_STACKED_MUTATIONS }),
  kind: fc.integer({ min: 0, max: RANDOM_INPUT_ONE_IN - 1 }),
});

/** A length in [0, max], small ones more often (most interesting inputs are short). */
function length(rng: Prng, max: number): number {
  const cap = rng.below(4) === 0 ? max : Math.min(max, 64);
  return rng.below(cap + 1);
}

function writeInt(b: Buffer, at: number, width: number, v: number, bigEndian: boolean): void {
  for (let i = 0; i < width && at + i < b.length; i++) {
    const byte = (v / 2 ** (8 * i)) & 0xff;
    b[bigEndian ? at + width - 1 - i : at + i] = byte;
  }
}

/** One byte-level mutation of `b` (a fresh buffer is returned; `b` is not changed). */
export function mutateBytes(b: Buffer, rng: Prng, seeds: readonly Buffer[], maxLen: number): Buffer {
  const out = Buffer.from(b);
  const at = (): number => rng.below(Math.max(1, out.length));
  switch (rng.below(12)) {
    case 0: // flip a bit
      if (out.length > 0) out[at()] ^= 1 << rng.below(8);
      return out;
    case 1: // random byte
      if (out.length > 0) out[at()] = rng.next() & 0xff;
      return out;
    case 2: // interesting byte
      if (out.length > 0) out[at()] = INTERESTING_8[rng.below(INTERESTING_8.length)];
      return out;
    case 3: // interesting u16 / u32 / u64, either byte order, maybe off by one
    case 4: {
      if (out.length === 0) return out;
      const width = [2, 4, 8][rng.below(3)];
      const base = INTERESTING_32[rng.below(INTERESTING_32.length)];
      const v = rng.below(3) === 0 ? (base + (rng.below(2) === 0 ? 1 : -1)) >>> 0 : base;
      writeInt(out, at(), width, v, rng.below(2) === 0);
      return out;
    }
    case 5: // arithmetic on a byte
      if (out.length > 0) {
        const i = at();
        out[i] = (out[i] + rng.below(35) - 17) & 0xff;
      }
      return out;
    case 6: // truncate
      return out.subarray(0, rng.below(out.length + 1));
    case 7: { // delete a range
      const from = rng.below(out.length + 1);
      const n = length(rng, out.length - from);
      return Buffer.concat([out.subarray(0, from), out.subarray(from + n)]);
    }
    case 8: { // insert random bytes
      const from = rng.below(out.length + 1);
      const ins = rng.bytes(length(rng, Math.max(0, maxLen - out.length)));
      return Buffer.concat([out.subarray(0, from), ins, out.subarray(from)]).subarray(0, maxLen);
    }
    case 9: { // duplicate / copy a range within the input
      if (out.length === 0) return out;
      const from = rng.below(out.length);
      const n = 1 + rng.below(Math.min(out.length - from, 256));
      const to = rng.below(out.length);
      return Buffer.concat([out.subarray(0, to), out.subarray(from, from + n), out.subarray(to)]).subarray(0, maxLen);
    }
    case 10: { // splice: a prefix of this input, a suffix of another seed
      const other = seeds[rng.below(seeds.length)];
      const cut = rng.below(out.length + 1);
      const from = rng.below(other.length + 1);
      return Buffer.concat([out.subarray(0, cut), other.subarray(from)]).subarray(0, maxLen);
    }
    default: { // overwrite with a chunk of another seed at the same or a random place
      const other = seeds[rng.below(seeds.length)];
      if (other.length === 0 || out.length === 0) return out;
      const from = rng.below(other.length);
      const n = 1 + rng.below(Math.min(other.length - from, 512));
      const to = rng.below(2) === 0 ? Math.min(from, out.length - 1) : at();
      other.copy(out, to, from, from + Math.min(n, out.length - to));
      return out;
    }
  }
}

const JSON_REPLACEMENTS: readonly unknown[] = [
  null, true, false, 0, -1, 1, 0.5, 2 ** 53, -(2 ** 53), 1e308, 2 ** 32, 2 ** 32 - 1, '', 'x', '0', '-1', 'lsn:0/0', 'lsn:FFFFFFFF/FFFFFFFF',
  '00'.repeat(18), 'ff'.repeat(18), [], {}, [1], { a: 1 }, '\u0000', 'é'.repeat(3),
];

const TRAILER_START = '\ncrc32 ';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every (container, key) position in a JSON value, depth first. */
function positions(v: Json, out: Array<{ parent: Json[] | { [k: string]: Json }; key: string | number }>): void {
  if (Array.isArray(v)) {
    v.forEach((c, i) => {
      out.push({ parent: v, key: i });
      positions(c, out);
    });
  } else if (v !== null && typeof v === 'object') {
    for (const k of Object.keys(v)) {
      out.push({ parent: v, key: k });
      positions(v[k], out);
    }
  }
}

/**
 * One structural mutation of a JSON text: replace a value (interesting values, another value of the
 * document, a number off by one), delete a key or element, duplicate an element, or rename a key.
 * Returns null when the text is not JSON.
 */
export function mutateJson(text: string, rng: Prng): string | null {
  // A document with a checksum trailer (the manifest): mutate the JSON before it, keep the trailer
  // line (the target recomputes it).
  const cut = text.lastIndexOf(TRAILER_START);
  if (cut > 0) {
    const body = mutateJson(text.slice(0, cut), rng);
    return body === null ? null : body + text.slice(cut);
  }
  let doc: Json;
  try {
    doc = JSON.parse(text) as Json;
  } catch {
    return null;
  }
  const pos: Array<{ parent: Json[] | { [k: string]: Json }; key: string | number }> = [];
  positions(doc, pos);
  // A document embedded as a string (the manifest inside index_part.json): mutate it within.
  const embedded = pos.filter((p) => {
    const v = Array.isArray(p.parent) ? p.parent[p.key as number] : p.parent[p.key as string];
    return typeof v === 'string' && v.startsWith('{');
  });
  if (embedded.length > 0 && rng.below(2) === 0) {
    const p = embedded[rng.below(embedded.length)];
    const inner = mutateJson((Array.isArray(p.parent) ? p.parent[p.key as number] : p.parent[p.key as string]) as string, rng);
    if (inner !== null) {
      if (Array.isArray(p.parent)) p.parent[p.key as number] = inner;
      else p.parent[p.key as string] = inner;
      return JSON.stringify(doc);
    }
  }
  if (pos.length === 0) return JSON.stringify(JSON_REPLACEMENTS[rng.below(JSON_REPLACEMENTS.length)]);
  const p = pos[rng.below(pos.length)];
  const get = (): Json => (Array.isArray(p.parent) ? p.parent[p.key as number] : p.parent[p.key as string]);
  const set = (v: Json): void => {
    if (Array.isArray(p.parent)) p.parent[p.key as number] = v;
    else p.parent[p.key as string] = v;
  };
  switch (rng.below(6)) {
    case 0:
    case 1:
      set(JSON_REPLACEMENTS[rng.below(JSON_REPLACEMENTS.length)] as Json);
      break;
    case 2: { // a value from elsewhere in the document
      const q = pos[rng.below(pos.length)];
      const v = Array.isArray(q.parent) ? q.parent[q.key as number] : q.parent[q.key as string];
      set(JSON.parse(JSON.stringify(v)) as Json);
      break;
    }
    case 3: { // numbers and strings nudged
      const v = get();
      if (typeof v === 'number') set(v + (rng.below(2) === 0 ? 1 : -1));
      else if (typeof v === 'string' && v.length > 0) {
        const i = rng.below(v.length);
        set(v.slice(0, i) + String.fromCharCode((v.charCodeAt(i) + 1) & 0x7f) + v.slice(i + 1));
      } else set(null);
      break;
    }
    case 4: // delete
      if (Array.isArray(p.parent)) p.parent.splice(p.key as number, 1);
      else delete p.parent[p.key as string];
      break;
    default: // duplicate an element / rename a key
      if (Array.isArray(p.parent)) p.parent.push(JSON.parse(JSON.stringify(get())) as Json);
      else {
        const v = get();
        delete p.parent[p.key as string];
        p.parent[`${String(p.key)}_`] = v;
      }
  }
  return JSON.stringify(doc, null, 1);
}

/** The input a recipe describes. `json`: the format is JSON text, mutated structurally half the time. */
export function materialize(r: InputRecipe, seeds: readonly Buffer[], maxLen: number, json = false): Buffer {
  const rng = new Prng(r.rng);
  if (r.kind === 0 || seeds.length === 0) return rng.bytes(length(rng, maxLen));
  let b = seeds[r.seed % seeds.length];
  for (let i = 0; i < r.mutations; i++) {
    if (json && rng.below(2) === 0) {
      const m = mutateJson(b.toString('utf8'), rng);
      if (m !== null) {
        b = Buffer.from(m);
        continue;
      }
    }
    b = mutateBytes(b, rng, seeds, maxLen);
  }
  return b;
}
