/**
 * The README's quick start runs as written: its first ```js block under "## Quick start" is
 * extracted and run as an ES module against the built package (dist/, via the package's own
 * name), and each console.log must print what its trailing comment says.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ERROR_CODES } from '../lib/errors';
import { describe, expect, it } from 'vitest';

const ROOT = path.join(__dirname, '..');

function quickStart(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^## /m).find((s) => s.startsWith('Quick start'));
  const block = section === undefined ? null : /```js\n([\s\S]*?)```/.exec(section);
  if (block === null) throw new Error('README.md has no ```js block under "## Quick start"');
  return block[1];
}

/** `console.log(...); // hello` → 'hello': the comment's first word is the expected output. */
function expectedOutput(code: string): string[] {
  return code.split('\n').filter((l) => l.trimStart().startsWith('console.log(')).map((l) => {
    const m = /\/\/\s*(\S+)/.exec(l);
    if (m === null) throw new Error(`quick start line has no expected-output comment: ${l}`);
    return m[1];
  });
}

describe('README', () => {
  it('the quick start runs as written and prints what its comments say', () => {
    const code = quickStart();
    const expected = expectedOutput(code);
    expect(expected.length).toBeGreaterThan(0);
    // cwd = the package root, so `import ... from 'strata'` resolves to this package by its name.
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8', env: { ...process.env } });
    expect(r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('strata: native addon unavailable'))).toEqual([]);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(expected);
  });

  it('the quick start also runs on the pure-TypeScript core', () => {
    const code = quickStart();
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, STRATA_IMPL: 'ts' } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(expectedOutput(code));
  });

  it('documents every runtime export, and exactly the error codes there are', async () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const lib = await import('../lib');
    const exported = Object.keys(lib).filter((k) => typeof (lib as Record<string, unknown>)[k] === 'function');
    expect(exported.length).toBeGreaterThan(5);
    for (const name of exported) expect(readme, `README mentions ${name}`).toContain(name);
    const section = readme.slice(readme.indexOf('### Errors'), readme.indexOf('###', readme.indexOf('### Errors') + 3));
    const documented = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented).toEqual(Object.keys(ERROR_CODES));
  });
});
