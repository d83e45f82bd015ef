#!/usr/bin/env node
/**
 * Packaging test (npm run test:pack; minutes, so not part of npm test). What a user gets from the
 * registry, checked end to end:
 *   1. stage a clean checkout (tracked and new files; never the caller's build outputs) and run a
 *      plain `npm pack` there: its prepack (scripts/prepack.js) builds dist/ and the prebuild, as it
 *      does for `npm publish`, so the tarball tested is the one publishing makes. The stage holds a
 *      developer build in build/ (a copy of the caller's), which must be back, and loading, after;
 *   2. install the tarball into an empty project with --ignore-scripts and a PATH holding only node
 *      and npm: no cc, g++, make or python3, so nothing can be compiled;
 *   3. require('strata') must load the native core from the prebuild, STRATA_IMPL=ts must work, the
 *      `strata` bin must run, and with the prebuild removed the package must fall back to pure TS
 *      with exactly one warning.
 * `--tarball FILE` skips step 1 and tests that tarball instead (e.g. the one about to be published).
 * STRATA_KEEP_PACK=1 keeps the temp directories for inspection.
 */
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..');
const SKIP = /^(node_modules|build|build-asan|dist|prebuilds|\.git)(\/|$)/;
const temps = [];
let failures = 0;

function tmpdir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temps.push(d);
  return d;
}

function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.error || r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.error ? r.error.message : `exit ${r.status}`})\n${r.stdout || ''}${r.stderr || ''}`);
  }
  return r;
}

function check(what, ok, detail) {
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${what}${ok || detail === undefined ? '' : `\n     ${detail}`}\n`);
  if (!ok) failures++;
}

/** The files a clean clone would have: git's tracked and not-ignored new files, else a filtered walk. */
function sourceFiles() {
  const r = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status === 0) return r.stdout.split('\0').filter((f) => f !== '' && !SKIP.test(f) && fs.existsSync(path.join(ROOT, f)));
  const out = [];
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(ROOT, rel), { withFileTypes: true })) {
      const p = rel === '' ? e.name : `${rel}/${e.name}`;
      if (SKIP.test(p)) continue;
      if (e.isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk('');
  return out;
}

function stage() {
  const dir = tmpdir('strata-stage-');
  for (const f of sourceFiles()) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
  }
  // Building needs node-addon-api, zstd-napi's sources, node-gyp, prebuildify and tsc: the caller's.
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return dir;
}

/** The developer build placed in the stage before packing: a copy of the caller's, if any. */
function seedDeveloperBuild(stageDir) {
  const addon = path.join(ROOT, 'build', 'Release', 'strata.node');
  if (!fs.existsSync(addon)) return null;
  const dest = path.join(stageDir, 'build', 'Release', 'strata.node');
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.copyFileSync(addon, dest);
  return fs.readFileSync(dest);
}

/** What node-gyp-build loads in `dir`, asked in a child process: { file, source }. */
function loadedAddon(dir) {
  const code = `const p = require('node-gyp-build').path(${JSON.stringify(dir)}); require(p); console.log(p);`;
  const r = spawnSync(process.execPath, ['-e', code], { cwd: dir, encoding: 'utf8' });
  const file = r.status === 0 ? r.stdout.trim() : null;
  return { file, source: file === null ? null : path.relative(dir, file).split(path.sep)[0], error: r.stderr };
}

/** A plain `npm pack` of the staged checkout, its lifecycle scripts included; the tarball's path. */
function packTarball(stageDir) {
  const devBuild = seedDeveloperBuild(stageDir);
  const dest = tmpdir('strata-tgz-');
  // npm keeps the lifecycle scripts' output (prepack's build, ≈ 1 min) and shows it if one fails.
  process.stdout.write('npm pack of a clean checkout (prepack builds dist/ and the prebuild)…\n');
  const r = run('npm', ['pack', '--json', '--pack-destination', dest], { cwd: stageDir });
  const info = JSON.parse(r.stdout.slice(r.stdout.indexOf('[')))[0];
  const files = info.files.map((f) => f.path);
  const prebuild = files.find((f) => /^prebuilds\/[^/]+\/strata\..*\.node$/.test(f));
  check(`tarball ${info.filename} holds a prebuild (${prebuild || 'none'})`, prebuild !== undefined);
  check('tarball holds dist/cli/cli.js and bin/strata.js', files.includes('dist/cli/cli.js') && files.includes('bin/strata.js'));
  check('tarball holds no build/ directory', !files.some((f) => f.startsWith('build')));
  // The checkout that was packed still works for its developer: their build is back and loads.
  if (devBuild !== null) {
    const restored = path.join(stageDir, 'build', 'Release', 'strata.node');
    check('after npm pack the developer build is back in build/Release', fs.existsSync(restored) && fs.readFileSync(restored).equals(devBuild));
  }
  const loaded = loadedAddon(stageDir);
  check(`after npm pack the checkout loads an addon (${loaded.source || 'none'})`, loaded.file !== null && loaded.source === (devBuild !== null ? 'build' : 'prebuilds'), loaded.error);
  return path.join(dest, info.filename);
}

/** A bin directory with node and npm only, so an install or a load cannot reach a compiler. */
function toolFreePath() {
  const bin = tmpdir('strata-bin-');
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  const npmCli = fs.realpathSync(run('sh', ['-c', 'command -v npm']).stdout.trim());
  fs.symlinkSync(npmCli, path.join(bin, 'npm'));
  return bin;
}

function install(tarball, binDir) {
  const project = tmpdir('strata-consumer-');
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }, null, 2));
  const env = { ...process.env, PATH: binDir };
  for (const tool of ['cc', 'gcc', 'g++', 'make', 'python3']) {
    const r = spawnSync(process.execPath, ['-e', `require('child_process').execFileSync(${JSON.stringify(tool)}, ['--version'], { stdio: 'ignore' })`], { env });
    check(`no ${tool} on the install PATH`, r.status !== 0);
  }
  run(path.join(binDir, 'npm'), ['install', '--ignore-scripts', '--no-audit', '--no-fund', tarball], { cwd: project, env, stdio: 'inherit' });
  return { project, env };
}

const ROUND_TRIP = `
  const fs = require('fs'), os = require('os'), path = require('path');
  const strata = require('strata');
  (async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-pack-repo-'));
    const repo = await strata.Repository.open(dir);
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    const key = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: 0 };
    tl.ingest([{ lsn: 0x10n, key, kind: 'image', page: Buffer.alloc(8192, 7) }, { lsn: 0x20n, key, kind: 'patch', offset: 1, data: Buffer.from('hi') }]);
    await tl.flush();
    const page = await tl.getPage(key, 0x20n);
    await repo.close();
    const info = strata.nativeInfo();
    console.log(JSON.stringify({ impl: repo.implementation, page: page.subarray(0, 4).toString('hex'), source: info.source, loaded: info.loaded, dir }));
  })().catch((e) => { console.error(e); process.exit(1); });
`;

function consumerRun(project, env, extraEnv) {
  const r = spawnSync(process.execPath, ['-e', ROUND_TRIP], { cwd: project, env: { ...env, ...extraEnv }, encoding: 'utf8' });
  let out = null;
  try {
    out = JSON.parse(r.stdout.trim().split('\n').pop());
  } catch {
    // Reported below with the raw output.
  }
  return { out, stderr: r.stderr, status: r.status, raw: r.stdout };
}

function verifyInstall(project, env) {
  const pkgDir = path.join(project, 'node_modules', 'strata');
  check('nothing was compiled at install (no node_modules/strata/build)', !fs.existsSync(path.join(pkgDir, 'build')));
  const native = consumerRun(project, env, { STRATA_IMPL: '' });
  check('require("strata") uses the native core from the prebuild', native.out !== null && native.out.impl === 'native' && native.out.source === 'prebuild' && native.out.page === '07686907',
    JSON.stringify(native));
  const ts = consumerRun(project, env, { STRATA_IMPL: 'ts' });
  check('STRATA_IMPL=ts uses the pure-TS core', ts.out !== null && ts.out.impl === 'ts' && ts.out.page === '07686907', JSON.stringify(ts));
  const bin = path.join(project, 'node_modules', '.bin', 'strata');
  const version = spawnSync(bin, ['version', '--json'], { cwd: project, env, encoding: 'utf8' });
  let info = null;
  try { info = JSON.parse(version.stdout); } catch { /* reported below */ }
  check('the strata bin runs and reports the prebuild', version.status === 0 && info !== null && info.loaded === true && info.source === 'prebuild', version.stdout + version.stderr);
  if (native.out !== null) {
    const verify = spawnSync(bin, ['verify', native.out.dir], { cwd: project, env, encoding: 'utf8' });
    check('strata verify passes on a repository written by the installed package', verify.status === 0, verify.stdout + verify.stderr);
  }
  // Neither prebuild nor compiler: pure TS with one clear warning.
  fs.rmSync(path.join(pkgDir, 'prebuilds'), { recursive: true, force: true });
  const fallback = consumerRun(project, env, { STRATA_IMPL: '' });
  const warnings = fallback.stderr.split('\n').filter((l) => l.startsWith('strata: native addon unavailable'));
  check('without the prebuild it falls back to pure TS with exactly one warning', fallback.out !== null && fallback.out.impl === 'ts' && warnings.length === 1,
    JSON.stringify(fallback));
  if (warnings.length === 1) process.stdout.write(`     warning: ${warnings[0]}\n`);
}

function tarballArg() {
  const i = process.argv.indexOf('--tarball');
  if (i < 0) return null;
  const file = process.argv[i + 1];
  if (file === undefined || !fs.existsSync(file)) {
    process.stderr.write(`test:pack: --tarball needs an existing file, got ${JSON.stringify(file)}\n`);
    process.exit(2);
  }
  return path.resolve(file);
}

function main() {
  try {
    const given = tarballArg();
    const tarball = given !== null ? given : packTarball(stage());
    const binDir = toolFreePath();
    const { project, env } = install(tarball, binDir);
    verifyInstall(project, env);
  } catch (e) {
    check('packaging test ran to completion', false, e instanceof Error ? e.message : String(e));
  } finally {
    if (process.env.STRATA_KEEP_PACK === '1') process.stdout.write(`kept: ${temps.join(' ')}\n`);
    else for (const d of temps) fs.rmSync(d, { recursive: true, force: true });
  }
  process.stdout.write(`test:pack: ${failures === 0 ? 'passed' : `${failures} check(s) failed`}\n`);
  process.exit(failures === 0 ? 0 : 1);
}

main();
