// Every message that crosses a thread boundary, and the one msgpackr setup both sides use.
import { Packr } from 'msgpackr';
import type { DataFileContent } from './data-file-format.js';
import type { WireError } from './errors.js';
import type { PageQuery, ProductInput, ProductPatch } from './domain.js';

// Records would need structures shared between threads; plain maps keep each message self-describing.
const packr = new Packr({ useRecords: false, moreTypes: false });

/** Packs into a standalone Uint8Array whose buffer can be transferred (msgpackr reuses its own buffer). */
export function pack(value: unknown): Uint8Array {
  const view = packr.pack(value);
  const out = new Uint8Array(view.length);
  out.set(view);
  return out;
}

/** Packs into msgpackr's own buffer: valid only until the next pack (for copying straight into the ring). */
export function packTransient(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function unpack<T>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}

// ---------- writer ----------

/** Idempotency-Key of a write, with the fingerprint of the request it was first used for. */
export interface IdempotencyTag {
  key: string;
  fingerprint: string;
}

export type WriteOp = (
  | { op: 'createProduct'; data: ProductInput }
  | { op: 'putProduct'; id: number; data: ProductInput }
  | { op: 'patchProduct'; id: number; data: ProductPatch }
  | { op: 'deleteProduct'; id: number }
  | { op: 'increment'; name: string; by: number }
  // DATA_FILE: everything in one command, so one SAVEPOINT: all of it is applied or none.
  | ({ op: 'applyDataFile' } & DataFileContent)
) & { idem?: IdempotencyTag };

/**
 * A committed command's answer, serialised on the writer thread so the main thread only copies bytes:
 * the JSON body (null for none) and, for creates, the new id (for Location).
 */
export interface WriteResult {
  body: string | null;
  id?: number;
}

/**
 * A WriteResult as the main thread receives it: the body as the UTF-8 bytes uWS writes (no string to decode on
 * arrival and encode again on the way out), and the replica position of the transaction that committed it (its
 * Bookmark; 0 when none is kept).
 */
export interface WriteAnswer {
  body: Uint8Array | null;
  id?: number;
  position: number;
}

/** A WriteAnswer's body as the value it encodes (off the request path: a data file's outcome, a 504's detail). */
export function answerJson(body: Uint8Array): unknown {
  return JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
}

/**
 * main -> writer: commands queued during one event-loop turn. They travel through a shared-memory ring
 * (src/shared/ring.ts), and the writer answers them in the order sent, so they need no ids.
 */
export interface WriteBatchMsg {
  t: 'write';
  /** encodeOp() of each. */
  ops: WireOp[];
}

// On the wire a write is a positional tuple, not a map: msgpackr reads a map key by key (a string and a
// megamorphic store each), which cost ~8 us of CPU per write across both threads at 5k writes/s (bench/ANALYSIS.md).
// [kind, ...fields, idempotency key, fingerprint]; an absent optional field is null (no field is nullable).
const KIND = ['createProduct', 'putProduct', 'patchProduct', 'deleteProduct', 'increment', 'applyDataFile'] as const;
export type WireOp = unknown[];

export function encodeOp(op: WriteOp): WireOp {
  const k = op.idem?.key ?? null;
  const f = op.idem?.fingerprint ?? null;
  switch (op.op) {
    case 'createProduct': {
      const d = op.data;
      return [0, d.name, d.price, d.description ?? null, d.stock ?? null, k, f];
    }
    case 'putProduct': {
      const d = op.data;
      return [1, op.id, d.name, d.price, d.description ?? null, d.stock ?? null, k, f];
    }
    case 'patchProduct': {
      const d = op.data;
      return [2, op.id, d.name ?? null, d.price ?? null, d.description ?? null, d.stock ?? null, k, f];
    }
    case 'deleteProduct':
      return [3, op.id, k, f];
    case 'increment':
      return [4, op.name, op.by, k, f];
    case 'applyDataFile':
      return [5, { hash: op.hash, counters: op.counters, products: op.products }, k, f];
  }
}

export function decodeOp(w: WireOp): WriteOp {
  const idem = (at: number): { idem?: IdempotencyTag } => (w[at] === null ? {} : { idem: { key: w[at] as string, fingerprint: w[at + 1] as string } });
  switch (KIND[w[0] as number]) {
    case 'createProduct':
      return { op: 'createProduct', data: product(w, 1), ...idem(5) };
    case 'putProduct':
      return { op: 'putProduct', id: w[1] as number, data: product(w, 2), ...idem(6) };
    case 'patchProduct': {
      const data: ProductPatch = {};
      if (w[2] !== null) data.name = w[2] as string;
      if (w[3] !== null) data.price = w[3] as number;
      if (w[4] !== null) data.description = w[4] as string;
      if (w[5] !== null) data.stock = w[5] as number;
      return { op: 'patchProduct', id: w[1] as number, data, ...idem(6) };
    }
    case 'deleteProduct':
      return { op: 'deleteProduct', id: w[1] as number, ...idem(2) };
    case 'increment':
      return { op: 'increment', name: w[1] as string, by: w[2] as number, ...idem(3) };
    case 'applyDataFile':
      return { op: 'applyDataFile', ...(w[1] as DataFileContent), ...idem(2) };
    default:
      throw new Error(`unknown write kind ${String(w[0])}`);
  }
}

function product(w: WireOp, at: number): ProductInput {
  const data: ProductInput = { name: w[at] as string, price: w[at + 1] as number };
  if (w[at + 2] !== null) data.description = w[at + 2] as string;
  if (w[at + 3] !== null) data.stock = w[at + 3] as number;
  return data;
}

/** main -> writer (through the ring, after the last write): finish what is queued, close the connection, reply `closed`. */
export interface WriterCloseMsg {
  t: 'close';
  /** TRUNCATE-checkpoint before closing; only when no replicator reads the WAL. */
  checkpoint: boolean;
}

/**
 * A message too large for the ring goes over the MessagePort instead; an empty ring record marks its place in the
 * order, so the writer takes it from the port when it reaches the mark.
 */
export const ON_PORT = new Uint8Array(0);

export type ToWriter = WriteBatchMsg | WriterCloseMsg;

/** A command's outcome: its result, or why it failed. */
export type Outcome = { ok: WriteResult } | { err: WireError };

/**
 * Outcomes on the wire, two slots each, flat: [body, id] for a result (either may be null; the body as UTF-8
 * bytes), [error, null] for a failure (the only slot that holds a plain object).
 */
export type WireOutcomes = (Uint8Array | number | null | WireError)[];

export function encodeOutcomes(outcomes: readonly Outcome[]): WireOutcomes {
  const out: WireOutcomes = new Array(outcomes.length * 2);
  for (let i = 0; i < outcomes.length; i++) {
    const o = outcomes[i]!;
    if ('ok' in o) {
      const body = o.ok.body;
      out[2 * i] = body === null ? null : Buffer.from(body);
      out[2 * i + 1] = o.ok.id ?? null;
    } else {
      out[2 * i] = o.err;
      out[2 * i + 1] = null;
    }
  }
  return out;
}

/**
 * writer -> main: one transaction committed; every command in it answered, in the order they were sent.
 * The one message of every batch, so a tuple rather than a map (no key strings to decode): measured in
 * bench/ANALYSIS.md, with the bodies as bytes, 6.2 -> 1.6 us to unpack a batch of nine creates' answers.
 */
export type CommittedMsg = [
  t: 'c',
  /** encodeOutcomes() of one outcome per command, oldest first. */
  results: WireOutcomes,
  /** Milliseconds from BEGIN to COMMIT returning. */
  commitMs: number,
  busyRetries: number,
  /** A command failed in the optimistic pass, so the batch ran again with a SAVEPOINT per command (src/writer/batch.ts). */
  fellBack: boolean,
  /** The replica position this transaction committed (0: nothing committed, or none kept). */
  position: number,
];

/** writer -> main: an idle writer committed a heartbeat (WRITER_HEARTBEAT_MS): only the replica position moved. */
export interface HeartbeatMsg {
  t: 'heartbeat';
  position: number;
}

export interface WriterReadyMsg {
  t: 'ready';
  sqliteVersion: string;
  userVersion: number;
  /** The writer thread's kernel thread id (src/shared/thread-id.ts), null off Linux. */
  tid: number | null;
}

export interface WriterClosedMsg {
  t: 'closed';
  checkpointed: boolean;
}

export interface WriterFatalMsg {
  t: 'fatal';
  message: string;
  stack?: string;
}

export type FromWriter = CommittedMsg | HeartbeatMsg | WriterReadyMsg | WriterClosedMsg | WriterFatalMsg;

// ---------- checkpointer ----------

/** main -> checkpointer: stop checkpointing, close the connection, reply `closed`. */
export interface CheckpointerCloseMsg {
  t: 'close';
}

export type ToCheckpointer = CheckpointerCloseMsg;

/** checkpointer -> main: one checkpoint that found frames to look at (idle ticks are not reported). */
export interface CheckpointMsg {
  t: 'checkpoint';
  ms: number;
  /** Frames in the WAL. */
  walFrames: number;
}

export type FromCheckpointer =
  | { t: 'ready'; tid: number | null }
  | CheckpointMsg
  /** A checkpoint threw (disk full, I/O error): the next one is tried in `retryInMs` (doubling up to 5 s). */
  | { t: 'failed'; message: string; failures: number; retryInMs: number }
  /** A checkpoint succeeded after `failures` in a row failed. */
  | { t: 'recovered'; failures: number }
  | { t: 'closed' };

// ---------- readers ----------

export type ReadOp =
  | { q: 'product'; id: number }
  | { q: 'products'; query: PageQuery }
  | { q: 'counter'; name: string };

/** A read answers with the JSON body to send, or null for "no such row". */
export type ReadResult = string | null;

/** What a reader thread returns per read of a batch: a failing read fails alone. */
export type ReadOutcome = ReadResult | { err: WireError };
