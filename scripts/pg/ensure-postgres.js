#!/usr/bin/env node
/**
 * Makes PostgreSQL 15 available for the PostgreSQL tests (issue 14, point 6), run by `npm test`'s
 * `pretest`. When /usr/lib/postgresql/15/bin has every tool the tests use it returns at once; when
 * it does not and we are root on a machine with apt-get, it installs Debian's `postgresql-15`
 * non-interactively, first setting `create_main_cluster = false` in
 * /etc/postgresql-common/createcluster.conf so that Debian's default `main` cluster is neither
 * created nor started (the tests make their own throw-away clusters; see test/helpers/pg_cluster.ts).
 *
 * It prints one line saying what it did and always exits 0: when PostgreSQL cannot be had, the tests
 * are skipped with the reason. The reason is also written as JSON to STATUS_FILE (below), where
 * test/helpers/pg_cluster.ts `pgAvailability()` picks it up to explain the skip.
 *
 * Environment: STRATA_PG_BIN (default /usr/lib/postgresql/15/bin), STRATA_PG=off (do nothing; the
 * tests skip), STRATA_PG_NO_INSTALL=1 (check only, never install).
 *
 * Usage: node scripts/pg/ensure-postgres.js [--json]
 */
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { aptInstall, isRoot } = require('../lib/apt');

const BIN_DIR = process.env.STRATA_PG_BIN || '/usr/lib/postgresql/15/bin';
/** Every tool the helpers in test/helpers/pg_*.ts run. */
const TOOLS = ['postgres', 'initdb', 'pg_ctl', 'psql', 'pgbench', 'pg_controldata', 'pg_waldump', 'pg_amcheck', 'pg_basebackup'];
/** Debian packages that hold those tools (psql is in the client package, pulled in as a dependency). */
const PACKAGES = ['postgresql-15', 'postgresql-client-15'];
const CREATECLUSTER_CONF = '/etc/postgresql-common/createcluster.conf';
/** Read by pgAvailability() in test/helpers/pg_cluster.ts: keep the two in sync. */
const STATUS_FILE = path.join(os.tmpdir(), 'strata-pg-ensure.json');

function missingTools() {
  return TOOLS.filter((t) => !fs.existsSync(path.join(BIN_DIR, t)));
}

/** The postgres OS user the clusters run as when the tests run as root (PostgreSQL refuses root). */
function postgresUserExists() {
  try {
    return fs
      .readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .some((l) => l.startsWith('postgres:'));
  } catch {
    return false;
  }
}

function findInPath(name) {
  for (const dir of (process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (dir && fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return null;
}

/**
 * Debian's postgresql-common creates and starts a `main` cluster on install unless this setting is
 * false. Written before the package exists too; the install keeps our copy (--force-confold).
 */
function disableMainCluster() {
  fs.mkdirSync(path.dirname(CREATECLUSTER_CONF), { recursive: true });
  const line = 'create_main_cluster = false';
  let text = '';
  try {
    text = fs.readFileSync(CREATECLUSTER_CONF, 'utf8');
  } catch {
    text = '';
  }
  const re = /^\s*#?\s*create_main_cluster\s*=.*$/m;
  const next = re.test(text) ? text.replace(re, line) : `${text}${text && !text.endsWith('\n') ? '\n' : ''}${line}\n`;
  if (next !== text) fs.writeFileSync(CREATECLUSTER_CONF, next);
}

function install() {
  disableMainCluster();
  return aptInstall(PACKAGES);
}

/** Decides, acts, and returns { ok, action, reason }. */
function ensure() {
  if ((process.env.STRATA_PG || '').toLowerCase() === 'off') {
    return { ok: false, action: 'none', reason: 'disabled by STRATA_PG=off' };
  }
  const root = isRoot();
  if (root && !postgresUserExists() && missingTools().length === 0) {
    return {
      ok: false,
      action: 'none',
      reason: 'PostgreSQL 15 is installed but there is no postgres OS user to run it as',
    };
  }
  const missing = missingTools();
  if (missing.length === 0) return { ok: true, action: 'present', reason: `PostgreSQL 15 present in ${BIN_DIR}` };

  const why = `PostgreSQL 15 tools missing in ${BIN_DIR}: ${missing.join(', ')}`;
  if (process.env.STRATA_PG_NO_INSTALL === '1')
    return { ok: false, action: 'none', reason: `${why}; STRATA_PG_NO_INSTALL=1` };
  if (!root)
    return {
      ok: false,
      action: 'none',
      reason: `${why}; not root, so not installing (apt-get install ${PACKAGES.join(' ')})`,
    };
  if (!findInPath('apt-get')) return { ok: false, action: 'none', reason: `${why}; no apt-get on this machine` };

  const r = install();
  if (!r.ok) return { ok: false, action: 'install-failed', reason: `${why}; ${r.detail}` };
  const still = missingTools();
  if (still.length > 0)
    return { ok: false, action: 'install-failed', reason: `${r.detail}, but ${still.join(', ')} still missing` };
  if (!postgresUserExists())
    return { ok: false, action: 'installed', reason: `${r.detail}, but no postgres OS user exists` };
  return { ok: true, action: 'installed', reason: r.detail };
}

function main() {
  let result;
  try {
    result = ensure();
  } catch (e) {
    result = {
      ok: false,
      action: 'error',
      reason: `ensure-postgres failed: ${e && e.message ? e.message : String(e)}`,
    };
  }
  const status = { ...result, binDir: BIN_DIR, at: new Date().toISOString() };
  try {
    fs.writeFileSync(STATUS_FILE, `${JSON.stringify(status)}\n`);
  } catch {
    // The helper re-derives availability itself; the file only adds the install's reason.
  }
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(status)}\n`);
  else
    process.stdout.write(
      `ensure-postgres: ${result.ok ? '' : 'unavailable, PostgreSQL tests will be skipped: '}${result.reason}\n`,
    );
}

main();
