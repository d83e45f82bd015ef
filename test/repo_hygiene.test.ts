/**
 * Generated files stay out of git: nothing `git ls-files` lists is a build output, a packed
 * tarball, a prebuild, a profiler or build log, or a benchmark result; and .gitignore ignores each
 * kind, so `git add .` cannot bring one in. A V8 profiler log (isolate-*.log) was once committed.
 * Outside a git checkout (e.g. an unpacked tarball) there is nothing to check, and the test says so.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.join(__dirname, '..');

/** What must never be tracked, with an example path .gitignore must ignore. */
const JUNK: ReadonlyArray<{ what: string; pattern: RegExp; example: string }> = [
  { what: 'V8 profiler log (node --prof)', pattern: /(^|\/)isolate-[^/]*\.log$/, example: 'isolate-0x242b5d10-23970-v8.log' },
  { what: 'log file', pattern: /\.log$/, example: 'build/build-native.log' },
  { what: 'packed tarball (npm pack)', pattern: /\.tgz$/, example: 'strata-0.1.0.tgz' },
  { what: 'prebuilt addon (scripts/build-prebuild.js)', pattern: /^prebuilds\//, example: 'prebuilds/linux-x64/strata.napi.glibc.node' },
  { what: 'build output (node-gyp, ASan, bench floors)', pattern: /^build[^/]*\//, example: 'build-asan/Release/strata.node' },
  { what: 'compiled addon', pattern: /\.node$/, example: 'native/strata.node' },
  { what: 'compiled TypeScript', pattern: /^dist\//, example: 'dist/index.js' },
  { what: 'installed dependency', pattern: /(^|\/)node_modules\//, example: 'node_modules/vitest/package.json' },
  // A worktree sharing another checkout's install through a symlink: git tracks the link itself.
  { what: 'node_modules symlink', pattern: /(^|\/)node_modules$/, example: 'node_modules' },
  { what: 'benchmark result', pattern: /^bench\/results\/.*\.json$/, example: 'bench/results/latest.json' },
  { what: 'test report', pattern: /^\.vitest-results\.json$/, example: '.vitest-results.json' },
  { what: 'CPU or heap profile', pattern: /\.(cpuprofile|heapprofile|heapsnapshot)$/, example: 'CPU.20261122.cpuprofile' },
];

function git(args: string[]): { status: number | null; stdout: string } {
  const r = spawnSync('git', args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { status: r.error ? null : r.status, stdout: r.stdout ?? '' };
}

const inGit = git(['rev-parse', '--is-inside-work-tree']).stdout.trim() === 'true';

describe.skipIf(!inGit)(`repository hygiene${inGit ? '' : ' — skipped: not a git checkout'}`, () => {
  it('git tracks no generated file', () => {
    const tracked = git(['ls-files', '-z']).stdout.split('\0').filter((f) => f !== '');
    expect(tracked.length).toBeGreaterThan(50);
    const junk = tracked.flatMap((f) => JUNK.filter((j) => j.pattern.test(f)).map((j) => `${f} (${j.what})`));
    expect(junk).toEqual([]);
  });

  it('no tracked file names an absolute path on this machine (data beside the repository is found relative to it)', () => {
    // e.g. the bench's ARC traces: ../shared/traces/arc from the repository root, not a fixed path.
    const r = git(['grep', '-n', '-I', '-E', '(^|[^.A-Za-z0-9_])/(work|home|root|Users)/']);
    expect(r.status === 0 ? r.stdout.trim().split('\n') : []).toEqual([]);
  });

  it('.gitignore ignores every kind of generated file', () => {
    for (const j of JUNK) {
      expect(j.pattern.test(j.example), `example of ${j.what}`).toBe(true);
      // check-ignore works on paths that do not exist; --no-index ignores what the index says.
      const r = git(['check-ignore', '--no-index', '-q', j.example]);
      expect(r.status, `${j.example} (${j.what}) is not ignored`).toBe(0);
    }
  });
});
