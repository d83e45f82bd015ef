/**
 * The background lane for the TS core's worker threads, twin of native/background_thread.{h,cc}:
 * a counting semaphore shared by every thread of the process that computes background work, so at
 * most `slots` pieces compute at once and, with the default of one fewer than the CPUs, a CPU is
 * free when the event loop wakes.
 *
 * There is one lane per process. Once the addon has loaded (native.ts calls useNativeLane) it is
 * the addon's, which the native core's companion threads and the compression worker already use,
 * and a worker enters it through the addon; where the addon does not load it is this file's, kept
 * in a SharedArrayBuffer the workers get at their start. Only worker threads enter: a full lane
 * blocks the thread that enters it (Atomics.wait), which the event loop must never do.
 */

import * as os from 'node:os';

/** Most slots setBackgroundThreads accepts (kMaxBackgroundThreads in native/addon.cc). */
export const MAX_BACKGROUND_THREADS = 1024;

/** Int32 fields of the lane's shared memory. */
const SLOTS = 0;
const BUSY = 1;
const MOST_BUSY = 2;
/** Bumped at every Leave and slot change: what a waiting thread sleeps on, so no wakeup is lost. */
const CHANGES = 3;
const FIELDS = 4;

export interface LaneStats {
  slots: number;
  busy: number;
  mostBusy: number;
}

export class BackgroundLane {
  readonly shared: SharedArrayBuffer;
  private readonly a: Int32Array;

  /** A new lane of `slots`, or the lane another thread made (its `shared`). */
  constructor(from: SharedArrayBuffer | number) {
    if (typeof from === 'number') {
      this.shared = new SharedArrayBuffer(FIELDS * Int32Array.BYTES_PER_ELEMENT);
      this.a = new Int32Array(this.shared);
      this.a[SLOTS] = from;
    } else {
      this.shared = from;
      this.a = new Int32Array(from);
    }
  }

  /** Blocks this thread until a slot is free, then takes it. Worker threads only. */
  enter(): void {
    for (;;) {
      const seen = Atomics.load(this.a, CHANGES);
      if (this.tryEnter()) return;
      Atomics.wait(this.a, CHANGES, seen);
    }
  }

  /** Takes a free slot, or returns false at once. */
  tryEnter(): boolean {
    for (;;) {
      const busy = Atomics.load(this.a, BUSY);
      if (busy >= Atomics.load(this.a, SLOTS)) return false;
      if (Atomics.compareExchange(this.a, BUSY, busy, busy + 1) !== busy) continue;
      this.raiseMostBusy(busy + 1);
      return true;
    }
  }

  /** Gives a slot back; false, changing nothing, when none is held. */
  leave(): boolean {
    for (;;) {
      const busy = Atomics.load(this.a, BUSY);
      if (busy === 0) return false;
      if (Atomics.compareExchange(this.a, BUSY, busy, busy - 1) !== busy) continue;
      Atomics.add(this.a, CHANGES, 1);
      Atomics.notify(this.a, CHANGES, 1);
      return true;
    }
  }

  /**
   * Sets the slots (>= 1): raising them admits waiting work at once, lowering them takes effect as
   * slots are given back. Starts mostBusy over from the slots held now. Returns the previous count.
   */
  setSlots(slots: number): number {
    const previous = Atomics.exchange(this.a, SLOTS, slots);
    Atomics.store(this.a, MOST_BUSY, Atomics.load(this.a, BUSY));
    Atomics.add(this.a, CHANGES, 1);
    Atomics.notify(this.a, CHANGES);
    return previous;
  }

  stats(): LaneStats {
    return { slots: Atomics.load(this.a, SLOTS), busy: Atomics.load(this.a, BUSY), mostBusy: Atomics.load(this.a, MOST_BUSY) };
  }

  private raiseMostBusy(busy: number): void {
    for (;;) {
      const most = Atomics.load(this.a, MOST_BUSY);
      if (busy <= most || Atomics.compareExchange(this.a, MOST_BUSY, most, busy) === most) return;
    }
  }
}

/** The addon's lane functions, as a worker reaches them. */
interface NativeLane {
  enterBackgroundLane(): void;
  leaveBackgroundLane(): void;
}

/**
 * Which lane a worker's piece of work enters: the addon's (its file, to require on the worker's
 * thread) or, as '', the TS lane the worker was given at its start.
 */
export type LaneChoice = string;

/**
 * The lane's starting slots: STRATA_BACKGROUND_THREADS when it holds a whole number from 1 to
 * MAX_BACKGROUND_THREADS (as UV_THREADPOOL_SIZE sizes libuv's pool), else one fewer than the CPUs
 * this process may run on, at least 1, so a CPU is free when the event loop wakes.
 */
export function defaultBackgroundThreads(env: NodeJS.ProcessEnv = process.env): number {
  const asked = Number(env.STRATA_BACKGROUND_THREADS);
  if (Number.isInteger(asked) && asked >= 1 && asked <= MAX_BACKGROUND_THREADS) return asked;
  return Math.max(1, os.availableParallelism() - 1);
}

/**
 * This process's TS lane. Its slots are the count setBackgroundThreads gave, whichever lane is in
 * use, so the addon's lane starts with them when it loads.
 */
export const processLane = new BackgroundLane(defaultBackgroundThreads());
let nativeLaneFile = '';
let nativeLeave: (() => void) | null = null;

/**
 * Called by native.ts once the addon has loaded: later work enters the addon's lane, and `leave`
 * gives back a slot a worker that died held in it.
 */
export function useNativeLane(addonFile: string, leave: (() => void) | null = nativeLeave): void {
  nativeLaneFile = addonFile;
  nativeLeave = leave;
}

/** The lane work sent to a worker now should enter. */
export function laneChoice(): LaneChoice {
  return nativeLaneFile;
}

/** What a worker's held cell says it holds: nothing, a slot of the TS lane, one of the addon's. */
const HELD_NONE = 0;
const HELD_TS = 1;
const HELD_NATIVE = 2;

/**
 * A worker's held cell, shared with it at its start: the main thread reads it when the worker is
 * gone (it crashed, or was terminated) to give back the slot it died holding, which would
 * otherwise stall every later piece of background work in the process.
 */
export function newHeldCell(): SharedArrayBuffer {
  return new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
}

/** The worker with this held cell is gone: give back the slot it held, if any. */
export function giveBackHeld(cell: SharedArrayBuffer): void {
  const held = Atomics.exchange(new Int32Array(cell), 0, HELD_NONE);
  if (held === HELD_TS) processLane.leave();
  else if (held === HELD_NATIVE) nativeLeave?.();
}

/**
 * A worker's side: enters the chosen lane around a piece of work, noting in its held cell which
 * lane it holds a slot of. (Terminated between entering and the note, a worker would still leak
 * its slot; termination takes effect only where JS checks for interrupts, so the window is a few
 * instructions wide.)
 */
export class LaneEntry {
  private readonly ts: BackgroundLane;
  private readonly held: Int32Array;
  private addonFile = '';
  private addon: NativeLane | null = null;

  constructor(shared: SharedArrayBuffer, heldCell: SharedArrayBuffer) {
    this.ts = new BackgroundLane(shared);
    this.held = new Int32Array(heldCell);
  }

  /** Blocks until a slot of the chosen lane is free; returns what gives it back. */
  enter(choice: LaneChoice): () => void {
    const native = this.nativeLane(choice);
    if (native !== null) {
      native.enterBackgroundLane();
      Atomics.store(this.held, 0, HELD_NATIVE);
      return () => {
        Atomics.store(this.held, 0, HELD_NONE);
        native.leaveBackgroundLane();
      };
    }
    this.ts.enter();
    Atomics.store(this.held, 0, HELD_TS);
    return () => {
      Atomics.store(this.held, 0, HELD_NONE);
      this.ts.leave();
    };
  }

  /** The addon's lane on this thread; null (the TS lane, then) where it does not load here. */
  private nativeLane(file: string): NativeLane | null {
    if (file === '') return null;
    if (file !== this.addonFile) {
      this.addonFile = file;
      try {
        const b = require(file) as Partial<NativeLane> | null;
        this.addon = b !== null && typeof b.enterBackgroundLane === 'function' && typeof b.leaveBackgroundLane === 'function' ? (b as NativeLane) : null;
      } catch {
        this.addon = null;
      }
    }
    return this.addon;
  }
}
