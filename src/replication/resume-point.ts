// After a restore, let Litestream continue the replica's chain instead of uploading the whole database again.
//
// Why it re-uploads (litestream 0.5.18): its local position is the newest L0 LTX file in `<meta>/ltx/0/`, and a
// restore leaves nothing there. At start-up `DB.checkDatabaseBehindReplica` (db.go) sees local TXID 0 < replica
// TXID R and downloads the replica's newest L0 file R; its header records the WAL offset and salts of the
// *previous* machine's WAL, so `DB.verify` finds the salts differ ("wal header salt reset") or the last page does
// not match, and `DB.sync` writes a full snapshot as TXID R+1, which the replica uploads (the whole database).
//
// What we do instead: write one LTX file, TXID R+1, that changes no page and whose header says "synced up to the
// start of the WAL that is on this disk now" (WAL offset 32, size 0, that WAL's salts). Litestream then finds its
// local position (R+1) ahead of the replica (R), `verify` passes (offset at the WAL header, salts match), and its
// first sync writes the WAL's frames as R+2: a normal incremental file. The replica uploads R+1 (~140 bytes) and
// R+2. A restore of R..R+2 is the restored database plus every frame written since, as it should be.
//
// It is R+1 and not a rewritten copy of R: Litestream's compactor prefers a local L0 file over the remote one, so a
// local R without R's pages would drop them from the next L1 file.
//
// Sound only if every change made to the file since the restore is in the WAL now on disk, from its first frame:
// nothing checkpointed into the database file (which would also let SQLite restart the WAL). Hence the checks
// below; when one fails we write nothing and Litestream takes its snapshot as before.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { encodeEmptyLtx, txidHex as hex16 } from './ltx.js';

export const WAL_HEADER_SIZE = 32;
const WAL_FRAME_HEADER_SIZE = 24;

/** What identifies the database file as the restore wrote it. Any checkpoint since changes its mtime. */
export interface FileStamp {
  ino: number;
  size: number;
  mtimeNs: bigint;
}

export function stampOf(file: string): FileStamp {
  const st = fs.statSync(file, { bigint: true });
  return { ino: Number(st.ino), size: Number(st.size), mtimeNs: st.mtimeNs };
}

function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs;
}

export type ResumeResult = { written: true; file: string; txid: string; walSalts: [number, number] } | { written: false; reason: string };

/**
 * Writes `<metaDir>/ltx/0/<R+1>-<R+1>.ltx` for a database restored to TXID `restoredTxid` (hex, as litestream prints
 * it), if the database file is still exactly as the restore left it (`stamp`). Call after the application opened
 * (and migrated) the database, with a connection of its own still open, and before `litestream replicate` starts.
 */
export function writeResumePoint(dbPath: string, metaDir: string, restoredTxid: string, stamp: FileStamp): ResumeResult {
  const txid = BigInt(`0x${restoredTxid}`) + 1n;
  const l0Dir = path.join(metaDir, 'ltx', '0');
  if (fs.existsSync(l0Dir) && fs.readdirSync(l0Dir).length > 0) return { written: false, reason: 'litestream already has local state' };
  if (!sameStamp(stampOf(dbPath), stamp)) return { written: false, reason: 'the database file changed since the restore (checkpointed?)' };
  const pageSize = dbPageSize(dbPath);

  // The salts are only fixed once the WAL holds a frame: SQLite draws new ones when it writes the first frame.
  if (walSize(dbPath) < WAL_HEADER_SIZE + WAL_FRAME_HEADER_SIZE + pageSize) bumpLitestreamSeq(dbPath);
  const wal = readWalHeader(dbPath);
  if (!wal) return { written: false, reason: 'no WAL with a valid header next to the database' };
  if (wal.pageSize !== pageSize) return { written: false, reason: `WAL page size ${wal.pageSize} != database page size ${pageSize}` };
  // Again: the write above must not have been checkpointed into the file (it would be if no other connection were open).
  if (!sameStamp(stampOf(dbPath), stamp)) return { written: false, reason: 'the database file changed since the restore (checkpointed?)' };

  const commit = stamp.size / pageSize; // pages in the database as restored: the page count at TXID R
  const file = path.join(l0Dir, `${hex16(txid)}-${hex16(txid)}.ltx`);
  fs.mkdirSync(l0Dir, { recursive: true });
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, encodeEmptyLtx({ pageSize, commit, txid, walSalt1: wal.salt1, walSalt2: wal.salt2, timestampMs: Date.now() }));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  fsyncDir(l0Dir);
  return { written: true, file, txid: hex16(txid), walSalts: [wal.salt1, wal.salt2] };
}

/** The same write Litestream's `ensureWALExists` makes, so the WAL has a committed frame. */
function bumpLitestreamSeq(dbPath: string): void {
  const db = new Database(dbPath, { timeout: 5000 });
  try {
    db.pragma('wal_autocheckpoint = 0');
    db.exec('CREATE TABLE IF NOT EXISTS _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER)');
    db.exec('INSERT INTO _litestream_seq (id, seq) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET seq = seq + 1');
  } finally {
    db.close();
  }
}

function walSize(dbPath: string): number {
  try {
    return fs.statSync(`${dbPath}-wal`).size;
  } catch {
    return 0;
  }
}

function readWalHeader(dbPath: string): { pageSize: number; salt1: number; salt2: number } | null {
  let b: Buffer;
  try {
    b = fs.readFileSync(`${dbPath}-wal`).subarray(0, WAL_HEADER_SIZE);
  } catch {
    return null;
  }
  if (b.length < WAL_HEADER_SIZE) return null;
  const magic = b.readUInt32BE(0);
  if (magic !== 0x377f0682 && magic !== 0x377f0683) return null;
  return { pageSize: b.readUInt32BE(8), salt1: b.readUInt32BE(16), salt2: b.readUInt32BE(20) };
}

function dbPageSize(dbPath: string): number {
  const b = Buffer.alloc(2);
  const fd = fs.openSync(dbPath, 'r');
  try {
    fs.readSync(fd, b, 0, 2, 16);
  } finally {
    fs.closeSync(fd);
  }
  const v = b.readUInt16BE(0);
  return v === 1 ? 65536 : v;
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
