'use strict';
/**
 * What scripts/pg/ensure-postgres.js and scripts/s3/ensure-radosgw.js share: installing Debian
 * packages non-interactively as root (the test components the project starts itself), keeping the
 * configuration files already there (a setting written before the install wins).
 */
const { spawnSync } = require('child_process');

/** apt-get can take minutes on a slow mirror; a hung install must not hang `npm test` forever. */
const APT_TIMEOUT_MS = 15 * 60 * 1000;

function isRoot() {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function apt(args) {
  const r = spawnSync('apt-get', args, {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    encoding: 'utf8',
    timeout: APT_TIMEOUT_MS,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail = `${r.stderr || ''}${r.stdout || ''}`.trim().split('\n').slice(-3).join(' | ');
  return { ok: r.status === 0, tail: r.error ? String(r.error.message) : tail };
}

/** apt-get install of `packages`, with an apt-get update first when the lists are missing; { ok, detail }. */
function aptInstall(packages) {
  const args = ['install', '-y', '-q', '--no-install-recommends', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold', ...packages];
  let r = apt(args);
  let updated = false;
  if (!r.ok) {
    // A fresh image often has no package lists yet ("Unable to locate package").
    const u = apt(['update', '-q']);
    updated = true;
    if (!u.ok) return { ok: false, detail: `apt-get update failed: ${u.tail}` };
    r = apt(args);
  }
  if (!r.ok) return { ok: false, detail: `apt-get install ${packages.join(' ')} failed: ${r.tail}` };
  return { ok: true, detail: `installed ${packages.join(' ')} with apt-get${updated ? ' (after apt-get update)' : ''}` };
}

module.exports = { aptInstall, isRoot };
