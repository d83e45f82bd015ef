'use strict';
/**
 * The calling thread's CPU time, from Linux's /proc/thread-self/schedstat, for the tools that
 * measure what an operation costs the event loop's thread (append_cost.js, worker_round_trip.js).
 */
const fs = require('node:fs');

const SCHEDSTAT = '/proc/thread-self/schedstat';
const NS_PER_MS = 1e6;

/** Whether this system reports per-thread CPU time; if not, the tools print "skipped: why". */
function threadCpuAvailable() {
  return fs.existsSync(SCHEDSTAT);
}

/** CPU time the calling thread has run, in ms. */
function threadCpuMs() {
  return Number(fs.readFileSync(SCHEDSTAT, 'utf8').split(' ')[0]) / NS_PER_MS;
}

const SKIP_NOTE = `skipped: needs Linux ${SCHEDSTAT}`;

module.exports = { SKIP_NOTE, threadCpuAvailable, threadCpuMs };
