// Messages between the baseline's main thread and its database threads.
import type { WireError } from '../../src/shared/errors.js';
import type { ReadOp, ReadResult, WriteAnswer, WriteOp } from '../../src/shared/protocol.js';

/** main -> db thread: one request = one transaction. */
export type Job = { id: number; kind: 'write'; op: WriteOp } | { id: number; kind: 'read'; op: ReadOp };

/** db thread -> main. `busy` = SQLITE_BUSY/LOCKED errors met (each one retried, or the last one fatal). */
export type JobDone =
  | { id: number; ok: WriteAnswer | ReadResult; busy: number }
  | { id: number; err: WireError; busy: number; busyFailed: boolean };
