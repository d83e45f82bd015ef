/**
 * Shared pieces of the bad-input property tests (docs/RELIABILITY.md, "Bad API input"): values of
 * every wrong shape, and `outcome`, which runs a call and insists that it either succeeds or throws
 * (or rejects with) a StrataError whose code is in ERROR_CODES and whose message says something.
 */
import { expect } from 'vitest';
import { ERROR_CODES, StrataError } from '../../lib/errors';
import type { Rng } from './random';

/** STRATA_BAD_INPUT_CASES sizes every bad-input test (test:faults raises it); `dflt` otherwise. */
export function badInputCases(dflt: number, share = 1): number {
  const env = process.env.STRATA_BAD_INPUT_CASES;
  return env === undefined ? dflt : Math.max(1, Math.round(Number(env) * share));
}

/** Wrong types and out-of-range numbers; generators mix in valid values so deeper checks are reached. */
export const WEIRD: readonly unknown[] = [
  undefined, null, true, 0, -1, 1.5, NaN, Infinity, -Infinity, 2 ** 32, 2 ** 53, Number.MAX_VALUE,
  -1n, 0n, 2n ** 64n, 2n ** 64n - 1n, '', 'x', 'a/../b', '\0', 'é'.repeat(300), Symbol('s'), () => 1,
  {}, [], [1, 2], { lsn: 1n }, new Date(NaN), Buffer.alloc(0), Buffer.alloc(8191),
  new Uint16Array(4), new ArrayBuffer(8), Object.create(null) as unknown,
];

export function weird(rng: Rng): unknown {
  return rng.pick(WEIRD);
}

/** Call fn; a throw or rejection must be a StrataError with a listed code and a message. Returns the error or null. */
export async function outcome(what: string, fn: () => unknown): Promise<StrataError | null> {
  let e: unknown = null;
  try {
    const r = fn();
    if (r instanceof Promise) await r;
  } catch (err) {
    e = err;
  }
  if (e === null) return null;
  if (!(e instanceof StrataError)) throw new Error(`${what}: threw ${safeString(e)} instead of a StrataError`, { cause: e });
  expect(Object.keys(ERROR_CODES), what).toContain(e.code);
  // "CODE: " then what was wrong.
  expect(e.message.length, `${what}: ${e.message}`).toBeGreaterThan(e.code.length + 4);
  return e;
}

/** A bug once found: a call, and what its BAD_ARGUMENT message must name. */
export type FixedCase = readonly [name: string, call: () => unknown, names: RegExp];

/** Every fixed case must be refused with BAD_ARGUMENT naming the argument: the ones that are not, described. */
export async function unrefusedCases(cases: readonly FixedCase[]): Promise<string[]> {
  const wrong: string[] = [];
  for (const [name, call, names] of cases) {
    let e: StrataError | null = null;
    try {
      e = await outcome(name, call);
    } catch (x) {
      wrong.push(`${name}: ${(x as Error).message}`);
      continue;
    }
    if (e?.code !== 'BAD_ARGUMENT' || !names.test(e.message)) wrong.push(`${name}: ${e === null ? 'accepted' : e.message}`);
  }
  return wrong;
}

function safeString(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : typeof e;
}

/** Counts of codes seen, for the "almost everything was refused" assertions. */
export class CodeTally {
  readonly codes = new Map<string, number>();
  refused = 0;
  calls = 0;

  add(e: StrataError | null): void {
    this.calls++;
    if (e === null) return;
    this.refused++;
    this.codes.set(e.code, (this.codes.get(e.code) ?? 0) + 1);
  }
}
