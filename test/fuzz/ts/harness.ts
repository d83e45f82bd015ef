/**
 * Runs a TS fuzz target: fast-check draws input recipes (test/fuzz/ts/mutate.ts) over the target's
 * committed seeds, and every input must end in success or a StrataError whose code is one of
 * ERROR_CODES. Anything else (another exception type, a round-trip violation) fails the campaign;
 * the failing bytes are written to build-fuzz/crashes/ts/<target>/ so they can be committed into
 * test/fuzz/regressions/<target>/ and replayed from then on (test/fuzz_regressions.test.ts).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { isErrorCode, StrataError } from '../../../lib/errors';
import { materialize, recipeArbitrary, type InputRecipe } from './mutate';
import type { TsFuzzTarget } from './targets';

const ROOT = path.join(__dirname, '..', '..', '..');
export const CORPUS_DIR = path.join(ROOT, 'test', 'fuzz', 'corpus');
export const REGRESSIONS_DIR = path.join(ROOT, 'test', 'fuzz', 'regressions');
const CRASH_DIR = path.join(ROOT, 'build-fuzz', 'crashes', 'ts');
/** Inputs per fast-check run; the event loop gets a turn between runs. */
const CHUNK_RUNS = 5000;

export interface CampaignLimits {
  /** Stop after this many inputs… */
  runs: number;
  /** …or after this many seconds, whichever comes first (0: no time limit). */
  seconds: number;
  /** fast-check's seed: a failure reproduces from it (fast-check prints it). */
  seed: number;
}

export interface CampaignStats {
  target: string;
  executions: number;
  seconds: number;
  seeds: number;
  /** Outcomes: "ok" or the StrataError code. */
  outcomes: Record<string, number>;
}

/** The files of a directory (sorted), or none when it does not exist. */
export function readInputs(dir: string): Array<{ name: string; bytes: Buffer }> {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).sort()
    .map((name) => ({ name, file: path.join(dir, name) }))
    .filter((f) => fs.statSync(f.file).isFile())
    .map((f) => ({ name: f.name, bytes: fs.readFileSync(f.file) }));
}

export function loadSeeds(t: TsFuzzTarget): Buffer[] {
  return readInputs(path.join(CORPUS_DIR, t.corpus)).map((f) => f.bytes);
}

/** "ok", or the StrataError's code; throws (with the input saved) for any other outcome. */
export async function runOne(t: TsFuzzTarget, input: Buffer): Promise<string> {
  try {
    await t.run(input);
    return 'ok';
  } catch (e) {
    if (e instanceof StrataError && isErrorCode(e.code)) return e.code;
    throw await failure(t, input, e);
  }
}

/** The error a bad outcome is reported with: what was thrown (re-run with stack traces on) and where the input is saved. */
async function failure(t: TsFuzzTarget, input: Buffer, first: unknown): Promise<Error> {
  const file = saveCrash(t.name, input);
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = Math.max(limit, 20);
  let thrown = first;
  try {
    await t.run(input);
  } catch (e) {
    thrown = e;
  } finally {
    Error.stackTraceLimit = limit;
  }
  const what = thrown instanceof Error ? `${thrown.stack ?? `${thrown.constructor.name}: ${thrown.message}`}` : String(thrown);
  return new Error(`fuzz target ${t.name}: not a coded StrataError: ${what}\n  input (${input.length} bytes) saved to ${file}`, { cause: thrown });
}

function saveCrash(target: string, input: Buffer): string {
  const dir = path.join(CRASH_DIR, target);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `crash-${crypto.createHash('sha1').update(input).digest('hex')}`);
  fs.writeFileSync(file, input);
  return file;
}

/** A fuzzing campaign on one target within `limits`; throws on the first bad outcome. */
export async function campaign(t: TsFuzzTarget, limits: CampaignLimits): Promise<CampaignStats> {
  const seeds = loadSeeds(t);
  const outcomes: Record<string, number> = {};
  let executions = 0;
  const count = (o: string): void => {
    outcomes[o] = (outcomes[o] ?? 0) + 1;
    executions++;
  };
  const input = (r: InputRecipe): Buffer => materialize(r, seeds, t.maxLen, t.json === true);
  let bad: { input: Buffer; error: unknown } | null = null;
  const syncProp = fc.property(recipeArbitrary, (r) => {
    const b = input(r);
    try {
      t.run(b);
      count('ok');
    } catch (e) {
      if (e instanceof StrataError && isErrorCode(e.code)) count(e.code);
      else {
        bad ??= { input: b, error: e };
        throw e;
      }
    }
  });
  const asyncProp = fc.asyncProperty(recipeArbitrary, async (r) => {
    const b = input(r);
    try {
      await t.run(b);
      count('ok');
    } catch (e) {
      if (e instanceof StrataError && isErrorCode(e.code)) count(e.code);
      else {
        bad ??= { input: b, error: e };
        throw e;
      }
    }
  });
  // Stack traces cost more than most targets' parsing, and refused inputs throw by the thousand;
  // a failure is re-run with them on before it is reported.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const t0 = process.hrtime.bigint();
  const elapsedS = (): number => Number(process.hrtime.bigint() - t0) / 1e9;
  try {
    // Every seed as it is first (most are valid and succeed).
    for (const s of seeds) count(await runOne(t, s));
    // In chunks of CHUNK_RUNS, yielding between them: a long synchronous run would starve the test
    // runner's own messages. Chunk i uses fast-check seed `seed + i` (fast-check prints it on failure).
    for (let chunk = 0, done = 0; done < limits.runs; chunk++) {
      const left = limits.seconds > 0 ? limits.seconds - elapsedS() : Infinity;
      if (left <= 0) break;
      const numRuns = Math.min(CHUNK_RUNS, limits.runs - done);
      const params: fc.Parameters<[InputRecipe]> = {
        numRuns,
        seed: (limits.seed + chunk) | 0,
        ...(left !== Infinity ? { interruptAfterTimeLimit: Math.ceil(left * 1000), markInterruptAsFailure: false } : {}),
      };
      try {
        if (t.async === true) await fc.assert(asyncProp, params);
        else fc.assert(syncProp, params);
      } catch (e) {
        if (bad === null) throw e;
        const first = bad as { input: Buffer; error: unknown };
        // fast-check's report (seed, shrunk recipe) first, then the first failing input itself.
        throw new Error(`${(e as Error).message}\n${(await failure(t, first.input, first.error)).message}`, { cause: first.error });
      }
      done += numRuns;
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
  return { target: t.name, executions, seconds: Number(process.hrtime.bigint() - t0) / 1e9, seeds: seeds.length, outcomes };
}
