// The exchanges waiting for an answer (for request timeouts and the shutdown drain): every async request is added
// and removed once, so this is on the hot path. Not a `Set`: V8's Set replaces its hash table every few dozen
// adds and deletes, and the table it replaced keeps a pointer to the new one (for iterators in flight). Once one
// such table outlives two young-generation collections, the chain it starts keeps every later table, and the
// exchanges they held, alive through every scavenge: measured, ~2 MB promoted per scavenge at 10k writes/s, in a
// third of the runs (bench/ANALYSIS.md). An array with each member's index on the member: add and delete are
// O(1) (delete moves the last member into the hole), and a removed member is referenced by nothing.

/** What a member carries: its index here, -1 while it is not a member. */
export interface Slotted {
  pendingAt: number;
}

export class PendingSet<T extends Slotted> {
  private readonly members: T[] = [];

  get size(): number {
    return this.members.length;
  }

  add(x: T): void {
    if (x.pendingAt >= 0) return;
    x.pendingAt = this.members.length;
    this.members.push(x);
  }

  delete(x: T): void {
    const at = x.pendingAt;
    if (at < 0) return;
    x.pendingAt = -1;
    const last = this.members.pop()!;
    if (last !== x) {
      this.members[at] = last;
      last.pendingAt = at;
    }
  }

  /** A copy: members may be removed (answered) while the caller goes through them. */
  [Symbol.iterator](): Iterator<T> {
    return this.members.slice()[Symbol.iterator]();
  }
}
