#!/usr/bin/env node
/**
 * Builds the N-API prebuild for this platform into prebuilds/<platform>-<arch>/ (npm run
 * build:prebuild): `prebuildify --napi --strip --tag-libc`, then a build record next to the binary
 * (strata.nativeInfo() reports it) and, on Linux, the glibc symbol-version gate
 * (scripts/check-glibc.js). The prebuilds ship inside the npm tarball ("files": prebuilds/) and
 * node-gyp-build loads them at run time, so installing Strata needs no compiler and no install script.
 *
 * prebuildify moves the compiled binary out of build/Release, so afterwards the package loads the
 * prebuild. One N-API binary serves every Node version with N-API ≥ 8 on this platform.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { buildRecord, nodedirArgs, ROOT } = require('./build-native.js');

function run(cmd, args, env) {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.error || r.status !== 0) {
    process.stderr.write(`build-prebuild: ${cmd} ${args.join(' ')} failed${r.error ? `: ${r.error.message}` : ` with exit ${r.status}`}\n`);
    process.exit(1);
  }
}

function main() {
  const prebuildify = require.resolve('prebuildify/bin.js', { paths: [ROOT] });
  // node-gyp takes the headers from nodedir (no download); npm passes its config, plain node does not.
  const nodedir = nodedirArgs()[0];
  const env = nodedir ? { npm_config_nodedir: nodedir.slice('--nodedir='.length) } : {};
  run(process.execPath, [prebuildify, '--napi', '--strip', '--tag-libc'], env);
  const dir = path.join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`);
  const binaries = fs.readdirSync(dir).filter((f) => f.endsWith('.node'));
  for (const f of binaries) {
    const file = path.join(dir, f);
    let glibc = null;
    if (process.platform === 'linux') {
      const { check } = require('./check-glibc.js');
      const res = check(file);
      glibc = { requires: Object.fromEntries(Object.entries(res.found).map(([lib, v]) => [lib, v.version])), gate: res.max };
      if (!res.ok) {
        process.stderr.write(`build-prebuild: ${file} needs too new a glibc/libstdc++:\n  ${res.problems.join('\n  ')}\n`);
        process.exit(1);
      }
    }
    const record = buildRecord('prebuildify --napi --strip --tag-libc (scripts/build-prebuild.js)', { glibc });
    fs.writeFileSync(file.replace(/\.node$/, '.build.json'), JSON.stringify(record, null, 2) + '\n');
    process.stdout.write(`prebuild: ${path.relative(ROOT, file)} (${fs.statSync(file).size} bytes)\n`);
  }
}

main();
