#!/usr/bin/env node
'use strict';
/**
 * Measures what the in-memory layer really costs on the heap per key and per record, for the
 * overhead constants of lib/engine/inmemory_layer.ts (docs/RELIABILITY.md "Resource limits").
 * Fills one InMemoryLayer with KEYS keys × VERSIONS small records (8-byte patches, as the
 * resource-limit campaign writes), the way ingest does, and compares heapUsed + external after a
 * full GC before and after; the heap of the input batches is dropped before the second reading.
 *
 * Usage: node --expose-gc scripts/measure-inmemory-layer.js [keys] [versions]   (after npm run build)
 */
const { InMemoryLayer } = require('../dist/engine/inmemory_layer');
const { checkRecords, IngestScratch } = require('../dist/engine/ingest');

if (typeof global.gc !== 'function') throw new Error('run with node --expose-gc');
const keys = Number(process.argv[2] ?? 100_000);
const versions = Number(process.argv[3] ?? 4);
const BATCH = 2000;
const scratch = new IngestScratch();

function used() {
  for (let i = 0; i < 3; i++) global.gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external; // external includes the slabs (arrayBuffers)
}

function fill(layer, nKeys, nVersions) {
  let lsn = 0n;
  for (let v = 0; v < nVersions; v++) {
    let batch = [];
    for (let i = 0; i < nKeys; i++) {
      lsn += 0x40n;
      const key = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: i };
      const data = Buffer.alloc(8);
      data.writeUInt32BE(v, 0);
      batch.push({ lsn, key, kind: 'patch', offset: 8 + (v % 64) * 8, data });
      if (batch.length === BATCH || i === nKeys - 1) {
        layer.putChecked(checkRecords(batch, lsn - BigInt(batch.length) * 0x40n, 'measure', scratch));
        batch = [];
      }
    }
  }
}

const before = used();
const one = new InMemoryLayer(0n);
fill(one, keys, 1);
const afterFirst = used();
fill(one, keys, 0); // adds nothing; `one` stays reachable through the second reading
const many = new InMemoryLayer(0n);
fill(many, keys, versions);
const afterMany = used();
const perKeyFirst = (afterFirst - before) / keys;
const perFurther = (afterMany - afterFirst - (afterFirst - before)) / (keys * (versions - 1));
const recordBytes = one.bytes / keys;
console.log(JSON.stringify({
  keys, versions,
  heapPerFirstRecordBytes: Math.round(perKeyFirst),
  heapPerFurtherRecordBytes: Math.round(perFurther),
  countedPerFirstRecordBytes: Math.round(recordBytes),
  countedPerFurtherRecordBytes: Math.round((many.bytes - one.bytes) / (keys * (versions - 1))),
  layerBytesCounted: many.bytes, layerHeapBytes: afterMany - afterFirst,
}));
