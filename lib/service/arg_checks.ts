/**
 * Checks of the arguments the service's public classes take from callers (Server, StrataClient,
 * ClientPool, RetryingClient, CircuitBreaker): a wrong one is BAD_ARGUMENT naming it, at the call,
 * rather than a TypeError or RangeError later from node:net or a timer (docs/RELIABILITY.md, "Bad
 * API input").
 */
import { describeValue, StrataError } from '../errors';

/** setTimeout's limit: a longer delay fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
export const MAX_PORT = 0xffff;

/** An options object, or undefined for the defaults (`null` or a number is a mistake). */
export function checkOptionalObject(o: unknown, what: string): void {
  if (o !== undefined && (o === null || typeof o !== 'object')) throw new StrataError('BAD_ARGUMENT', `${what} must be an object: got ${describeValue(o)}`);
}

export function checkOptionalFunction(f: unknown, what: string): void {
  if (f !== undefined && typeof f !== 'function') throw new StrataError('BAD_ARGUMENT', `${what} must be a function: got ${describeValue(f)}`);
}

/** A delay in [min, MAX_TIMER_MS] ms, or undefined for the default. */
export function checkOptionalMs(v: unknown, what: string, min = 0): void {
  if (v !== undefined && (typeof v !== 'number' || !(v >= min) || v > MAX_TIMER_MS)) {
    throw new StrataError('BAD_ARGUMENT', `${what} must be a number of milliseconds in [${min}, ${MAX_TIMER_MS}]: got ${describeValue(v)}`);
  }
}

/** A TCP port: [0, 65535] to listen on (0 picks one), [1, 65535] to connect to. */
export function checkPort(v: unknown, what: string, min: 0 | 1): asserts v is number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > MAX_PORT) {
    throw new StrataError('BAD_ARGUMENT', `${what} must be an integer in [${min}, ${MAX_PORT}]: got ${describeValue(v)}`);
  }
}

export function checkHost(v: unknown, what: string): asserts v is string {
  if (typeof v !== 'string' || v === '' || v.includes('\0')) throw new StrataError('BAD_ARGUMENT', `${what} must be a non-empty host name or address: got ${typeof v === 'string' ? JSON.stringify(v) : describeValue(v)}`);
}
