// Group commit: one BEGIN IMMEDIATE ... COMMIT per batch, and the whole batch retried when another process holds
// the write lock past busy_timeout. A command that fails must fail alone, which takes a SAVEPOINT per command; but
// almost no batch has a failing command, so a batch first runs without them (optimistic), and only when one of
// its commands fails is that pass rolled back and the batch run again with a SAVEPOINT per command (careful).
// After a fallback the next CAREFUL_AFTER_FAILURE batches run carefully at once, so a workload that keeps failing
// does not pay for every batch twice. Measured: bench/ANALYSIS.md "CPU per request".
import { performance } from 'node:perf_hooks';
import type Database from 'better-sqlite3';
import { isBusy, toAppError } from '../shared/errors.js';
import type { WriteOp, WriteResult } from '../shared/protocol.js';
import type { Executor } from './commands.js';
import type { IdempotencyStore, Outcome } from './idempotency.js';

export type CommandOutcome = Outcome;

export interface BatchResult {
  results: CommandOutcome[];
  busyRetries: number;
  commitMs: number;
  /** The optimistic pass failed (a command failed) and the batch ran again with a SAVEPOINT per command. */
  fellBack: boolean;
  /** The replica position this transaction committed (replica_position.seq): every write in it has this Bookmark; 0 untracked. */
  position: number;
}

/** The writer lease ran out before COMMIT: the whole batch rolled back (src/shared/fence.ts). */
export class Fenced extends Error {
  override name = 'Fenced';
}

/** Thrown out of a savepoint to abort the whole transaction (the batch is retried). */
class BusyAbort extends Error {
  constructor(override readonly cause: unknown) {
    super('busy');
  }
}

/** Thrown out of the optimistic pass when a command fails: that pass rolls back and the batch runs carefully. */
class CommandFailed extends Error {}

/** Batches run carefully at once after an optimistic pass had to fall back. */
const CAREFUL_AFTER_FAILURE = 16;

/** SQLite rolled the whole transaction back on its own (I/O error, disk full): nothing in the batch committed. */
export class TransactionLost extends Error {
  override name = 'TransactionLost';
  constructor(override readonly cause: unknown) {
    super(`transaction rolled back by SQLite: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Blocks this (writer) thread: nothing else can use the connection meanwhile anyway. */
export function sleepSync(ms: number): void {
  if (ms > 0) Atomics.wait(sleeper, 0, 0, ms);
}

export interface BatchRunner {
  run(ops: readonly WriteOp[]): BatchResult;
}

export interface BatchRunnerOptions {
  maxBackoffMs?: number;
  /** Told about every command that failed with an unexpected (internal) error. */
  onInternalError?: (err: unknown, op: WriteOp) => void;
  /** Replays and records the outcomes of commands that carry an Idempotency-Key. */
  idempotency?: IdempotencyStore;
  /** Checked last before every COMMIT: false rolls the batch back (Fenced). Absent: never fenced (no lease). */
  mayCommit?: () => boolean;
  /**
   * Move the replica position (replica_position.seq) in every transaction: with a replica only, where read followers
   * can use it (docs/followers.md). It costs an UPDATE and one more page per commit: without a replica, 0 instead.
   */
  trackPosition?: boolean;
}

export function createBatchRunner(db: Database.Database, exec: Executor, opts: BatchRunnerOptions = {}): BatchRunner {
  const maxBackoff = opts.maxBackoffMs ?? 200;
  const onInternalError = opts.onInternalError ?? (() => {});
  const idem = opts.idempotency;
  const mayCommit = opts.mayCommit;
  /** A command and the record of its Idempotency-Key, which commit or roll back together. */
  const apply = (op: WriteOp, now: string, nowMs: number): WriteResult => {
    const result = exec(op, now);
    if (op.idem && idem) idem.store(op.idem, { ok: result }, nowMs);
    return result;
  };
  // better-sqlite3 turns a nested transaction() call into SAVEPOINT / RELEASE / ROLLBACK TO.
  const one = db.transaction(apply);
  /** Seen before (in an earlier batch or earlier in this one): its outcome, without running it again. */
  const replayed = (op: WriteOp, nowMs: number): CommandOutcome | undefined => (op.idem && idem ? idem.replay(op.idem, nowMs) : undefined);
  const bump = opts.trackPosition
    ? db.prepare<[number], number>('UPDATE replica_position SET seq = seq + 1, written_at = ? WHERE id = 1 RETURNING seq').pluck()
    : null;
  let position = 0;
  const mustCommit = (nowMs: number) => {
    if (bump) position = bump.get(nowMs)!;
    // The last thing before COMMIT: a writer whose lease ran out must not commit, whatever it computed.
    if (mayCommit && !mayCommit()) throw new Fenced('the writer lease is not valid: batch rolled back');
  };
  // Optimistic: no SAVEPOINT; the first failing command (whatever its error) throws the whole pass away.
  const optimistic = db.transaction((ops: readonly WriteOp[], now: string, nowMs: number) => {
    const out: CommandOutcome[] = new Array(ops.length);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      try {
        out[i] = replayed(op, nowMs) ?? { ok: apply(op, now, nowMs) };
      } catch (err) {
        if (isBusy(err)) throw new BusyAbort(err);
        throw new CommandFailed();
      }
    }
    mustCommit(nowMs);
    return out;
  });
  // Careful: a SAVEPOINT per command, so a failing one fails alone.
  const careful = db.transaction((ops: readonly WriteOp[], now: string, nowMs: number) => {
    const out: CommandOutcome[] = new Array(ops.length);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const before = replayed(op, nowMs);
      if (before) {
        out[i] = before;
        continue;
      }
      try {
        out[i] = { ok: one(op, now, nowMs) };
      } catch (err) {
        // A busy/locked error inside the transaction poisons the whole batch: retry it all.
        if (isBusy(err)) throw new BusyAbort(err);
        // Some errors make SQLite roll back the whole transaction; going on would autocommit what follows.
        if (!db.inTransaction) throw new TransactionLost(err);
        const e = toAppError(err);
        if (e.code === 'internal') onInternalError(err, op);
        out[i] = { err: e.toWire() };
        // A 4xx outcome is recorded too (the command's savepoint is gone, the batch transaction is not);
        // a 5xx is not: a retry may succeed.
        if (op.idem && idem && e.status < 500) idem.store(op.idem, out[i]!, nowMs);
      }
    }
    mustCommit(nowMs);
    return out;
  });

  let carefulLeft = 0;
  return {
    run(ops) {
      let busyRetries = 0;
      let backoff = 1;
      for (;;) {
        const t0 = performance.now();
        // One timestamp per transaction: everything in it commits at the same moment.
        const nowMs = Date.now();
        const now = new Date(nowMs).toISOString();
        try {
          let results: CommandOutcome[] | null = null;
          let fellBack = false;
          if (carefulLeft > 0) carefulLeft--;
          else {
            try {
              results = optimistic.immediate(ops, now, nowMs);
            } catch (err) {
              if (!(err instanceof CommandFailed)) throw err;
              fellBack = true;
              carefulLeft = CAREFUL_AFTER_FAILURE;
            }
          }
          results ??= careful.immediate(ops, now, nowMs);
          return { results, busyRetries, commitMs: performance.now() - t0, fellBack, position };
        } catch (err) {
          if (!(err instanceof BusyAbort) && !isBusy(err)) throw err;
          // busy_timeout already waited; back off a little more so the lock holder can finish, then retry all.
          busyRetries++;
          sleepSync(backoff);
          backoff = Math.min(backoff * 2, maxBackoff);
        }
      }
    },
  };
}
