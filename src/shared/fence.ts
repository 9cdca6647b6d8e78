// The writer's fence (issue 16): how long this process may still commit, shared between the main thread (which
// holds the writer lease and moves the fence on every renewal) and the writer thread (which checks it before every
// COMMIT). One SharedArrayBuffer, so the check costs a clock read and an atomic load, with no message between the
// threads; and since a lost lease is only ever a move of `validUntil` to 0, a writer thread that never hears about
// the loss still refuses to commit once its own clock passes the last renewal's validity.
//
// Both threads read the same clock: CLOCK_MONOTONIC through process.hrtime (performance.now() has a different
// origin in every thread). It keeps counting while the process is stopped (SIGSTOP, a frozen container), which is
// what makes a resumed zombie see at once that its lease is gone.

/** Monotonic milliseconds, identical in every thread of the process. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

const VALID_UNTIL = 0; // monotonic ms; 0 = not the leader
const EPOCH = 1;
const COMMITS = 2; // batches committed in the current epoch
const FIRST_COMMIT = 3; // wall-clock ms of the first and last commits in the current epoch (for the term's log line)
const LAST_COMMIT = 4;
const SLOTS = 5;

/** Without a lease (no REPLICA_URL) the writer is never fenced. */
export type FenceBuffer = SharedArrayBuffer | null;

export class Fence {
  private readonly a: BigInt64Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(SLOTS * 8)) {
    this.a = new BigInt64Array(buffer);
  }

  /** Main thread: a new term (epoch) starts, valid until `validUntil`. Resets the commit counters. */
  open(epoch: number, validUntil: number): void {
    Atomics.store(this.a, COMMITS, 0n);
    Atomics.store(this.a, FIRST_COMMIT, 0n);
    Atomics.store(this.a, LAST_COMMIT, 0n);
    Atomics.store(this.a, EPOCH, BigInt(epoch));
    this.extend(validUntil);
  }

  /** Main thread: a renewal landed. */
  extend(validUntil: number): void {
    Atomics.store(this.a, VALID_UNTIL, BigInt(Math.floor(validUntil)));
  }

  /** Main thread: the lease is lost or given up. From now on no batch commits. */
  revoke(): void {
    Atomics.store(this.a, VALID_UNTIL, 0n);
  }

  /** Either thread: may this process commit (or acknowledge) now? */
  valid(): boolean {
    return monotonicMs() < Number(Atomics.load(this.a, VALID_UNTIL));
  }

  get epoch(): number {
    return Number(Atomics.load(this.a, EPOCH));
  }

  /** Writer thread, after a COMMIT. */
  recordCommit(): void {
    const now = BigInt(Date.now());
    if (Atomics.add(this.a, COMMITS, 1n) === 0n) Atomics.store(this.a, FIRST_COMMIT, now);
    Atomics.store(this.a, LAST_COMMIT, now);
  }

  /** What the current term committed: batches, and when the first and last did (wall clock, null if none). */
  term(): { epoch: number; batches: number; firstCommitAt: string | null; lastCommitAt: string | null } {
    const iso = (slot: number) => {
      const t = Number(Atomics.load(this.a, slot));
      return t ? new Date(t).toISOString() : null;
    };
    return { epoch: this.epoch, batches: Number(Atomics.load(this.a, COMMITS)), firstCommitAt: iso(FIRST_COMMIT), lastCommitAt: iso(LAST_COMMIT) };
  }
}
