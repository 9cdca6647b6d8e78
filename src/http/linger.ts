// Lingering close, as nginx does it. Closing a connection whose request body is still arriving makes the kernel
// reset it (RST: unread bytes sit in the receive buffer), and a reset client loses the answer it was sent: Python's
// http.client and Node's fetch saw BrokenPipeError/EPIPE instead of a 413, a client that writes its whole body
// before reading saw nothing at all. So after such an answer the rest of the body is read and thrown away (never
// buffered: only its size is counted) until it ends, or until LINGER_TIMEOUT_MS / LINGER_MAX_BYTES, and only
// then is the connection closed. Exchange (src/http/exchange.ts) owns the response; this owns the bounds.

export interface LingerBounds {
  readonly ms: number;
  readonly bytes: number;
}

/**
 * Why lingering ended: the body is over; a bound was reached; the server shuts down; the client went away
 * (nothing may touch the response then).
 */
export type LingerEnd = 'body' | 'bound' | 'shutdown' | 'aborted';

export function lingerEnabled(bounds: LingerBounds): boolean {
  return bounds.ms > 0 && bounds.bytes > 0;
}

export class Linger {
  private bytes = 0;
  private ended = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly bounds: LingerBounds,
    private readonly onEnd: (how: LingerEnd) => void,
  ) {
    this.timer = setTimeout(() => this.end('bound'), bounds.ms);
    // The shutdown ends every linger itself (Exchange.endLinger); a timer must not hold the process.
    this.timer.unref();
  }

  /** A chunk of the body arrived and was dropped. */
  data(n: number, isLast: boolean): void {
    if (this.ended) return;
    this.bytes += n;
    // The body is over: finish on the next turn, not now. A request pipelined in the same read then finds our
    // response still pending, and uWS closes the connection instead of routing it.
    if (isLast) setImmediate(() => this.end('body'));
    else if (this.bytes > this.bounds.bytes) this.end('bound');
  }

  end(how: LingerEnd): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    this.onEnd(how);
  }
}
