#!/usr/bin/env node
/**
 * Makes Ceph's S3 gateway (radosgw) and the daemons it stands on available for the object-storage
 * tests (issue 15, point 7), run by `npm test`'s `pretest` beside scripts/pg/ensure-postgres.js.
 * When every program test/helpers/s3_server.ts runs is on the PATH (or in /usr/bin) it returns at
 * once; when not and we are root on a machine with apt-get, it installs Debian's `radosgw`,
 * `ceph-mon`, `ceph-osd` and `ceph-common` non-interactively. Nothing is configured or started
 * here: the tests make their own throw-away single-node cluster (docs/REMOTE.md, "The test server").
 *
 * It prints one line saying what it did and always exits 0: when the server cannot be had, the S3
 * tests are skipped with the reason. The reason is also written as JSON to STATUS_FILE (below),
 * where test/helpers/s3_server.ts `s3Availability()` picks it up to explain the skip.
 *
 * Environment: STRATA_S3=off (do nothing; the S3 tests skip), STRATA_S3_NO_INSTALL=1 (check only).
 *
 * Usage: node scripts/s3/ensure-radosgw.js [--json]
 */
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { aptInstall, isRoot } = require('../lib/apt');

/** Every program test/helpers/s3_server.ts runs; keep the two lists in sync. */
const TOOLS = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'monmaptool'];
/** Debian packages holding them (monmaptool comes with ceph-base, a dependency of ceph-mon). */
const PACKAGES = ['radosgw', 'ceph-mon', 'ceph-osd', 'ceph-common'];
/** Read by s3Availability() in test/helpers/s3_server.ts: keep the two in sync. */
const STATUS_FILE = path.join(os.tmpdir(), 'strata-s3-ensure.json');

function findTool(name) {
  for (const dir of [...(process.env.PATH || '').split(':'), '/usr/bin', '/usr/sbin', '/bin', '/sbin']) {
    if (dir && fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return null;
}

function missingTools() {
  return TOOLS.filter((t) => findTool(t) === null);
}

function install() {
  return aptInstall(PACKAGES);
}

/** Decides, acts, and returns { ok, action, reason }. */
function ensure() {
  if ((process.env.STRATA_S3 || '').toLowerCase() === 'off') return { ok: false, action: 'none', reason: 'disabled by STRATA_S3=off' };
  if (process.platform !== 'linux') return { ok: false, action: 'none', reason: `the radosgw test server runs on Linux only (this is ${process.platform})` };
  const missing = missingTools();
  if (missing.length === 0) return { ok: true, action: 'present', reason: `Ceph radosgw present (${findTool('radosgw')})` };

  const why = `Ceph programs missing: ${missing.join(', ')}`;
  if (process.env.STRATA_S3_NO_INSTALL === '1') return { ok: false, action: 'none', reason: `${why}; STRATA_S3_NO_INSTALL=1` };
  if (!isRoot()) return { ok: false, action: 'none', reason: `${why}; not root, so not installing (apt-get install ${PACKAGES.join(' ')})` };
  if (findTool('apt-get') === null) return { ok: false, action: 'none', reason: `${why}; no apt-get on this machine` };

  const r = install();
  if (!r.ok) return { ok: false, action: 'install-failed', reason: `${why}; ${r.detail}` };
  const still = missingTools();
  if (still.length > 0) return { ok: false, action: 'install-failed', reason: `${r.detail}, but ${still.join(', ')} still missing` };
  return { ok: true, action: 'installed', reason: r.detail };
}

function main() {
  let result;
  try {
    result = ensure();
  } catch (e) {
    result = { ok: false, action: 'error', reason: `ensure-radosgw failed: ${e && e.message ? e.message : String(e)}` };
  }
  const status = { ...result, at: new Date().toISOString() };
  try {
    fs.writeFileSync(STATUS_FILE, `${JSON.stringify(status)}\n`);
  } catch {
    // The helper re-derives availability itself; the file only adds the install's reason.
  }
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(status)}\n`);
  else process.stdout.write(`ensure-radosgw: ${result.ok ? '' : 'unavailable, S3 tests will be skipped: '}${result.reason}\n`);
}

main();
