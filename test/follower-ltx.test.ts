// The follower's two pure pieces (issue 19): the LTX decoder (src/replication/ltx.ts, with its LZ4 block decoder
// src/follower/lz4.ts) and the page applier (src/follower/apply.ts), checked on files the real Litestream 0.5.18
// uploaded to fake-gcs-server from a real writer server, against `litestream restore` of the same TXID.
//
// The page-cache hazard: a reader connection opened before the applies and kept open must read every applied
// change. Run once (2026-12-02) with apply.ts's page-1 rewrite (step d) disabled, so that page 1 was written only when
// the LTX file carried it (what `litestream restore -f` does), the real-replica test failed at the third file, the
// first whose transactions left page 1 alone:
//   AssertionError: after file 2 (0000000000000006): expected 25 to be 26
// the long-lived connection kept serving its cached replica_position page (a fresh connection read 26).
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ChainMismatch, ChecksumMismatch, checksumOfFile, normalizedChecksum, PageApplier, prepareRestored } from '../src/follower/apply.js';
import { lz4BlockDecompress, Lz4Error } from '../src/replication/lz4.js';
import {
  checksumPage,
  crc64iso,
  decodeLtx,
  encodeEmptyLtx,
  encodeLtx,
  lockPgno,
  LTX_FLAG_NO_CHECKSUM,
  LtxError,
  parseTxid,
  txidHex,
  type LtxFile,
} from '../src/replication/ltx.js';
import { LITESTREAM_BIN, missingTools } from './helpers/gcs.js';
import { useReplica } from './helpers/replica.js';
import { req, tempDir } from './helpers/server.js';

const skip = missingTools();
const replicated = { Prefer: 'durability=replicated' };

// --- references -----------------------------------------------------------------------------------------------------

/** The BigInt CRC-64/ISO the resume point used before (correct, slow): the reference for the fast one. */
function crc64Reference(data: Uint8Array): bigint {
  const table: bigint[] = [];
  for (let i = 0; i < 256; i++) {
    let c = BigInt(i);
    for (let j = 0; j < 8; j++) c = c & 1n ? (c >> 1n) ^ 0xd800000000000000n : c >> 1n;
    table.push(c);
  }
  const mask = 0xffffffffffffffffn;
  let crc = mask;
  for (const b of data) crc = table[Number((crc ^ BigInt(b)) & 0xffn)]! ^ (crc >> 8n);
  return crc ^ mask;
}

/** encodeEmptyLtx as resume-point.ts wrote it before it moved (byte for byte). */
function emptyLtxReference(h: { pageSize: number; commit: number; txid: bigint; walSalt1: number; walSalt2: number; timestampMs: number }): Buffer {
  const header = Buffer.alloc(100);
  header.write('LTX1', 0, 'latin1');
  header.writeUInt32BE(2, 4);
  header.writeUInt32BE(h.pageSize, 8);
  header.writeUInt32BE(h.commit, 12);
  header.writeBigUInt64BE(h.txid, 16);
  header.writeBigUInt64BE(h.txid, 24);
  header.writeBigUInt64BE(BigInt(h.timestampMs), 32);
  header.writeBigUInt64BE(32n, 48);
  header.writeUInt32BE(h.walSalt1, 64);
  header.writeUInt32BE(h.walSalt2, 68);
  const pageIndex = Buffer.alloc(9);
  pageIndex.writeBigUInt64BE(1n, 1);
  const body = Buffer.concat([header, Buffer.alloc(6), pageIndex, Buffer.alloc(8)]);
  const sum = Buffer.alloc(8);
  sum.writeBigUInt64BE((1n << 63n) | crc64Reference(body));
  return Buffer.concat([body, sum]);
}

/** A tiny greedy LZ4 block compressor (hash of 4 bytes, the format's end rules), to have vectors we made ourselves. */
function lz4Compress(src: Uint8Array): Uint8Array {
  const out: number[] = [];
  const seen = new Map<number, number>();
  const length = (n: number) => {
    for (; n >= 255; n -= 255) out.push(255);
    out.push(n);
  };
  const sequence = (from: number, to: number, offset: number, match: number) => {
    const lit = to - from;
    out.push((Math.min(lit, 15) << 4) | (offset ? Math.min(match - 4, 15) : 0));
    if (lit >= 15) length(lit - 15);
    for (let k = from; k < to; k++) out.push(src[k]!);
    if (!offset) return;
    out.push(offset & 0xff, offset >>> 8);
    if (match - 4 >= 15) length(match - 4 - 15);
  };
  let anchor = 0;
  for (let i = 0; i + 12 < src.length; ) {
    const key = src[i]! | (src[i + 1]! << 8) | (src[i + 2]! << 16) | (src[i + 3]! << 24);
    const cand = seen.get(key);
    seen.set(key, i);
    if (cand === undefined || i - cand > 65535) {
      i++;
      continue;
    }
    let len = 4;
    while (i + len < src.length - 5 && src[cand + len] === src[i + len]) len++; // the last 5 bytes stay literals
    sequence(anchor, i, i - cand, len);
    i += len;
    anchor = i;
  }
  sequence(anchor, src.length, 0, 0);
  return Uint8Array.from(out);
}

/** A view of `a` that throws on any index outside it: proves the decoder never reads or writes out of bounds. */
function guarded(a: Uint8Array): Uint8Array {
  const check = (prop: string | symbol) => {
    if (typeof prop === 'string' && /^-?\d+$/.test(prop) && (Number(prop) < 0 || Number(prop) >= a.length)) throw new Error(`out of bounds: ${prop}`);
  };
  return new Proxy(a, {
    get(t, prop) {
      check(prop);
      const v = Reflect.get(t, prop, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
    set(t, prop, value) {
      check(prop);
      return Reflect.set(t, prop, value, t);
    },
  });
}

function expectLtxError(fn: () => unknown, code: LtxError['code']): LtxError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(LtxError);
    expect((err as LtxError).code, (err as Error).message).toBe(code);
    return err as LtxError;
  }
  throw new Error(`expected LtxError ${code}`);
}

// --- CRC, encoder, LZ4, decoder --------------------------------------------------------------------------------------

describe('CRC-64/ISO and the LTX encoder', () => {
  it('matches the BigInt reference and Go (crc64.ISO check value) on every tail length, at well over 200 MB/s', () => {
    expect(crc64iso(Buffer.from('123456789')).toString(16)).toBe('b90956c775a41001'); // Go: crc64.Checksum(..., ISO)
    for (const n of [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 100, 4096, 4099]) {
      const d = crypto.randomBytes(n);
      expect(crc64iso(d), `length ${n}`).toBe(crc64Reference(d));
    }
    const page = crypto.randomBytes(4096);
    const withPgno = Buffer.concat([Buffer.from([0, 0, 1, 2]), page]);
    expect(checksumPage(258, page)).toBe((1n << 63n) | crc64Reference(withPgno));

    const big = crypto.randomBytes(16 << 20);
    let best = Infinity;
    for (let round = 0; round < 4; round++) {
      const t0 = performance.now();
      crc64iso(big);
      best = Math.min(best, performance.now() - t0);
    }
    const mbPerS = 16 / (best / 1000);
    console.log(`crc64iso: ${mbPerS.toFixed(0)} MB/s (the BigInt one: ~10 MB/s)`);
    expect(mbPerS).toBeGreaterThan(150);
  });

  it('encodes the empty resume-point file byte for byte as before, and decodes its own files', () => {
    const h = { pageSize: 4096, commit: 123, txid: 0x1234n, walSalt1: 0xdeadbeef, walSalt2: 7, timestampMs: 1_764_000_000_000 };
    const enc = encodeEmptyLtx(h);
    expect(enc.equals(emptyLtxReference(h))).toBe(true);
    const dec = decodeLtx(enc);
    expect(dec.pages).toEqual([]);
    expect(dec.header).toMatchObject({ flags: LTX_FLAG_NO_CHECKSUM, pageSize: 4096, commit: 123, minTxid: 0x1234n, maxTxid: 0x1234n, walOffset: 32n, walSalt1: 0xdeadbeef });

    const pages = [1, 2, 7].map((pgno) => ({ pgno, data: crypto.randomBytes(512) }));
    const file = encodeLtx({ header: { pageSize: 512, commit: 9, minTxid: 5n, maxTxid: 6n, timestamp: 1, walOffset: 0n, walSize: 0n, walSalt1: 0, walSalt2: 0 }, pages });
    expect(decodeLtx(file).pages.map((p) => [p.pgno, Buffer.from(p.data).equals(pages.find((q) => q.pgno === p.pgno)!.data)])).toEqual([
      [1, true],
      [2, true],
      [7, true],
    ]);
    expect(txidHex(0xabn)).toBe('00000000000000ab');
    expect(parseTxid('00000000000000ab')).toBe(0xabn);
    expect(() => parseTxid('ab')).toThrow(LtxError);
    expect(lockPgno(4096)).toBe(262_145);
    expect(lockPgno(65536)).toBe(16_385);
  });
});

describe('LZ4 block decompression', () => {
  const inputs: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['one byte', Uint8Array.of(42)],
    ['random 4 KB (literals only)', crypto.randomBytes(4096)],
    ['zeros 4 KB (one long overlapping match)', new Uint8Array(4096)],
    ['a run with period 3 (overlapping matches)', Uint8Array.from({ length: 5000 }, (_, i) => i % 3)],
    ['text', Buffer.from('the quick brown fox jumps over the lazy dog; '.repeat(200) + 'fin')],
    ['mixed page', Buffer.concat([crypto.randomBytes(300), Buffer.alloc(1000, 7), crypto.randomBytes(300), Buffer.alloc(2496)])],
  ];

  it.each(inputs)('round-trips %s', (_, input) => {
    const block = lz4Compress(input);
    const out = new Uint8Array(input.length);
    expect(lz4BlockDecompress(guarded(block), guarded(out))).toBe(input.length);
    expect(Buffer.from(out).equals(Buffer.from(input))).toBe(true);
  });

  it('throws Lz4Error on malformed input and on output overflow, never touching anything out of bounds', () => {
    const input = Buffer.concat([crypto.randomBytes(200), Buffer.alloc(800, 1), crypto.randomBytes(100)]);
    const block = lz4Compress(input);
    expect(() => lz4BlockDecompress(block, new Uint8Array(input.length - 1))).toThrow(Lz4Error); // overflow
    expect(() => lz4BlockDecompress(Uint8Array.of(0x00, 0x01, 0x00), new Uint8Array(10))).toThrow(/outside the output/); // offset 1 at output 0
    expect(() => lz4BlockDecompress(Uint8Array.of(0x10, 65, 0x00, 0x00), new Uint8Array(10))).toThrow(/outside the output/); // offset 0
    expect(() => lz4BlockDecompress(Uint8Array.of(0xf0, 255), new Uint8Array(10))).toThrow(/truncated literal length/);
    expect(() => lz4BlockDecompress(Uint8Array.of(0x50, 1, 2), new Uint8Array(10))).toThrow(/run past the input/);
    expect(() => lz4BlockDecompress(new Uint8Array(0), new Uint8Array(10))).toThrow(/empty/);
    // Every prefix of a valid block: an Lz4Error, or (cut right after literals) a shorter, valid output.
    for (let cut = 0; cut < block.length; cut++) {
      const out = new Uint8Array(input.length);
      try {
        expect(lz4BlockDecompress(guarded(block.subarray(0, cut)), guarded(out))).toBeLessThan(input.length);
      } catch (err) {
        expect(err, `cut at ${cut}`).toBeInstanceOf(Lz4Error);
      }
    }
    // Random and mutated blocks: only Lz4Error, and nothing written past what the decoder reports.
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 2000 }), fc.boolean(), (noise, size, mutate) => {
        const src = mutate ? Uint8Array.from(block, (b, i) => (i % 7 === noise.length % 7 ? b ^ (noise[i % (noise.length || 1)] ?? 1) : b)) : noise;
        const out = new Uint8Array(size).fill(0xee);
        try {
          const n = lz4BlockDecompress(guarded(src), guarded(out));
          expect(out.subarray(n).every((b) => b === 0xee)).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(Lz4Error);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

/** A small LTX file of real SQLite pages (stored as literal blocks): for the decoder's error cases. */
function sampleLtx(): Buffer {
  const dir = tempDir('ltx-sample-');
  const db = new Database(path.join(dir, 's.db'));
  db.exec('CREATE TABLE t (x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50) INSERT INTO t SELECT randomblob(100) FROM n;');
  db.close();
  const bytes = fs.readFileSync(path.join(dir, 's.db'));
  const pages = [1, 2, 3].map((pgno) => ({ pgno, data: bytes.subarray((pgno - 1) * 4096, pgno * 4096) }));
  return encodeLtx({ header: { pageSize: 4096, commit: bytes.length / 4096, minTxid: 2n, maxTxid: 2n, timestamp: 1, walOffset: 32n, walSize: 0n, walSalt1: 1, walSalt2: 2 }, pages });
}

describe('decodeLtx errors', () => {
  const good = sampleLtx();

  it('a corrupted byte fails the file checksum (header, page data or index alike)', () => {
    decodeLtx(good);
    // The tail: ... index entries, the index's 0, its length (u64), post-apply checksum (u64), file checksum (u64).
    const lastIndexEntryByte = good.length - 24 - 2;
    for (const at of [33 /* timestamp */, 44 /* pre-apply checksum */, 500 /* page 1 data */, lastIndexEntryByte, good.length - 12 /* post-apply */, good.length - 1]) {
      const bad = Buffer.from(good);
      bad[at]! ^= 0x01;
      const err = expectLtxError(() => decodeLtx(bad), 'checksum');
      expect(err.message).toMatch(/checksum mismatch/);
    }
  });

  it('a truncated file says so, wherever it was cut', () => {
    for (const cut of [0, 3, 50, 99, 100, 105, 2000, good.length - 30, good.length - 16, good.length - 1]) {
      const err = expectLtxError(() => decodeLtx(good.subarray(0, cut)), 'truncated');
      expect(err.message).toMatch(/truncated/);
    }
  });

  it('wrong magic, unknown header flags, and the old LZ4-frame page format are refused by name', () => {
    expect(expectLtxError(() => decodeLtx(Buffer.concat([Buffer.from('SQLite format 3\0'), good.subarray(16)])), 'magic').message).toMatch(/not an LTX file/);
    const flags = Buffer.from(good);
    flags.writeUInt32BE(1 | LTX_FLAG_NO_CHECKSUM, 4); // ltx < 0.5 had a compression flag here
    expect(expectLtxError(() => decodeLtx(flags), 'version').message).toMatch(/LTX version 3/);
    const frame = Buffer.from(good);
    frame.writeUInt16BE(0, 104); // page 1's header without the size flag: an LZ4 frame follows in the old format
    expect(expectLtxError(() => decodeLtx(frame), 'old-format').message).toMatch(/older LTX page format/);
    expect(() => decodeLtx(Buffer.concat([good, Buffer.alloc(1)]))).toThrow(LtxError);
  });
});

// --- the applier on local files ------------------------------------------------------------------------------------

/** A WAL-mode database as `litestream restore` leaves one (header bytes 18-19 = 2), with `rows` rows of 300 bytes. */
function walDb(rows: number, pageSize = 4096): string {
  const file = path.join(tempDir('ltx-apply-'), 'app.db');
  const db = new Database(file);
  db.pragma(`page_size = ${pageSize}`);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) ins.run(crypto.randomBytes(150).toString('hex'));
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return file;
}

const headerOf = (file: string) => {
  const b = Buffer.alloc(100);
  const fd = fs.openSync(file, 'r');
  fs.readSync(fd, b, 0, 100, 0);
  fs.closeSync(fd);
  return { journal: [b[18], b[19]], counter: b.readUInt32BE(24), pageCount: b.readUInt32BE(28), validFor: b.readUInt32BE(92) };
};

function ltx(pageSize: number, commit: number, txid: bigint, pages: { pgno: number; data: Uint8Array }[] = []): LtxFile {
  return decodeLtx(encodeLtx({ header: { pageSize, commit, minTxid: txid, maxTxid: txid, timestamp: Date.now(), walOffset: 32n, walSize: 0n, walSalt1: 1, walSalt2: 1 }, pages }));
}

describe('PageApplier on local files', () => {
  it('prepareRestored switches the file to a rollback journal and returns ltx\'s rolling checksum (page 1 normalized)', () => {
    const file = walDb(100);
    expect(headerOf(file).journal).toEqual([2, 2]);
    const sum = prepareRestored(file);
    expect(headerOf(file).journal).toEqual([1, 1]);
    const bytes = fs.readFileSync(file);
    let byHand = 1n << 63n;
    for (let pgno = 1; pgno <= bytes.length / 4096; pgno++) {
      const page = Buffer.from(bytes.subarray((pgno - 1) * 4096, pgno * 4096));
      if (pgno === 1) for (const at of [18, 19, 24, 25, 26, 27, 92, 93, 94, 95]) page[at] = 0;
      byHand = (1n << 63n) | (byHand ^ checksumPage(pgno, page));
    }
    expect(sum).toBe(byHand);
    expect(checksumOfFile(file)).toBe(sum);
    const reader = new Database(file, { readonly: true });
    expect(reader.pragma('journal_mode', { simple: true })).toBe('delete');
    expect(reader.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 100 });
    reader.close();
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
    expect(() => new PageApplier(walDb(1), { checksum: 0n })).toThrow(/WAL mode/);
  });

  it('grows (zero-filled gaps), shrinks and rewrites page 1 every time, keeping the checksum equal to the file', () => {
    const file = walDb(100);
    const start = prepareRestored(file);
    const pages0 = fs.statSync(file).size / 4096;
    const applier = new PageApplier(file, { checksum: start, txid: 10n });
    const before = headerOf(file);

    // Grow by 10 pages, only one of which the file carries: the others are zeros (they count in the checksum).
    const far = crypto.randomBytes(4096);
    let stats = applier.apply(ltx(4096, pages0 + 10, 11n, [{ pgno: pages0 + 5, data: far }]));
    expect(stats).toMatchObject({ pages: 2, commit: pages0 + 10 });
    expect(fs.statSync(file).size).toBe((pages0 + 10) * 4096);
    expect(applier.checksum).toBe(checksumOfFile(file));
    let h = headerOf(file);
    expect(h).toEqual({ journal: [1, 1], counter: before.counter + 1, pageCount: pages0 + 10, validFor: before.counter + 1 });

    // Page 1 from the file (as the writer had it: WAL bytes, its own counter): ours replaces those bytes.
    const page1 = Buffer.from(fs.readFileSync(file).subarray(0, 4096));
    page1[18] = page1[19] = 2;
    page1.writeUInt32BE(7, 24);
    page1.writeUInt32BE(7, 92);
    applier.apply(ltx(4096, pages0 + 10, 12n, [{ pgno: 1, data: page1 }, { pgno: 3, data: crypto.randomBytes(4096) }]));
    h = headerOf(file);
    expect(h).toEqual({ journal: [1, 1], counter: before.counter + 2, pageCount: pages0 + 10, validFor: before.counter + 2 });
    expect(applier.checksum).toBe(checksumOfFile(file));

    // Shrink below the original size: the removed pages leave the checksum.
    stats = applier.apply(ltx(4096, pages0 - 2, 13n));
    expect(stats.pages).toBe(1);
    expect(fs.statSync(file).size).toBe((pages0 - 2) * 4096);
    expect(headerOf(file).pageCount).toBe(pages0 - 2);
    expect(applier.checksum).toBe(checksumOfFile(file));
    applier.verify();

    // Out of chain: another page size, or not the next TXID. Nothing is written.
    const snapshot = fs.readFileSync(file);
    expect(() => applier.apply(ltx(1024, 10, 14n))).toThrow(ChainMismatch);
    expect(() => applier.apply(ltx(4096, pages0, 20n))).toThrow(ChainMismatch);
    expect(fs.readFileSync(file).equals(snapshot)).toBe(true);

    // A change behind the applier's back is found by verify().
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([0x55]), 0, 1, 2 * 4096 + 100);
    fs.closeSync(fd);
    expect(() => applier.verify()).toThrow(ChecksumMismatch);
    applier.close();
  });

  it('replaceFrom puts a whole restored file in place under readers that stay open', () => {
    const file = walDb(50);
    const applier = new PageApplier(file, { checksum: prepareRestored(file) });
    const reader = new Database(file, { readonly: true });
    expect(reader.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 50 });
    const other = walDb(400);
    const sum = prepareRestored(other);
    applier.replaceFrom(other, sum, 99n);
    expect(reader.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 400 });
    expect(applier.checksum).toBe(sum);
    expect(checksumOfFile(file)).toBe(sum);
    expect(() => applier.apply(ltx(4096, 3, 7n))).toThrow(ChainMismatch); // it now follows TXID 99
    expect(() => applier.replaceFrom(other, sum ^ 1n)).toThrow(ChecksumMismatch);
    expect(normalizedChecksum(2, fs.readFileSync(file).subarray(4096, 8192))).toBe(checksumPage(2, fs.readFileSync(other).subarray(4096, 8192)));
    reader.close();
    applier.close();
  });
});

// --- against the real writer, Litestream and the emulated bucket -------------------------------------------------------

/** `litestream restore -json` (the CLI, as an operator or the follower runs it): the file and its TXID. */
function restore(gcsHost: string, url: string, txid?: bigint): { dbPath: string; txid: bigint } {
  const dbPath = path.join(tempDir('follower-restore-'), 'app.db');
  const args = ['restore', '-json', ...(txid === undefined ? [] : ['-txid', txidHex(txid)]), '-o', dbPath, url];
  const r = spawnSync(LITESTREAM_BIN!, args, { env: { ...process.env, STORAGE_EMULATOR_HOST: gcsHost }, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`litestream restore: ${r.stderr || r.stdout}`);
  return { dbPath, txid: parseTxid((JSON.parse(r.stdout) as { txid: string }).txid) };
}

interface State {
  seq: number;
  products: number;
  total: number;
}
const STATE_SQL = 'SELECT (SELECT seq FROM replica_position) AS seq, (SELECT count(*) FROM products) AS products, (SELECT total(price) FROM products) AS total';

/** A fresh connection's view: no cache to go stale. */
function freshState(file: string): State {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(STATE_SQL).get() as State;
  } finally {
    db.close();
  }
}

/** A reader thread with its own read-only connection (SQLite's locks between threads of one process, for real). */
function readerThread(file: string): { send(m: object): void; next(): Promise<any>; stop(): Promise<number> } {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const Database = require(workerData.driver);
    const db = new Database(workerData.file, { readonly: true, fileMustExist: true, timeout: 10000 });
    const read = db.prepare(workerData.sql);
    const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    read.get(); // its page cache is warm, as a serving reader's is
    parentPort.postMessage({ ready: true });
    parentPort.on('message', (m) => {
      if (m.op === 'hold') {
        db.exec('BEGIN');
        parentPort.postMessage({ state: read.get(), at: Date.now() }); // a read transaction: SHARED lock held
        sleep(m.ms);
        db.exec('COMMIT');
        parentPort.postMessage({ releasedAt: Date.now() });
      } else if (m.op === 'read') {
        sleep(m.afterMs);
        const startedAt = Date.now();
        const state = read.get();
        parentPort.postMessage({ state, startedAt, endedAt: Date.now() });
      }
    });`;
  const w = new Worker(code, { eval: true, workerData: { file, sql: STATE_SQL, driver: createRequire(import.meta.url).resolve('better-sqlite3') } });
  const queue: any[] = [];
  const waiting: ((m: any) => void)[] = [];
  w.on('message', (m) => (waiting.length ? waiting.shift()!(m) : queue.push(m)));
  return {
    send: (m) => w.postMessage(m),
    next: () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((resolve) => waiting.push(resolve))),
    stop: () => w.terminate(),
  };
}

/** Page by page, ignoring only what the follower rewrites on page 1 (journal mode, change counter, version-valid-for). */
function samePages(a: Buffer, b: Buffer, pageSize: number): string[] {
  const diffs: string[] = [];
  if (a.length !== b.length) diffs.push(`sizes ${a.length} != ${b.length}`);
  for (let pgno = 1; pgno <= Math.min(a.length, b.length) / pageSize; pgno++) {
    const pa = Buffer.from(a.subarray((pgno - 1) * pageSize, pgno * pageSize));
    const pb = Buffer.from(b.subarray((pgno - 1) * pageSize, pgno * pageSize));
    if (pgno === 1) for (const p of [pa, pb]) for (const at of [18, 19, 24, 25, 26, 27, 92, 93, 94, 95]) p[at] = 0;
    if (!pa.equals(pb)) diffs.push(`page ${pgno}`);
  }
  return diffs;
}

const p50 = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

describe.skipIf(skip)('a follower copy kept current from the level-0 LTX files of a real replica', () => {
  const bucket = 'follower-ltx';
  const url = `gs://${bucket}/db`;
  const replica = useReplica(bucket, { printOutputOnFailure: true });
  const closers: (() => unknown)[] = [];
  afterAll(async () => {
    for (const c of closers.reverse()) await c();
  });

  it('applies every file in order: the copy equals a restore of the same TXID, readers never see a stale or half-applied state', async () => {
    const s = await replica.start({ env: replica.env(url, { WRITER_HEARTBEAT_MS: '0' }) });
    const gcsBase = `http://${replica.gcs.host}`;

    // The writer's history up to the follower's restore.
    expect((await req(s.url, 'POST', '/counters/hot/increment', {}, replicated)).status).toBe(200);
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) ids.push((await req(s.url, 'POST', '/products', { name: `seed-${i}`, price: i, description: 'x'.repeat(500) })).body.id);
    expect((await req(s.url, 'POST', '/counters/hot/increment', {}, replicated)).status).toBe(200);

    const restored = restore(replica.gcs.host, url);
    const copy = restored.dbPath;
    const checksum = prepareRestored(copy);
    const applier = new PageApplier(copy, { checksum, txid: restored.txid });
    closers.push(() => applier.close());
    // Opened before any apply and kept open: the connection whose page cache must never go stale.
    const longLived = new Database(copy, { readonly: true, fileMustExist: true, timeout: 10_000 });
    closers.push(() => longLived.close());
    const readLong = longLived.prepare(STATE_SQL);
    expect(readLong.get()).toEqual(freshState(copy));

    // More history: inserts that grow the file, updates of rows in place, deletes (freed pages), then 110
    // single-row updates each in a file of its own (increments, replicated one by one), which never touch page 1.
    await Promise.all(Array.from({ length: 40 }, (_, i) => req(s.url, 'POST', '/products', { name: `grow-${i}`, price: 100 + i, description: crypto.randomBytes(700).toString('base64') }, replicated)));
    for (const id of ids.slice(0, 8)) expect((await req(s.url, 'PATCH', `/products/${id}`, { price: 1000 + id, stock: 3 }, replicated)).status).toBe(200);
    for (const id of ids.slice(8, 20)) expect((await req(s.url, 'DELETE', `/products/${id}`, undefined, replicated)).status).toBe(204);
    const bookmarks: number[] = [];
    for (let i = 0; i < 110; i++) {
      const r = await req(s.url, 'POST', '/counters/hot/increment', {}, replicated);
      expect(r.status).toBe(200);
      bookmarks.push(Number(r.headers.get('bookmark')));
    }
    expect(bookmarks.every((b, i) => i === 0 || b === bookmarks[i - 1]! + 1)).toBe(true);

    // The level-0 files after the restored TXID, through the bucket's JSON API, in TXID order.
    const names = (await replica.gcs.list(bucket, 'db/ltx/0/'))
      .map((name) => ({ name, min: parseTxid(path.basename(name).slice(0, 16)), max: parseTxid(path.basename(name).slice(17, 33)) }))
      .filter((f) => f.max > restored.txid)
      .sort((a, b) => (a.min < b.min ? -1 : 1));
    const files: { name: string; bytes: Buffer }[] = [];
    for (const f of names) {
      const r = await fetch(`${gcsBase}/storage/v1/b/${bucket}/o/${encodeURIComponent(f.name)}?alt=media`);
      expect(r.status).toBe(200);
      files.push({ name: f.name, bytes: Buffer.from(await r.arrayBuffer()) });
    }
    expect(files.length).toBeGreaterThanOrEqual(110);

    // Apply all but the last (kept for the blocked reader below), each checked as it goes.
    let decodeMs = 0;
    let pageBytes = 0;
    let fileBytes = 0;
    const applyMs: number[] = [];
    const seen: number[] = [];
    let tornCheck = false;
    for (const [i, f] of files.slice(0, -1).entries()) {
      const t0 = performance.now();
      const file = decodeLtx(f.bytes);
      decodeMs += performance.now() - t0;
      fileBytes += f.bytes.length;
      pageBytes += file.pages.length * file.header.pageSize;
      expect(file.header.flags & LTX_FLAG_NO_CHECKSUM, 'Litestream 0.5.18 writes no rolling checksums').toBe(LTX_FLAG_NO_CHECKSUM);
      expect(file.header.minTxid).toBe((i === 0 ? restored.txid : parseTxid(path.basename(files[i - 1]!.name).slice(17, 33))) + 1n);

      // Once, on a file with several pages: a crash half-way through its apply, then the same file again.
      let scratch: string | null = null;
      if (!tornCheck && file.pages.length >= 4) {
        scratch = path.join(tempDir('follower-torn-'), 'copy.db');
        fs.copyFileSync(copy, scratch);
        const fd = fs.openSync(scratch, 'r+');
        // The applier writes page 1 last (with its own header bytes): a crash leaves some of the other pages written.
        const others = file.pages.filter((p) => p.pgno !== 1);
        for (const p of others.slice(0, others.length / 2)) fs.writeSync(fd, p.data, 0, p.data.length, (p.pgno - 1) * file.header.pageSize);
        fs.closeSync(fd);
      }

      applyMs.push(applier.apply(file).ms);
      expect(applier.checksum, `checksum after ${f.name}`).toBe(checksumOfFile(copy));
      const want = freshState(copy);
      const got = readLong.get() as State;
      expect(got.seq, `after file ${i} (${txidHex(file.header.maxTxid)})`).toBe(want.seq);
      expect(got).toEqual(want);
      seen.push(got.seq);

      if (scratch) {
        tornCheck = true;
        const again = new PageApplier(scratch, { checksum: checksumOfFile(scratch) });
        again.apply(file);
        expect(again.checksum).toBe(applier.checksum);
        expect(samePages(fs.readFileSync(scratch), fs.readFileSync(copy), file.header.pageSize)).toEqual([]);
        again.close();
      }
    }
    expect(tornCheck).toBe(true);
    // Every acknowledged bookmark but the last (its file is still to come) was observed by the long-lived reader.
    expect(bookmarks.slice(0, -1).filter((b) => !seen.includes(b))).toEqual([]);

    // The last file, applied while one reader thread holds a read transaction (the apply must wait for it) and a
    // second starts reading meanwhile (it must wait for the apply, then see all of it).
    const last = decodeLtx(files.at(-1)!.bytes);
    const holder = readerThread(copy);
    const late = readerThread(copy);
    closers.push(() => holder.stop(), () => late.stop());
    expect([await holder.next(), await late.next()]).toEqual([{ ready: true }, { ready: true }]);
    const before = freshState(copy);
    holder.send({ op: 'hold', ms: 800 });
    const held = await holder.next();
    late.send({ op: 'read', afterMs: 100 });
    const t0 = Date.now();
    applier.apply(last);
    const t1 = Date.now();
    const released = await holder.next();
    const lateRead = await late.next();
    const after = freshState(copy);
    expect(held.state).toEqual(before);
    expect(after.seq).toBe(bookmarks.at(-1));
    expect(t1, 'the apply ended only after the open read transaction did').toBeGreaterThanOrEqual(released.releasedAt);
    expect(t1 - t0).toBeGreaterThanOrEqual(100);
    expect(lateRead.startedAt, 'the late read started while the apply held its lock').toBeGreaterThanOrEqual(t0);
    expect(lateRead.startedAt).toBeLessThan(t1);
    expect(lateRead.endedAt).toBeGreaterThanOrEqual(t1 - 1);
    expect(lateRead.state, 'the late read saw the whole file applied').toEqual(after);
    expect(readLong.get()).toEqual(after);

    // Against `litestream restore` of the final TXID: the same pages, and the same (normalized) checksum.
    const final = restore(replica.gcs.host, url, last.header.maxTxid);
    expect(final.txid).toBe(last.header.maxTxid);
    const finalBytes = fs.readFileSync(final.dbPath);
    expect(samePages(fs.readFileSync(copy), finalBytes, last.header.pageSize)).toEqual([]);
    expect(prepareRestored(final.dbPath)).toBe(applier.checksum);
    applier.verify();

    // Decoding again, warm (the first pass above includes the JIT's warm-up): the steady rate.
    let warmMs = Infinity;
    for (let round = 0; round < 3; round++) {
      const t = performance.now();
      for (const f of files) decodeLtx(f.bytes);
      warmMs = Math.min(warmMs, performance.now() - t);
    }
    const mb = (n: number) => n / 1e6;
    console.log(
      `follower: ${files.length} files after TXID ${txidHex(restored.txid)} (${mb(fileBytes).toFixed(2)} MB as stored, ${mb(pageBytes).toFixed(2)} MB of pages); ` +
        `decode ${(mb(pageBytes) / (decodeMs / 1000)).toFixed(0)} MB/s of pages cold, ${(mb(pageBytes) / (warmMs / 1000)).toFixed(0)} MB/s warm ` +
        `(${((warmMs / files.length) * 1000).toFixed(0)} us per file); ` +
        `apply p50 ${p50(applyMs).toFixed(2)} ms, max ${Math.max(...applyMs).toFixed(2)} ms per file (fdatasync included); ` +
        `blocked apply ${t1 - t0} ms, late read waited ${lateRead.endedAt - lateRead.startedAt} ms`,
    );
    await s.stop();
  });
});
