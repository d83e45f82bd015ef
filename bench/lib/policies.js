'use strict';
/**
 * Cache-policy simulators over a trace of dense object ids (Int32Array, ids in [0, universe)).
 * Each returns the number of hits; capacity is in objects (8 KB blocks for the engine).
 *
 *   clock   lib/core/ts/page_cache.ts's policy exactly (and native/page_cache.cc's): never-used slots are
 *           taken first in index order; a hit raises the slot's usage count, saturating at 5; a
 *           fill sets it to 1; to evict, the hand visits slots in order, a slot at 0 is the victim
 *           (the hand stops just past it), any other slot loses one point. (The engine skips
 *           pinned slots; a trace has none.) bench/workloads/w6_policy.js checks this simulator
 *           against both real caches on a trace prefix.
 *   lru     least recently used (doubly linked list, relink on every hit).
 *   min     Belady's MIN, offline: on a miss with a full cache evict the block whose next use is
 *           farthest away (demand paging: every missed block is admitted).
 *   sieve   SIEVE (Zhang et al., NSDI '24): FIFO + visited bit + a hand moving from the oldest
 *           towards the newest, clearing bits, evicting the first unvisited object in place.
 *   s3fifo  S3-FIFO (Yang et al., SOSP '23): small FIFO S (⌊capacity / 10⌋, at least 1), main
 *           FIFO M (the rest), ghost G of the last |M| keys evicted from S; 2-bit frequency; S's
 *           tail moves to M if it was hit while in S, else its key goes to G; a miss found in G
 *           enters M; M reinserts objects with frequency > 0, decrementing it. This is the
 *           engine's pageCachePolicy 's3fifo' exactly (lib/core/ts/page_cache.ts spells out the rules and
 *           what pins change; a trace has none); w6_policy.js replays it against both real caches.
 *   adaptiveS3fifo  the engine's pageCachePolicy 'adaptive-s3fifo' exactly: S3-FIFO whose small
 *           queue's share p adapts as ARC's target does. Two ghosts of `capacity` keys each: GS (keys
 *           evicted from S without promotion) and GM (keys evicted from M). A miss found in GS grows
 *           p by max(1, |GM| / (|GS| + 1)), one found in GM shrinks it by max(1, |GS| / (|GM| + 1))
 *           (both counted after the key leaves its ghost; p stays in [1, capacity − 1]); either way
 *           the key enters M. S's share is ⌊p⌋ and M's the rest; S's head is promoted only if it was
 *           hit at least ADAPTIVE_PROMOTE_FREQUENCY times while in S. Hits cost what S3-FIFO's cost
 *           (a frequency bump, no list relinking).
 *   arc     ARC (Megiddo & Modha, FAST '03, Fig. 4) as the paper states it, the reference the
 *           adaptive policy is measured against: T1/T2 LRU lists, ghosts B1/B2, target p adapted
 *           by δ = max(1, |B2|/|B1|) on a B1 hit and max(1, |B1|/|B2|) on a B2 hit (real-valued).
 * All are O(1) per request (MIN: O(log n)) on typed arrays, so multi-million-request traces take
 * about a second per policy and size.
 */

const MAX_USAGE_COUNT = 5; // lib/core/ts/page_cache.ts MAX_USAGE_COUNT
const MAX_S3FIFO_FREQUENCY = 3; // lib/core/ts/page_cache.ts MAX_S3FIFO_FREQUENCY
const ADAPTIVE_PROMOTE_FREQUENCY = 2; // lib/core/ts/page_cache.ts ADAPTIVE_PROMOTE_FREQUENCY

function clock(trace, capacity, universe) {
  const slotKey = new Int32Array(capacity);
  const usage = new Uint8Array(capacity);
  const slotOf = new Int32Array(universe).fill(-1);
  let used = 0;
  let hand = 0;
  let hits = 0;
  for (let i = 0; i < trace.length; i++) {
    const x = trace[i];
    let s = slotOf[x];
    if (s >= 0) {
      if (usage[s] < MAX_USAGE_COUNT) usage[s]++;
      hits++;
      continue;
    }
    if (used < capacity) {
      s = used++;
    } else {
      for (;;) {
        s = hand;
        hand = s + 1 === capacity ? 0 : s + 1;
        if (usage[s] === 0) break;
        usage[s]--;
      }
      slotOf[slotKey[s]] = -1;
    }
    slotKey[s] = x;
    usage[s] = 1;
    slotOf[x] = s;
  }
  return hits;
}

function lru(trace, capacity, universe) {
  // Doubly linked list over ids; head = most recent. -1 = none.
  const prev = new Int32Array(universe).fill(-1);
  const next = new Int32Array(universe).fill(-1);
  const inCache = new Uint8Array(universe);
  let head = -1;
  let tail = -1;
  let size = 0;
  let hits = 0;
  const unlink = (x) => {
    const p = prev[x];
    const n = next[x];
    if (p >= 0) next[p] = n; else head = n;
    if (n >= 0) prev[n] = p; else tail = p;
  };
  const pushHead = (x) => {
    prev[x] = -1;
    next[x] = head;
    if (head >= 0) prev[head] = x; else tail = x;
    head = x;
  };
  for (let i = 0; i < trace.length; i++) {
    const x = trace[i];
    if (inCache[x]) {
      hits++;
      if (head !== x) {
        unlink(x);
        pushHead(x);
      }
      continue;
    }
    if (size === capacity) {
      const victim = tail;
      unlink(victim);
      inCache[victim] = 0;
      size--;
    }
    pushHead(x);
    inCache[x] = 1;
    size++;
  }
  return hits;
}

/** Belady's MIN with a lazy max-heap of (next use, id); stale heap entries are skipped on pop. */
function min(trace, capacity, universe) {
  const n = trace.length;
  const nextUse = new Int32Array(n);
  const last = new Int32Array(universe).fill(0x7fffffff);
  for (let i = n - 1; i >= 0; i--) {
    nextUse[i] = last[trace[i]];
    last[trace[i]] = i;
  }
  const current = new Int32Array(universe).fill(-1); // next use of a cached id, -1 if not cached
  // Max-heap on next use, ties broken by id; at most one push per request.
  const hNext = new Int32Array(n + 1);
  const hId = new Int32Array(n + 1);
  let hSize = 0;
  const push = (nu, id) => {
    let j = hSize++;
    while (j > 0) {
      const p = (j - 1) >> 1;
      if (hNext[p] > nu || (hNext[p] === nu && hId[p] >= id)) break;
      hNext[j] = hNext[p]; hId[j] = hId[p];
      j = p;
    }
    hNext[j] = nu; hId[j] = id;
  };
  const pop = () => {
    const topId = hId[0];
    const nu = hNext[--hSize];
    const id = hId[hSize];
    let j = 0;
    for (;;) {
      let c = 2 * j + 1;
      if (c >= hSize) break;
      if (c + 1 < hSize && (hNext[c + 1] > hNext[c] || (hNext[c + 1] === hNext[c] && hId[c + 1] > hId[c]))) c++;
      if (hNext[c] < nu || (hNext[c] === nu && hId[c] <= id)) break;
      hNext[j] = hNext[c]; hId[j] = hId[c];
      j = c;
    }
    hNext[j] = nu; hId[j] = id;
    return topId;
  };
  let size = 0;
  let hits = 0;
  for (let i = 0; i < n; i++) {
    const x = trace[i];
    if (current[x] >= 0) {
      hits++;
    } else {
      if (size === capacity) {
        for (;;) {
          const nu = hNext[0];
          const id = pop();
          if (current[id] === nu) {
            current[id] = -1;
            size--;
            break;
          }
        }
      }
      size++;
    }
    current[x] = nextUse[i];
    push(nextUse[i], x);
  }
  return hits;
}

function sieve(trace, capacity, universe) {
  // List: head = newest; `older`/`newer` links. The hand moves from the tail (oldest) to newer.
  const newer = new Int32Array(universe).fill(-1);
  const older = new Int32Array(universe).fill(-1);
  const visited = new Uint8Array(universe);
  const inCache = new Uint8Array(universe);
  let head = -1;
  let tail = -1;
  let hand = -1;
  let size = 0;
  let hits = 0;
  for (let i = 0; i < trace.length; i++) {
    const x = trace[i];
    if (inCache[x]) {
      visited[x] = 1;
      hits++;
      continue;
    }
    if (size === capacity) {
      let o = hand >= 0 ? hand : tail;
      while (visited[o]) {
        visited[o] = 0;
        o = newer[o] >= 0 ? newer[o] : tail;
      }
      hand = newer[o];
      // unlink o
      const nw = newer[o];
      const od = older[o];
      if (nw >= 0) older[nw] = od; else head = od;
      if (od >= 0) newer[od] = nw; else tail = nw;
      inCache[o] = 0;
      size--;
    }
    // insert x at head
    older[x] = head;
    newer[x] = -1;
    if (head >= 0) newer[head] = x; else tail = x;
    head = x;
    visited[x] = 0;
    inCache[x] = 1;
    size++;
  }
  return hits;
}

/** A FIFO of ids in a ring buffer: push at the back, pop from the front. */
class Fifo {
  constructor(cap) {
    this.buf = new Int32Array(cap + 1);
    this.head = 0;
    this.len = 0;
  }
  push(x) {
    this.buf[(this.head + this.len) % this.buf.length] = x;
    this.len++;
  }
  pop() {
    const x = this.buf[this.head];
    this.head = (this.head + 1) % this.buf.length;
    this.len--;
    return x;
  }
}

function s3fifo(trace, capacity, universe) {
  const smallCap = Math.max(1, Math.floor(capacity / 10)); // lib/core/ts/page_cache.ts SMALL_QUEUE_DIVISOR
  const mainCap = capacity - smallCap;
  const ghostCap = Math.max(1, mainCap);
  const S = new Fifo(capacity);
  const M = new Fifo(capacity);
  const where = new Uint8Array(universe); // 0 absent, 1 in S, 2 in M
  const freq = new Uint8Array(universe);
  // Ghost membership by insertion stamp: id is in G if it was among the last ghostCap keys put there.
  const ghostStamp = new Float64Array(universe).fill(-Infinity);
  let ghostCount = 0;
  let hits = 0;
  const inGhost = (x) => ghostStamp[x] > ghostCount - ghostCap;
  const evictMain = () => {
    for (;;) {
      const t = M.pop();
      if (freq[t] > 0) {
        freq[t]--;
        M.push(t);
      } else {
        where[t] = 0;
        return;
      }
    }
  };
  const evictSmall = () => {
    const t = S.pop();
    if (freq[t] > 0) {
      // Keeps its frequency, as in the paper's pseudocode: M may reinsert it once more.
      where[t] = 2;
      M.push(t);
      if (M.len > mainCap) evictMain();
    } else {
      where[t] = 0;
      ghostStamp[t] = ++ghostCount;
    }
  };
  for (let i = 0; i < trace.length; i++) {
    const x = trace[i];
    if (where[x] !== 0) {
      if (freq[x] < MAX_S3FIFO_FREQUENCY) freq[x]++;
      hits++;
      continue;
    }
    // Make room: S when it is over its share (or M is empty), else M.
    while (S.len + M.len >= capacity) {
      if (S.len >= smallCap || M.len === 0) evictSmall();
      else evictMain();
    }
    freq[x] = 0;
    if (inGhost(x)) {
      ghostStamp[x] = -Infinity;
      where[x] = 2;
      M.push(x);
    } else {
      where[x] = 1;
      S.push(x);
    }
  }
  return hits;
}

/** A ghost of at most `cap` keys, oldest forgotten first; `live` counts the keys it remembers. */
class Ghost {
  constructor(cap, universe) {
    this.cap = cap;
    this.ring = new Int32Array(cap);
    this.stampOf = new Float64Array(universe); // 0: not remembered
    this.stamp = 0;
    this.live = 0;
  }
  add(x) {
    const st = ++this.stamp;
    const cell = st % this.cap;
    if (st > this.cap) {
      const old = this.ring[cell];
      if (this.stampOf[old] === st - this.cap) { this.stampOf[old] = 0; this.live--; }
    }
    this.ring[cell] = x;
    if (this.stampOf[x] === 0) this.live++;
    this.stampOf[x] = st;
  }
  /** Forgets x; whether it was remembered. */
  take(x) {
    if (this.stampOf[x] === 0) return false;
    this.stampOf[x] = 0;
    this.live--;
    return true;
  }
}

function adaptiveS3fifo(trace, capacity, universe) {
  let p = Math.max(1, Math.floor(capacity / 10));
  const S = new Fifo(capacity);
  const M = new Fifo(capacity);
  const where = new Uint8Array(universe); // 0 absent, 1 in S, 2 in M
  const freq = new Uint8Array(universe);
  const gs = new Ghost(capacity, universe);
  const gm = new Ghost(capacity, universe);
  let hits = 0;
  const evictMain = () => {
    for (;;) {
      const t = M.pop();
      if (freq[t] > 0) {
        freq[t]--;
        M.push(t);
      } else {
        where[t] = 0;
        gm.add(t);
        return true;
      }
    }
  };
  const evictSmall = () => {
    const t = S.pop();
    if (freq[t] >= ADAPTIVE_PROMOTE_FREQUENCY) {
      where[t] = 2;
      M.push(t);
      return M.len > capacity - Math.floor(p) ? evictMain() : false;
    }
    where[t] = 0;
    gs.add(t);
    return true;
  };
  for (let i = 0; i < trace.length; i++) {
    const x = trace[i];
    if (where[x] !== 0) {
      if (freq[x] < MAX_S3FIFO_FREQUENCY) freq[x]++;
      hits++;
      continue;
    }
    if (S.len + M.len >= capacity) {
      let freed = false;
      while (!freed) freed = S.len >= Math.floor(p) || M.len === 0 ? evictSmall() : evictMain();
    }
    freq[x] = 0;
    if (gs.take(x)) {
      p = Math.min(capacity - 1, p + Math.max(1, gm.live / (gs.live + 1)));
      where[x] = 2;
      M.push(x);
    } else if (gm.take(x)) {
      p = Math.max(1, p - Math.max(1, gs.live / (gm.live + 1)));
      where[x] = 2;
      M.push(x);
    } else {
      where[x] = 1;
      S.push(x);
    }
  }
  return hits;
}

/** ARC's four doubly linked lists over ids: 1 = T1, 2 = T2, 3 = B1, 4 = B2; head = most recent. */
function arc(trace, c, universe) {
  const prev = new Int32Array(universe).fill(-1);
  const next = new Int32Array(universe).fill(-1);
  const where = new Uint8Array(universe);
  const head = [-1, -1, -1, -1, -1];
  const tail = [-1, -1, -1, -1, -1];
  const size = [0, 0, 0, 0, 0];
  const unlink = (x) => {
    const l = where[x];
    const pv = prev[x];
    const nx = next[x];
    if (pv >= 0) next[pv] = nx; else head[l] = nx;
    if (nx >= 0) prev[nx] = pv; else tail[l] = pv;
    size[l]--;
    where[x] = 0;
  };
  const pushHead = (x, l) => {
    prev[x] = -1;
    next[x] = head[l];
    if (head[l] >= 0) prev[head[l]] = x; else tail[l] = x;
    head[l] = x;
    size[l]++;
    where[x] = l;
  };
  const moveLru = (from, to) => { const v = tail[from]; unlink(v); pushHead(v, to); };
  let p = 0;
  let hits = 0;
  // REPLACE(x, p): T1's LRU to B1 if T1 exceeds p (or equals it on a B2 hit), else T2's LRU to B2.
  const replace = (inB2) => {
    if (size[1] > 0 && (size[1] > p || (inB2 && size[1] === p))) moveLru(1, 3);
    else moveLru(2, 4);
  };
  for (let i = 0; i < trace.length; i++) {
    const x = trace[i];
    const w = where[x];
    if (w === 1 || w === 2) { // case I
      hits++;
      unlink(x);
      pushHead(x, 2);
    } else if (w === 3) { // case II
      p = Math.min(c, p + Math.max(1, size[4] / size[3]));
      replace(false);
      unlink(x);
      pushHead(x, 2);
    } else if (w === 4) { // case III
      p = Math.max(0, p - Math.max(1, size[3] / size[4]));
      replace(true);
      unlink(x);
      pushHead(x, 2);
    } else { // case IV
      const l1 = size[1] + size[3];
      if (l1 === c) {
        if (size[1] < c) { unlink(tail[3]); replace(false); } else unlink(tail[1]);
      } else if (l1 + size[2] + size[4] >= c) {
        if (l1 + size[2] + size[4] === 2 * c) unlink(tail[4]);
        replace(false);
      }
      pushHead(x, 1);
    }
  }
  return hits;
}

const POLICIES = { clock, lru, min, sieve, s3fifo, adaptiveS3fifo, arc };

module.exports = { POLICIES, clock, lru, min, sieve, s3fifo, adaptiveS3fifo, arc, MAX_USAGE_COUNT, MAX_S3FIFO_FREQUENCY, ADAPTIVE_PROMOTE_FREQUENCY };
