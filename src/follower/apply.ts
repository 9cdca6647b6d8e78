// Applies Litestream's LTX files to a follower's local copy of the database, in place, while this process's
// read-only connections keep reading it.
//
// Why not Litestream's own `restore -f` (replica.go applyLTXFile): besides its polling cost, it changes the bytes
// SQLite looks at to drop a reader's page cache (24-27, the file change counter, randomized) only when page 1 is in
// the file. The writer runs in WAL mode, where SQLite writes page 1 only when it changes (page count, freelist,
// schema); an update of a row elsewhere leaves it alone. A reader connection that has a page cached then keeps
// serving the old row: it compares bytes 24-39 of the file at the start of each read transaction and keeps its
// cache if they did not change. Here every apply rewrites page 1 with a new change counter (test/follower-ltx.test.ts
// records the stale reads without it).
//
// Atomicity for readers comes from SQLite's own locks: the applier holds `BEGIN EXCLUSIVE` on a connection of its
// own while it writes (a rollback-journal database: EXCLUSIVE keeps every other connection out, and the PENDING lock
// it holds while waiting keeps new readers from starving it). Readers wait in their busy handler and then see the
// whole file, never part of one. SQLite coordinates connections of one process through its own per-file table, so
// this holds for reader threads; other processes are covered by the same fcntl locks only as long as this process
// never closes another descriptor of the file while connections hold locks (POSIX drops all of a process's locks
// on a file at any close): hence one long-lived descriptor, closed last.
//
// Checksums. ltx's rolling checksum of a database is ChecksumFlag | XOR of checksumPage(pgno, page) over every page
// but the lock page. Litestream 0.5.18 writes no pre/post-apply checksums (every file has the no-checksum flag), so
// there is no writer-side value to compare with: the checksum kept here is the follower's own, and what it can prove
// is that the copy on disk is the copy the applier last left (a resume after a restart compares it with the file),
// and, against `litestream restore` of the same TXID, that the two hold the same database. For that it must be
// computable from the local file alone, so page 1 is checksummed *normalized*: bytes 18-19 (journal mode) and 24-27 /
// 92-95 (change counter, version-valid-for) zeroed. Those are exactly the bytes the follower rewrites, and they hold
// no data (the writer's own counter is not recoverable once we overwrite it). Everything else of page 1 (page count,
// freelist, schema cookie, ...) is covered. A file that does carry checksums (not Litestream 0.5.18) has them in
// the writer's page-1 form, which a copy that rewrites page 1 cannot reproduce: apply() does not compare them.
//
// Crash safety: page images are idempotent, so applying a file again over a copy left half-written by a crash gives
// the same result. The caller records the applied TXID (and `checksum`) after apply() returns (the pages are synced
// by then) and never before; after a crash it either re-applies from the recorded TXID + 1 with the checksum of the
// file as it is (checksumOfFile), or, if it cannot tell a torn apply from damage, restores.
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { checksumPage, CHECKSUM_FLAG, lockPgno, type LtxFile } from '../replication/ltx.js';

/** The file does not continue the copy (another page size, or another TXID than the next): restore instead. */
export class ChainMismatch extends Error {
  override name = 'ChainMismatch';
}

/** The copy on disk is not what its checksum says: it diverged (or an apply was torn); restore. */
export class ChecksumMismatch extends Error {
  override name = 'ChecksumMismatch';
}

const SQLITE_MAGIC = 'SQLite format 3\0';
// Database header offsets (sqlite.org/fileformat2.html#the_database_header).
const WRITE_VERSION = 18; // 1 = rollback journal, 2 = WAL; 19 is the read version
const CHANGE_COUNTER = 24;
const PAGE_COUNT = 28;
const VERSION_VALID_FOR = 92;

/** ltx's checksumPage, with page 1's follower-local bytes zeroed (see the top of this file). */
export function normalizedChecksum(pgno: number, page: Uint8Array): bigint {
  if (pgno !== 1) return checksumPage(pgno, page);
  const p = Buffer.from(page);
  p.fill(0, WRITE_VERSION, WRITE_VERSION + 2);
  p.fill(0, CHANGE_COUNTER, CHANGE_COUNTER + 4);
  p.fill(0, VERSION_VALID_FOR, VERSION_VALID_FOR + 4);
  return checksumPage(1, p);
}

/** The database header's page size; throws unless `fd` is a SQLite database (in WAL mode too, unless `wal`). */
function pageSizeOf(fd: number, what: string, wal = true): number {
  const h = Buffer.alloc(100);
  if (fs.readSync(fd, h, 0, 100, 0) < 100 || h.toString('latin1', 0, 16) !== SQLITE_MAGIC) throw new Error(`${what} is not a SQLite database`);
  if (!wal && h[WRITE_VERSION] === 2) throw new Error(`${what} is in WAL mode: call prepareRestored() before anything opens it`);
  const v = h.readUInt16BE(16);
  return v === 1 ? 65536 : v;
}

/** The follower's rolling checksum of the database in an open file (every page but the lock page; page 1 normalized). */
function checksumOfFd(fd: number, pageSize: number): bigint {
  const size = fs.fstatSync(fd).size;
  if (size % pageSize !== 0) throw new Error(`database size ${size} is not a multiple of its page size ${pageSize}`);
  const lock = lockPgno(pageSize);
  const chunk = Buffer.alloc(pageSize * 256);
  let sum = CHECKSUM_FLAG;
  for (let off = 0; off < size; ) {
    const n = fs.readSync(fd, chunk, 0, Math.min(chunk.length, size - off), off);
    if (n === 0 || n % pageSize !== 0) throw new Error(`short read at ${off}`);
    for (let p = 0; p < n; p += pageSize) {
      const pgno = (off + p) / pageSize + 1;
      if (pgno !== lock) sum = CHECKSUM_FLAG | (sum ^ normalizedChecksum(pgno, chunk.subarray(p, p + pageSize)));
    }
    off += n;
  }
  return sum;
}

/**
 * The follower's rolling checksum of a database file (what PageApplier's `checksum` tracks). It opens and closes a
 * descriptor of its own: with connections open on the file, prefer PageApplier.verify() (see the top of this file).
 */
export function checksumOfFile(dbPath: string): bigint {
  const fd = fs.openSync(dbPath, 'r');
  try {
    return checksumOfFd(fd, pageSizeOf(fd, dbPath));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Prepares a file `litestream restore` just wrote for a follower, before any connection opens it: it carries the
 * writer's WAL-mode header, and a reader opening it would look for (and create) a -wal and -shm of its own. Bytes
 * 18-19 = 1 make it a rollback-journal database. Returns its checksum (see checksumOfFile).
 */
export function prepareRestored(dbPath: string): bigint {
  const fd = fs.openSync(dbPath, 'r+');
  try {
    const pageSize = pageSizeOf(fd, dbPath);
    fs.writeSync(fd, Buffer.from([1, 1]), 0, 2, WRITE_VERSION);
    fs.fsyncSync(fd);
    return checksumOfFd(fd, pageSize);
  } finally {
    fs.closeSync(fd);
  }
}

export interface ApplierOptions {
  /** The copy's checksum now: prepareRestored()'s result, or checksumOfFile() (or a recorded value) on resume. */
  checksum: bigint;
  /** The copy's TXID now: apply() then refuses a file that does not start right after it. Unset: not checked. */
  txid?: bigint;
  /** How long apply() waits for readers to finish their read transactions (and readers wait for it). */
  busyTimeoutMs?: number;
}

export interface ApplyStats {
  /** Pages written (page 1 included). */
  pages: number;
  /** Pages in the database afterwards. */
  commit: number;
  ms: number;
}

export class PageApplier {
  /** The applier's connection: read-write, rollback journal, held for its lock. Reads through it are fine. */
  readonly db: Database.Database;
  private readonly fd: number;
  private readonly pageSize: number;
  private sum: bigint;
  private txid: bigint | undefined;
  private readonly page: Buffer;

  constructor(
    readonly dbPath: string,
    opts: ApplierOptions,
  ) {
    this.fd = fs.openSync(dbPath, 'r+');
    try {
      // From the header, not `PRAGMA journal_mode`: that loads the schema, and a copy torn by a crash mid-apply may
      // not have a readable one until the apply is done again. Nothing here reads through SQLite.
      this.pageSize = pageSizeOf(this.fd, dbPath, false);
      this.db = new Database(dbPath, { fileMustExist: true, timeout: opts.busyTimeoutMs ?? 5000 });
    } catch (err) {
      fs.closeSync(this.fd);
      throw err;
    }
    this.sum = opts.checksum;
    this.txid = opts.txid;
    this.page = Buffer.alloc(this.pageSize);
  }

  /** The copy's rolling checksum (see the top of this file): record it with the TXID after each apply. */
  get checksum(): bigint {
    return this.sum;
  }

  /**
   * Applies one file's pages. Throws ChainMismatch (nothing written) if the file does not continue the copy; SQLite's
   * SQLITE_BUSY if readers kept their read transactions open past the busy timeout (nothing written either).
   */
  apply(file: LtxFile): ApplyStats {
    const t0 = performance.now();
    const h = file.header;
    if (h.pageSize !== this.pageSize) throw new ChainMismatch(`LTX page size ${h.pageSize}, the copy's is ${this.pageSize}`);
    if (this.txid !== undefined && h.minTxid !== this.txid + 1n) {
      throw new ChainMismatch(`LTX file ${h.minTxid.toString(16)}-${h.maxTxid.toString(16)} does not follow the copy's TXID ${this.txid.toString(16)}`);
    }
    const pages = this.locked(() => this.write(file.pages, h.commit, null));
    this.txid = h.maxTxid;
    return { pages, commit: h.commit, ms: performance.now() - t0 };
  }

  /**
   * Replaces the whole copy with another database file (a fresh restore, prepared with prepareRestored) in place, so
   * connections open on the copy stay usable and see the new contents at their next read. `checksum` is the
   * restored file's; it is verified while copying.
   */
  replaceFrom(srcPath: string, checksum: bigint, txid?: bigint): ApplyStats {
    const t0 = performance.now();
    const src = fs.openSync(srcPath, 'r');
    try {
      const pageSize = pageSizeOf(src, srcPath);
      if (pageSize !== this.pageSize) throw new ChainMismatch(`restored page size ${pageSize}, the copy's is ${this.pageSize}: reopen instead`);
      const commit = fs.fstatSync(src).size / pageSize;
      // One page at a time: a restored database can be far larger than what we want in memory.
      const iterate = function* (buf: Buffer) {
        for (let pgno = 1; pgno <= commit; pgno++) {
          if (fs.readSync(src, buf, 0, pageSize, (pgno - 1) * pageSize) !== pageSize) throw new Error(`short read of ${srcPath}`);
          yield { pgno, data: buf };
        }
      };
      const pages = this.locked(() => this.write(iterate(Buffer.alloc(pageSize)), commit, checksum));
      this.txid = txid;
      return { pages, commit, ms: performance.now() - t0 };
    } finally {
      fs.closeSync(src);
    }
  }

  /** Reads the whole copy and compares it with `checksum`: throws ChecksumMismatch if it diverged. */
  verify(): void {
    const found = checksumOfFd(this.fd, this.pageSize);
    if (found !== this.sum) throw new ChecksumMismatch(`the copy's checksum is ${found.toString(16)}, expected ${this.sum.toString(16)}`);
  }

  close(): void {
    if (this.db.open) this.db.close();
    fs.closeSync(this.fd);
  }

  /** Runs `fn` under the exclusive lock: no connection of this process (or another) reads meanwhile. */
  private locked<T>(fn: () => T): T {
    this.db.exec('BEGIN EXCLUSIVE');
    try {
      return fn();
    } finally {
      // Nothing was changed through the connection itself: this writes nothing, it only releases the lock.
      this.db.exec('COMMIT');
    }
  }

  /**
   * Writes `pages` (ascending), then page 1, sets the size to `commit` pages and syncs; keeps the checksum by
   * XOR-ing each overwritten or removed page out and each new one in. `expect`: the checksum the result must have.
   */
  private write(pages: Iterable<{ pgno: number; data: Uint8Array }>, commit: number, expect: bigint | null): number {
    const { fd, pageSize, page } = this;
    const lock = lockPgno(pageSize);
    const before = fs.fstatSync(fd).size / pageSize;
    let sum = this.sum;
    let written = 0;
    let first: Buffer | null = null;
    let grownTo = before; // pages up to here exist; beyond them, extending the file leaves zeros
    for (const p of pages) {
      if (p.pgno === lock || p.pgno > commit) continue; // the lock page holds no data; pages past commit go anyway
      if (p.pgno === 1) {
        first = Buffer.from(p.data); // written last, with the follower's header bytes
        continue;
      }
      const at = (p.pgno - 1) * pageSize;
      if (p.pgno <= before) {
        fs.readSync(fd, page, 0, pageSize, at);
        sum ^= checksumPage(p.pgno, page);
      } else {
        for (let z = grownTo + 1; z < p.pgno; z++) if (z !== lock) sum ^= zeroPageChecksum(z, pageSize);
        grownTo = p.pgno;
      }
      sum ^= checksumPage(p.pgno, p.data);
      fs.writeSync(fd, p.data, 0, pageSize, at);
      written++;
    }
    for (let z = grownTo + 1; z <= commit; z++) if (z !== lock) sum ^= zeroPageChecksum(z, pageSize);
    for (let z = commit + 1; z <= before; z++) {
      if (z === lock) continue;
      fs.readSync(fd, page, 0, pageSize, (z - 1) * pageSize);
      sum ^= checksumPage(z, page);
    }

    // Page 1, always: its change counter must move so that every reader drops its cache (see the top).
    fs.readSync(fd, page, 0, pageSize, 0);
    sum ^= normalizedChecksum(1, page);
    const next = first ?? Buffer.from(page);
    const counter = (page.readUInt32BE(CHANGE_COUNTER) + 1) >>> 0;
    next[WRITE_VERSION] = 1;
    next[WRITE_VERSION + 1] = 1;
    next.writeUInt32BE(counter, CHANGE_COUNTER);
    next.writeUInt32BE(counter, VERSION_VALID_FOR); // equal to the counter: SQLite then trusts the page count below
    next.writeUInt32BE(commit, PAGE_COUNT);
    sum ^= normalizedChecksum(1, next);
    fs.writeSync(fd, next, 0, pageSize, 0);
    written++;

    if (commit !== before) fs.ftruncateSync(fd, commit * pageSize);
    fs.fdatasyncSync(fd);
    sum = CHECKSUM_FLAG | sum;
    if (expect !== null && sum !== expect) {
      this.sum = sum;
      throw new ChecksumMismatch(`after copying, the checksum is ${sum.toString(16)}, expected ${expect.toString(16)}`);
    }
    this.sum = sum;
    return written;
  }
}

/** Pages that extending the file created (zeros) count in ltx's checksum too, as `litestream restore` writes them. */
function zeroPageChecksum(pgno: number, pageSize: number): bigint {
  return checksumPage(pgno, new Uint8Array(pageSize));
}
