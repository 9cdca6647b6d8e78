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

/** main -> writer: commands queued during one event-loop turn. */
export interface WriteBatchMsg {
  t: 'write';
  /** Parallel arrays keep the encoding small. */
  ids: number[];
  ops: WriteOp[];
}

/** main -> writer: finish what is queued, close the connection, reply `closed`. */
export interface WriterCloseMsg {
  t: 'close';
  /** TRUNCATE-checkpoint before closing; only when no replicator reads the WAL. */
  checkpoint: boolean;
}

export type ToWriter = WriteBatchMsg | WriterCloseMsg;

/** writer -> main: one transaction committed; every command in it answered. */
export interface CommittedMsg {
  t: 'committed';
  ids: number[];
  /** ok: result; failed: error. Same order as ids. */
  results: ({ ok: WriteResult } | { err: WireError })[];
  /** Milliseconds from BEGIN to COMMIT returning. */
  commitMs: number;
  busyRetries: number;
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

export type FromWriter = CommittedMsg | WriterReadyMsg | WriterClosedMsg | WriterFatalMsg;

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
