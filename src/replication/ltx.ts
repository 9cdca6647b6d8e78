// The LTX file format (github.com/superfly/ltx v0.5, format version 3), as Litestream 0.5.18 writes it: the one home
// for it in this code base. The writer's resume point (resume-point.ts) encodes files; a follower (src/follower/)
// decodes the level-0 files Litestream uploads and applies their pages.
//
// Layout: a 100-byte header; page frames (6-byte page header with the size flag, a 4-byte size, an LZ4 block) in
// ascending page order, ended by a zero page header; the page index (uvarint triples, a 0, then its byte length as a
// u64); a 16-byte trailer (post-apply checksum, file checksum). All integers big-endian.
//
// The file checksum is CRC-64/ISO over the bytes ltx hashes, which are not the bytes on disk: each page contributes
// its header, its size field and its *uncompressed* data (ltx encoder.go hashes `data`, not the LZ4 block), so the
// checksum proves the decoded pages, not just the transfer. Everything else is hashed as stored, up to (not
// including) the file checksum itself.
//
// Litestream 0.5.18 sets HeaderFlagNoChecksum on every file it writes (db.go, compactor.go): the pre- and post-apply
// checksums are then 0 and only the file checksum can be verified.
import { lz4BlockDecompress } from './lz4.js';

export const LTX_HEADER_SIZE = 100;
export const LTX_PAGE_HEADER_SIZE = 6;
export const LTX_TRAILER_SIZE = 16;
/** The header flag Litestream's own files carry: pre/post-apply checksums are not tracked (0). */
export const LTX_FLAG_NO_CHECKSUM = 1 << 1;
/** Page header flag: a 4-byte size and an LZ4 *block* follow. Without it, ltx < 0.5 wrote an LZ4 *frame*. */
const PAGE_FLAG_SIZE = 1 << 0;
/** Set on every ltx checksum so that a real one is never 0. */
export const CHECKSUM_FLAG = 1n << 63n;
const MAGIC = 0x4c545831; // "LTX1"
const WAL_HEADER_SIZE = 32;

export type LtxErrorCode = 'magic' | 'version' | 'header' | 'old-format' | 'truncated' | 'corrupt' | 'checksum';

/** A file that is not an LTX v3 file we can apply; `code` says why (a caller retries 'truncated' downloads). */
export class LtxError extends Error {
  override name = 'LtxError';
  constructor(
    readonly code: LtxErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface LtxHeader {
  flags: number;
  pageSize: number;
  /** Pages in the database after this file is applied. */
  commit: number;
  minTxid: bigint;
  maxTxid: bigint;
  /** ms since the epoch, when the writer's Litestream cut the file. */
  timestamp: number;
  preApplyChecksum: bigint;
  walOffset: bigint;
  walSize: bigint;
  walSalt1: number;
  walSalt2: number;
  nodeId: bigint;
}

export interface LtxPage { pgno: number; data: Uint8Array }

export interface LtxTrailer { postApplyChecksum: bigint; fileChecksum: bigint }

export interface LtxFile {
  header: LtxHeader;
  /** In ascending page order, each exactly pageSize bytes. */
  pages: LtxPage[];
  trailer: LtxTrailer;
}

/** The page holding SQLite's lock bytes (offset 2^30): never written, never checksummed (ltx LockPgno). */
export function lockPgno(pageSize: number): number {
  return Math.floor(0x40000000 / pageSize) + 1;
}

/** Whether the file carries pre/post-apply checksums (Litestream 0.5.18's never do). */
export function hasChecksums(h: LtxHeader): boolean {
  return (h.flags & LTX_FLAG_NO_CHECKSUM) === 0;
}

/** TXIDs are 16 lower-case hex digits in object names (`<min>-<max>.ltx`). */
export function txidHex(txid: bigint): string {
  return txid.toString(16).padStart(16, '0');
}

export function parseTxid(s: string): bigint {
  if (!/^[0-9a-f]{16}$/.test(s)) throw new LtxError('header', `not a TXID (16 hex digits): ${JSON.stringify(s)}`);
  return BigInt(`0x${s}`);
}

// --- CRC-64/ISO (Go's hash/crc64 with crc64.ISO: reflected, ~0 in and out) -------------------------------------
// On two 32-bit halves: BigInt arithmetic runs at ~10 MB/s, far too slow to checksum every page a follower applies.
// The reflected polynomial is 0xD800000000000000, so a byte-table entry T[i] (byte i fed into a zero state) only has
// bits 52..63 set: its low half is 0 (TABLE holds the high halves) and its low byte is 0. Hence the table for "byte
// i then k zero bytes" is just T[i] >> 8k for k <= 3, and four bytes can be folded in at once (slicing-by-4) with
// this one table:  crc' = T[b0] >> 24 ^ T[b1] >> 16 ^ T[b2] >> 8 ^ T[b3] ^ crc >> 32,  b0..b3 the bytes of
// (crc ^ next 4 bytes, little-endian) & 0xffffffff.
const TABLE = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let hi = 0;
  let lo = i;
  for (let j = 0; j < 8; j++) {
    const bit = lo & 1;
    lo = (lo >>> 1) | ((hi & 1) << 31);
    hi = (hi >>> 1) ^ (bit ? 0xd8000000 : 0);
  }
  TABLE[i] = hi; // lo is 0 now: the 8 shifts moved every bit of i out of it
}

// The running state (complemented, as Go keeps it between writes), in two halves: module state avoids allocating.
let crcHi = 0;
let crcLo = 0;

function crcBegin(): void {
  crcHi = 0xffffffff;
  crcLo = 0xffffffff;
}

function crcUpdate(data: Uint8Array, start = 0, end = data.length): void {
  const t = TABLE;
  let hi = crcHi;
  let lo = crcLo;
  let i = start;
  for (const end4 = end - 3; i < end4; i += 4) {
    const x = lo ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
    const a = t[x & 0xff]!;
    const b = t[(x >>> 8) & 0xff]!;
    const c = t[(x >>> 16) & 0xff]!;
    const d = t[x >>> 24]!;
    lo = hi ^ (a << 8) ^ (b << 16) ^ (c << 24);
    hi = (a >>> 24) ^ (b >>> 16) ^ (c >>> 8) ^ d;
  }
  for (; i < end; i++) {
    const a = t[(lo ^ data[i]!) & 0xff]!;
    lo = (lo >>> 8) | (hi << 24);
    hi = (hi >>> 8) ^ a;
  }
  crcHi = hi >>> 0;
  crcLo = lo >>> 0;
}

function crcEnd(): bigint {
  return (BigInt(~crcHi >>> 0) << 32n) | BigInt(~crcLo >>> 0);
}

/** CRC-64 with the ISO polynomial, as Go's hash/crc64 computes it. */
export function crc64iso(data: Uint8Array): bigint {
  crcBegin();
  crcUpdate(data);
  return crcEnd();
}

const pgnoBytes = new Uint8Array(4);

/** ltx ChecksumPage: CRC-64/ISO over the page number (u32, big-endian) then the page, with the checksum flag. */
export function checksumPage(pgno: number, data: Uint8Array): bigint {
  pgnoBytes[0] = pgno >>> 24;
  pgnoBytes[1] = pgno >>> 16;
  pgnoBytes[2] = pgno >>> 8;
  pgnoBytes[3] = pgno;
  crcBegin();
  crcUpdate(pgnoBytes);
  crcUpdate(data);
  return CHECKSUM_FLAG | crcEnd();
}

// --- decoding ------------------------------------------------------------------------------------------------------

function isValidPageSize(n: number): boolean {
  return n >= 512 && n <= 65536 && (n & (n - 1)) === 0;
}

// The header after the magic: [field, offset, bytes]. 8-byte fields are bigints, except the timestamp (ms).
const HEADER_LAYOUT = [
  ['flags', 4, 4], ['pageSize', 8, 4], ['commit', 12, 4], ['minTxid', 16, 8], ['maxTxid', 24, 8], ['timestamp', 32, 8],
  ['preApplyChecksum', 40, 8], ['walOffset', 48, 8], ['walSize', 56, 8], ['walSalt1', 64, 4], ['walSalt2', 68, 4], ['nodeId', 72, 8],
] as const;

function readHeader(view: DataView): LtxHeader {
  const h: Record<string, number | bigint> = {};
  for (const [field, at, size] of HEADER_LAYOUT) h[field] = size === 4 ? view.getUint32(at) : view.getBigUint64(at);
  for (const signed of ['walOffset', 'walSize'] as const) h[signed] = BigInt.asIntN(64, h[signed] as bigint); // int64 in Go
  h.timestamp = Number(BigInt.asIntN(64, h.timestamp as bigint));
  return h as unknown as LtxHeader;
}

function writeHeader(h: LtxHeader): Buffer {
  const b = Buffer.alloc(LTX_HEADER_SIZE);
  b.writeUInt32BE(MAGIC, 0);
  for (const [field, at, size] of HEADER_LAYOUT) {
    if (size === 4) b.writeUInt32BE(h[field] as number, at);
    else b.writeBigUInt64BE(BigInt.asUintN(64, BigInt(h[field])), at);
  }
  return b;
}

/** Is this the format we read (flags, page size)? Checked first: the rest of the file depends on it. */
function checkFormat(h: LtxHeader): void {
  if ((h.flags & ~LTX_FLAG_NO_CHECKSUM) !== 0) {
    throw new LtxError('version', `unknown LTX header flags 0x${h.flags.toString(16)}: not the LTX version 3 that Litestream 0.5 writes (an older ltx format?)`);
  }
  if (!isValidPageSize(h.pageSize)) throw new LtxError('header', `invalid LTX header: page size ${h.pageSize}`);
}

/** The rest of ltx Header.Validate, checked once the file checksum passed (so a flipped bit reads as corruption). */
function checkHeader(h: LtxHeader): void {
  checkFormat(h);
  const bad = (why: string) => new LtxError('header', `invalid LTX header: ${why}`);
  if (h.minTxid === 0n || h.maxTxid === 0n || h.minTxid > h.maxTxid) throw bad(`TXID range ${h.minTxid}..${h.maxTxid}`);
  if (h.walOffset < 0n || h.walSize < 0n) throw bad('negative WAL offset or size');
  if (hasChecksums(h) && h.minTxid !== 1n && (h.preApplyChecksum & CHECKSUM_FLAG) === 0n) throw bad('pre-apply checksum without its flag');
  if (!hasChecksums(h) && h.preApplyChecksum !== 0n) throw bad('pre-apply checksum in a file without checksums');
}

/**
 * Decodes a whole LTX file held in memory: checks its structure, decompresses every page and verifies the file
 * checksum. Anything but a well-formed file throws LtxError (never a RangeError).
 */
export function decodeLtx(buf: Uint8Array): LtxFile {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  if (buf.length >= 4 && view.getUint32(0) !== MAGIC) {
    throw new LtxError('magic', `not an LTX file: it starts with ${JSON.stringify(Buffer.from(buf.subarray(0, 4)).toString('latin1'))}, not "LTX1"`);
  }
  const truncated = (where: string) => new LtxError('truncated', `LTX file truncated (${buf.length} bytes) in ${where}`);
  const corrupt = (why: string) => new LtxError('corrupt', `corrupt LTX file: ${why}`);
  if (buf.length < LTX_HEADER_SIZE) throw truncated('the header');
  const header = readHeader(view);
  checkFormat(header);
  const lock = lockPgno(header.pageSize);

  // 1. The structure, without decompressing: a cut-off download is reported as such, not as a bad checksum.
  const frames: { pgno: number; at: number; size: number }[] = [];
  let pos = LTX_HEADER_SIZE;
  for (let prev = 0; ; ) {
    if (pos + LTX_PAGE_HEADER_SIZE > buf.length) throw truncated('the pages');
    const pgno = view.getUint32(pos);
    const flags = view.getUint16(pos + 4);
    if (pgno === 0 && flags === 0) break;
    if (flags === 0) throw new LtxError('old-format', `LTX page ${pgno} is an LZ4 frame without a size: the older LTX page format (ltx < 0.5), not supported`);
    if (flags !== PAGE_FLAG_SIZE) throw corrupt(`page ${pgno} has unknown flags 0x${flags.toString(16)}`);
    if (pgno <= prev || pgno > header.commit || pgno === lock) throw corrupt(`page ${pgno} after ${prev} (commit ${header.commit}, lock page ${lock})`);
    if (pos + LTX_PAGE_HEADER_SIZE + 4 > buf.length) throw truncated(`page ${pgno}`);
    const at = pos + LTX_PAGE_HEADER_SIZE + 4;
    const size = view.getUint32(at - 4);
    if (at + size > buf.length) throw truncated(`page ${pgno}`);
    frames.push({ pgno, at, size });
    pos = at + size;
    prev = pgno;
  }
  const endOfPages = pos;
  // The page index (uvarint triples pgno, offset, size until a 0; then its length as a u64): checked, not used.
  const indexStart = (pos += LTX_PAGE_HEADER_SIZE);
  for (let fields = 0; ; fields++) {
    let value = 0;
    for (let shift = 1; ; shift *= 128) {
      if (pos >= buf.length) throw truncated('the page index');
      if (shift > 2 ** 63) throw corrupt('a page index varint is too long');
      const byte = buf[pos++]!;
      value += (byte & 0x7f) * shift;
      if (byte < 0x80) break;
    }
    if (value === 0 && fields % 3 === 0) break;
  }
  if (pos + 8 + LTX_TRAILER_SIZE > buf.length) throw truncated('the trailer');
  if (pos + 8 + LTX_TRAILER_SIZE < buf.length) throw corrupt(`${buf.length - pos - 8 - LTX_TRAILER_SIZE} bytes after the trailer`);
  if (view.getBigUint64(pos) !== BigInt(pos - indexStart)) throw corrupt('the page index length does not match');
  const end = pos + 8; // the trailer
  const trailer: LtxTrailer = { postApplyChecksum: view.getBigUint64(end), fileChecksum: view.getBigUint64(end + 8) };

  // 2. The pages, hashed as ltx hashes them: header and size as stored, then the uncompressed data.
  crcBegin();
  crcUpdate(buf, 0, LTX_HEADER_SIZE);
  const pages: LtxPage[] = [];
  for (const f of frames) {
    const data = new Uint8Array(header.pageSize);
    let n: number;
    try {
      n = lz4BlockDecompress(buf.subarray(f.at, f.at + f.size), data);
    } catch (err) {
      throw corrupt(`page ${f.pgno}: ${(err as Error).message}`);
    }
    if (n !== header.pageSize) throw corrupt(`page ${f.pgno} decompresses to ${n} bytes, not ${header.pageSize}`);
    crcUpdate(buf, f.at - LTX_PAGE_HEADER_SIZE - 4, f.at);
    crcUpdate(data);
    pages.push({ pgno: f.pgno, data });
  }
  crcUpdate(buf, endOfPages, end + 8);
  const sum = CHECKSUM_FLAG | crcEnd();
  if (sum !== trailer.fileChecksum) {
    throw new LtxError('checksum', `LTX file checksum mismatch: computed ${sum.toString(16)}, the trailer says ${trailer.fileChecksum.toString(16)}`);
  }
  checkHeader(header);
  if (hasChecksums(header) ? (trailer.postApplyChecksum & CHECKSUM_FLAG) === 0n : trailer.postApplyChecksum !== 0n) {
    throw new LtxError('header', 'LTX trailer: post-apply checksum inconsistent with the header flags');
  }
  return { header, pages, trailer };
}

// --- encoding ------------------------------------------------------------------------------------------------------

export interface LtxEncodeInput {
  header: Omit<LtxHeader, 'flags' | 'preApplyChecksum' | 'nodeId'> & Partial<Pick<LtxHeader, 'flags' | 'preApplyChecksum' | 'nodeId'>>;
  pages?: LtxPage[];
  postApplyChecksum?: bigint;
}

/** `data` as one literal-only LZ4 block: valid LZ4 that any decoder reads, so no compressor is needed here. */
function literalBlock(data: Uint8Array): Buffer {
  const n = data.length;
  const lengths = n < 15 ? [n << 4] : [0xf0, ...Array<number>(Math.floor((n - 15) / 255)).fill(255), (n - 15) % 255];
  return Buffer.concat([Buffer.from(lengths), data]);
}

/**
 * An LTX v3 file (ltx encoder.go) with its pages stored as literal-only LZ4 blocks. Flags default to no-checksum,
 * as Litestream writes them; a file with checksums needs `preApplyChecksum` and `postApplyChecksum`.
 */
export function encodeLtx(input: LtxEncodeInput): Buffer {
  const h: LtxHeader = { flags: LTX_FLAG_NO_CHECKSUM, preApplyChecksum: 0n, nodeId: 0n, ...input.header };
  checkHeader(h);
  const parts: Uint8Array[] = [writeHeader(h)];
  crcBegin();
  crcUpdate(parts[0]!);
  const index: number[] = [];
  let offset = LTX_HEADER_SIZE;
  for (const p of input.pages ?? []) {
    if (p.data.length !== h.pageSize) throw new RangeError(`page ${p.pgno}: ${p.data.length} bytes, not ${h.pageSize}`);
    const block = literalBlock(p.data);
    const ph = Buffer.alloc(LTX_PAGE_HEADER_SIZE + 4);
    ph.writeUInt32BE(p.pgno, 0);
    ph.writeUInt16BE(PAGE_FLAG_SIZE, 4);
    ph.writeUInt32BE(block.length, LTX_PAGE_HEADER_SIZE);
    parts.push(ph, block);
    crcUpdate(ph);
    crcUpdate(p.data); // ltx hashes the uncompressed page
    index.push(p.pgno, offset, ph.length + block.length);
    offset += ph.length + block.length;
  }
  const tail = [0, 0, 0, 0, 0, 0]; // the zero page header that ends the pages, then the page index
  for (let v of [...index, 0]) {
    for (; v >= 0x80; v = Math.floor(v / 128)) tail.push((v % 128) | 0x80);
    tail.push(v);
  }
  const rest = Buffer.alloc(tail.length + 16);
  rest.set(tail);
  rest.writeBigUInt64BE(BigInt(tail.length - LTX_PAGE_HEADER_SIZE), tail.length);
  rest.writeBigUInt64BE(input.postApplyChecksum ?? 0n, tail.length + 8);
  crcUpdate(rest);
  const fileChecksum = Buffer.alloc(8);
  fileChecksum.writeBigUInt64BE(CHECKSUM_FLAG | crcEnd());
  return Buffer.concat([...parts, rest, fileChecksum]);
}

/**
 * An LTX file with no pages and the no-checksum flag, as the resume point needs (resume-point.ts): the WAL offset is
 * the start of the WAL's frames and its size 0.
 */
export function encodeEmptyLtx(h: { pageSize: number; commit: number; txid: bigint; walSalt1: number; walSalt2: number; timestampMs: number }): Buffer {
  const { pageSize, commit, txid, walSalt1, walSalt2, timestampMs } = h;
  const header = { pageSize, commit, minTxid: txid, maxTxid: txid, timestamp: timestampMs, walOffset: BigInt(WAL_HEADER_SIZE), walSize: 0n, walSalt1, walSalt2 };
  return encodeLtx({ header });
}
