// What the HTTP edge answers about the service as a whole: ready or not (and why), draining, writes refused while
// replication is down, and which backend (writer + readers) serves requests now. One object, owned by the
// composition root (src/lifecycle.ts, src/leadership.ts), read by the routes; every change also moves the
// server_ready gauge.
//
// With a replica, only the holder of the writer lease has a backend. A standby (or a leader between terms) holds
// each request until a backend is there, for at most STANDBY_HOLD_MS, then answers 503 not_leader: during a
// handover the requests that reach the new instance wait for it to lead instead of failing. Reads are held too,
// not answered from a stale copy: a read after a write that the old leader acknowledged must see it.
import type { Readers } from '../readers/pool.js';
import { AppError, shuttingDown } from '../shared/errors.js';
import { m } from '../shared/metrics.js';
import type { WriterClient } from '../writer/client.js';

export interface Backend {
  /** Null on a read follower (ROLE=follower): its writes go to the writer (src/http/follower.ts). */
  writer: WriterClient | null;
  readers: Readers;
}

/**
 * leader: serving; standby: another instance holds the lease; promoting: we hold it and are restoring/opening;
 * follower: reads from a copy of the replica, writes forwarded (docs/followers.md).
 */
export type Role = 'leader' | 'standby' | 'promoting' | 'follower';

interface Waiter {
  resolve: (b: Backend) => void;
  reject: (err: AppError) => void;
  timer: NodeJS.Timeout;
}

export class ServiceState {
  ready = false;
  draining = false;
  /** Why the server is not ready, for /readyz. */
  notReadyReason = 'starting';
  /** Set while replication is down: writes answer 503 replication_down with this reason. */
  writesRefused: string | undefined = undefined;
  /** What serves requests now; null while a standby or between terms. */
  backend: Backend | null = null;
  role: Role = 'promoting';
  private waiters = new Set<Waiter>();

  /** Ready for traffic (unless draining or writes are refused). */
  markReady(): void {
    this.set(!this.draining && this.writesRefused === undefined, this.writesRefused ?? '');
  }

  markNotReady(reason: string): void {
    this.set(false, reason);
  }

  /** Replication is down: refuse writes (503 replication_down) rather than take them unreplicated. */
  refuseWrites(reason: string): void {
    this.writesRefused = reason;
    this.set(false, reason);
  }

  resumeWrites(): void {
    this.writesRefused = undefined;
    this.set(!this.draining, '');
  }

  startDraining(): void {
    this.draining = true;
    this.set(false, 'server is shutting down');
    const closing = shuttingDown();
    this.settleWaiters((w) => w.reject(closing));
  }

  /** A term starts: requests are served by `b`, and the ones held meanwhile go to it now. */
  serve(b: Backend): void {
    this.backend = b;
    this.role = b.writer ? 'leader' : 'follower';
    this.settleWaiters((w) => w.resolve(b));
  }

  /**
   * No backend (a standby, or a leader that lost its lease): requests are held from now on. A refusal of writes
   * belonged to the term's Litestream, which is gone: the next term reports its own.
   */
  unserve(role: 'standby' | 'promoting'): void {
    this.backend = null;
    this.role = role;
    if (this.writesRefused !== undefined) this.resumeWrites();
  }

  /** The backend, at once or once this instance leads; 503 not_leader after `holdMs`. */
  awaitBackend(holdMs: number): Promise<Backend> {
    if (this.backend) return Promise.resolve(this.backend);
    if (this.draining) return Promise.reject(shuttingDown());
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(w);
          m.standbyHeld.set(this.waiters.size);
          reject(new AppError('not_leader', `this instance is a ${this.role} and did not become the writer within STANDBY_HOLD_MS (${holdMs} ms); retry`));
        }, holdMs),
      };
      this.waiters.add(w);
      m.standbyHeld.set(this.waiters.size);
    });
  }

  /** Every held request, at once: handed the backend, or refused. */
  private settleWaiters(settle: (w: Waiter) => void): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    m.standbyHeld.set(0);
    for (const w of waiters) {
      clearTimeout(w.timer);
      settle(w);
    }
  }

  private set(ready: boolean, reason: string): void {
    this.ready = ready;
    this.notReadyReason = reason;
    m.ready.set(ready ? 1 : 0);
  }
}
