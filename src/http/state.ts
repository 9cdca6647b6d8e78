// What the HTTP edge answers about the service as a whole: ready or not (and why), draining, writes refused while
// replication is down. One object, owned by the composition root (src/lifecycle.ts), read by the routes; every
// change also moves the server_ready gauge.
import { m } from '../shared/metrics.js';

export class ServiceState {
  ready = false;
  draining = false;
  /** Why the server is not ready, for /readyz. */
  notReadyReason = 'starting';
  /** Set while replication is down: writes answer 503 replication_down with this reason. */
  writesRefused: string | undefined = undefined;

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
  }

  private set(ready: boolean, reason: string): void {
    this.ready = ready;
    this.notReadyReason = reason;
    m.ready.set(ready ? 1 : 0);
  }
}
