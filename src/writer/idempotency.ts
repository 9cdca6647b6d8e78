// Idempotency keys on the writer thread: the first command with a key runs and its outcome (2xx or 4xx) is stored
// in the same transaction; a later command with the key gets that outcome back without running, or
// `idempotency_key_reused` if it is a different request. Commands run in order on one connection, so a
// duplicate queued behind its original (even in the same batch) sees the stored outcome.
import type Database from 'better-sqlite3';
import { AppError } from '../shared/errors.js';
import type { IdempotencyTag, Outcome } from '../shared/protocol.js';

export type { Outcome };

export interface IdempotencyStore {
  /** The stored outcome for this key (if not expired), or the reuse error, or undefined: run the command. */
  replay(tag: IdempotencyTag, nowMs: number): Outcome | undefined;
  store(tag: IdempotencyTag, outcome: Outcome, nowMs: number): void;
  /** Deletes expired keys; returns how many. */
  sweep(nowMs: number): number;
}

export function prepareIdempotency(db: Database.Database, ttlS: number): IdempotencyStore {
  const ttlMs = ttlS * 1000;
  const get = db.prepare<[string, number], { fingerprint: string; outcome: string }>(
    'SELECT fingerprint, outcome FROM idempotency WHERE key = ? AND created_at > ?',
  );
  // An expired record is replaced, not kept: the key starts a new life.
  const put = db.prepare<[string, string, string, number]>(
    `INSERT INTO idempotency (key, fingerprint, outcome, created_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint, outcome = excluded.outcome, created_at = excluded.created_at`,
  );
  const expire = db.prepare<[number]>('DELETE FROM idempotency WHERE created_at <= ?');
  const reused = new AppError('idempotency_key_reused').toWire();

  return {
    replay(tag, nowMs) {
      const row = get.get(tag.key, nowMs - ttlMs);
      if (!row) return undefined;
      return row.fingerprint === tag.fingerprint ? (JSON.parse(row.outcome) as Outcome) : { err: reused };
    },
    store(tag, outcome, nowMs) {
      put.run(tag.key, tag.fingerprint, JSON.stringify(outcome), nowMs);
    },
    sweep(nowMs) {
      return expire.run(nowMs - ttlMs).changes;
    },
  };
}
