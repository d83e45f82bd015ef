'use strict';
/**
 * Peak resident memory of this process while some work runs: process.memoryUsage.rss() sampled on
 * an interval, plus the kernel's own high-water mark (VmHWM in /proc/self/status), which also
 * catches peaks between samples. Used by scripts/resource-limits.js and test/resource_limits.test.ts.
 */
const fs = require('node:fs');

/** How often RSS is sampled; the kernel's VmHWM covers what falls between samples. */
const SAMPLE_INTERVAL_MS = 50;
const KIB = 1024;

/** The kernel's high-water mark of resident memory in bytes (null where /proc is missing). */
function vmHwmBytes() {
  let status;
  try {
    status = fs.readFileSync('/proc/self/status', 'utf8');
  } catch {
    return null;
  }
  const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
  return m === null ? null : Number(m[1]) * KIB;
}

/**
 * Reset the kernel's high-water mark to the current RSS, so VmHWM measures from now on
 * (writing 5 to /proc/self/clear_refs; false when the kernel refuses).
 */
function resetVmHwm() {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** Number of open file descriptors of this process (null where /proc is missing). */
function openFdCount() {
  try {
    // The directory listing itself holds one descriptor while it is read.
    return fs.readdirSync('/proc/self/fd').length - 1;
  } catch {
    return null;
  }
}

/** Samples RSS on an interval until stop(); the timer does not keep the process alive. */
class RssSampler {
  constructor(intervalMs = SAMPLE_INTERVAL_MS) {
    this.hwmReset = resetVmHwm();
    this.startRss = process.memoryUsage.rss();
    this.peakSampled = this.startRss;
    this.samples = 1;
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample() {
    const rss = process.memoryUsage.rss();
    this.samples++;
    if (rss > this.peakSampled) this.peakSampled = rss;
    return rss;
  }

  /**
   * Stop sampling. `peakRss` is the larger of the sampled peak and VmHWM (when VmHWM could be
   * reset at the start, otherwise it may predate the work and is reported but not used).
   */
  stop() {
    clearInterval(this.timer);
    this.sample();
    const hwm = vmHwmBytes();
    const peakRss = this.hwmReset && hwm !== null ? Math.max(hwm, this.peakSampled) : this.peakSampled;
    return { startRss: this.startRss, peakSampled: this.peakSampled, vmHwm: hwm, hwmReset: this.hwmReset, peakRss, samples: this.samples };
  }
}

/**
 * The memory bound a run must stay under: what the process held before the work, plus the page
 * cache it was given, plus a fixed allowance for everything whose size is set by constants, not
 * by data (write buffers, one open layer's worth of blocks, V8 heap growth between GCs).
 */
function rssBound(startRss, pageCacheBytes, allowanceBytes) {
  return startRss + pageCacheBytes + allowanceBytes;
}

module.exports = { RssSampler, rssBound, vmHwmBytes, resetVmHwm, openFdCount, SAMPLE_INTERVAL_MS };
