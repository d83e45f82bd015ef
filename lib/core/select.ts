/**
 * Chooses the core: 'native' (the C++ addon), 'ts' (the pure-TypeScript twin) or 'auto', which
 * uses native when the addon loads and otherwise says why once on stderr and uses TS.
 * STRATA_IMPL=native|ts|auto overrides the default of 'auto' when the caller passes nothing.
 */
import type { Core, CoreOptions, ImplementationName } from './core';
import { StrataError } from '../errors';
import { createNativeCore, nativeLoadError } from './native';
import { createTsCore } from './ts/core';

export type ImplementationChoice = ImplementationName | 'auto';

let warnedFallback = false;

export function resolveImplementation(requested?: ImplementationChoice): ImplementationName {
  const choice = requested ?? envChoice() ?? 'auto';
  if (choice === 'ts') return 'ts';
  const err = nativeLoadError();
  if (choice === 'native') {
    if (err) throw new StrataError('NATIVE_UNAVAILABLE', `the native addon cannot load: ${err.message}`, { cause: err });
    return 'native';
  }
  if (err) {
    if (!warnedFallback) {
      warnedFallback = true;
      process.stderr.write(`strata: native addon unavailable, using the pure-TypeScript core (${err.message})\n`);
    }
    return 'ts';
  }
  return 'native';
}

export function createCore(impl: ImplementationName, opts: CoreOptions): Core {
  return impl === 'native' ? createNativeCore(opts) : createTsCore(opts);
}

function envChoice(): ImplementationChoice | undefined {
  const v = process.env.STRATA_IMPL;
  if (v === undefined || v === '') return undefined;
  if (v === 'native' || v === 'ts' || v === 'auto') return v;
  throw new StrataError('BAD_ARGUMENT', `STRATA_IMPL must be native, ts or auto: got ${JSON.stringify(v)}`);
}
