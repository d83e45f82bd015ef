'use strict';
/**
 * What a user would build instead of Strata: every page version stored whole under (key, lsn),
 * GetPage@LSN = seek to the greatest lsn ≤ the requested one for that key.
 *   lmdb:   lmdb-js, binary keys (18-byte key ‖ u64 BE lsn) and values, no compression; a reverse
 *           range read of one entry from (key, lsn). Commits are lmdb-js's default (durable).
 *   sqlite: better-sqlite3, `pages(key BLOB, lsn INTEGER, page BLOB, PRIMARY KEY (key, lsn))`
 *           (an ordinary rowid table plus its primary-key index), WAL journal, synchronous=NORMAL,
 *           `… WHERE key = ? AND lsn <= ? ORDER BY lsn DESC LIMIT 1`.
 * Both read into a caller buffer, like Strata's readPage, so the copy is counted the same way.
 */
const fs = require('node:fs');
const path = require('node:path');
const { versionKey } = require('./data');

const KEY_SIZE = 18;

class LmdbStore {
  constructor(dir) {
    const { open } = require('lmdb');
    this.name = 'lmdb';
    this.dir = dir;
    // 64 GiB of address space: the map only reserves it; the file grows with what is written.
    fs.mkdirSync(dir, { recursive: true });
    this.db = open({ path: path.join(dir, 'pages.mdb'), keyEncoding: 'binary', encoding: 'binary', compression: false, mapSize: 64 * 2 ** 30 });
  }

  /** versions: [{ key: Buffer(18), lsn: number, page: Buffer }]; one durable transaction. */
  putBatch(versions) {
    this.db.transactionSync(() => {
      for (const v of versions) this.db.put(versionKey(v.key, v.lsn), v.page);
    });
  }

  /** Page of `key` at the greatest lsn ≤ `lsn` copied into `into`; false if there is none. */
  readInto(key, lsn, into, offset = 0) {
    for (const { key: k, value } of this.db.getRange({ start: versionKey(key, lsn), reverse: true, limit: 1 })) {
      if (k.compare(key, 0, KEY_SIZE, 0, KEY_SIZE) !== 0) return false;
      value.copy(into, offset);
      return true;
    }
    return false;
  }

  async close() {
    await this.db.close();
  }

  /** Bytes the store occupies on disk (allocated blocks) and its files' apparent size. */
  diskUsage() {
    return dirUsage(this.dir);
  }
}

class SqliteStore {
  constructor(dir) {
    const Database = require('better-sqlite3');
    this.name = 'sqlite';
    fs.mkdirSync(dir, { recursive: true });
    this.dir = dir;
    this.db = new Database(path.join(dir, 'pages.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec('CREATE TABLE IF NOT EXISTS pages (key BLOB NOT NULL, lsn INTEGER NOT NULL, page BLOB NOT NULL, PRIMARY KEY (key, lsn))');
    const insert = this.db.prepare('INSERT INTO pages (key, lsn, page) VALUES (?, ?, ?)');
    this.insertMany = this.db.transaction((versions) => {
      for (const v of versions) insert.run(v.key, v.lsn, v.page);
    });
    this.select = this.db.prepare('SELECT page FROM pages WHERE key = ? AND lsn <= ? ORDER BY lsn DESC LIMIT 1').pluck();
  }

  putBatch(versions) {
    this.insertMany(versions);
  }

  readInto(key, lsn, into, offset = 0) {
    const page = this.select.get(key, lsn);
    if (page === undefined) return false;
    page.copy(into, offset);
    return true;
  }

  /** Move the WAL into the database file, so its size is the store's size. */
  checkpoint() {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  async close() {
    this.db.close();
  }

  diskUsage() {
    return dirUsage(this.dir);
  }
}

/** Allocated bytes (st_blocks × 512: what the files really take) and apparent bytes, recursively. */
function dirUsage(dir) {
  let allocated = 0;
  let apparent = 0;
  let files = 0;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const st = fs.statSync(p);
        allocated += st.blocks * 512;
        apparent += st.size;
        files++;
      }
    }
  };
  walk(dir);
  return { allocatedBytes: allocated, apparentBytes: apparent, files };
}

function openBaseline(name, dir) {
  return name === 'lmdb' ? new LmdbStore(dir) : new SqliteStore(dir);
}

const BASELINES = ['lmdb', 'sqlite'];

module.exports = { LmdbStore, SqliteStore, openBaseline, dirUsage, BASELINES };
