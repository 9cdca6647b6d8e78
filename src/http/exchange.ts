// One request/response exchange on uWS, and the three rules every handler follows, kept in one place:
// onAborted is registered before anything async, an aborted or finished response is never touched again,
// and every reply after the handler returned happens inside res.cork().
// Imported rather than read off globalThis, where Node defines it as a lazy getter (a slow global load per use).
import { performance } from 'node:perf_hooks';
// Likewise Buffer: on Node 22 the global is a getter, called on every use in a hot function (seen in the profile).
import { Buffer } from 'node:buffer';
import type { HttpResponse } from 'uWebSockets.js';
import type { AccessEntry } from './access-log.js';
import { AppError, toAppError } from '../shared/errors.js';
import type { PendingSet } from './pending-set.js';
import type { RouteStats } from './request-metrics.js';
import { statusLineBytes } from './status.js';
import { Linger, lingerEnabled, type LingerBounds, type LingerEnd } from './linger.js';
import type { ForwardRequest } from '../follower/forward.js';

/** A reply's body: text, or UTF-8 bytes as they are to go out (a write's answer from the writer, a forwarded one). */
export type Body = string | Uint8Array;

/**
 * Header names and values every reply writes, as bytes: uWS.js copies a string argument into a temporary UTF-8
 * buffer on every call and takes bytes as they are (writeHeader: ~100 ns a call saved, measured).
 */
const H = {
  XRequestId: Buffer.from('X-Request-Id'),
  ContentType: Buffer.from('Content-Type'),
  /**
   * A JSON body's type and X-Content-Type-Options as one value: writeHeader writes `name: value\r\n` as given, so
   * this is both lines for one call (each call passing bytes costs uWS.js ~0.08 us per argument to reach them: a
   * point read's profile, bench/ANALYSIS.md).
   */
  jsonNosniff: Buffer.from('application/json\r\nX-Content-Type-Options: nosniff'),
  XContentTypeOptions: Buffer.from('X-Content-Type-Options'),
  nosniff: Buffer.from('nosniff'),
};

/**
 * A reply's own header names (Location, Retry-After, Idempotency-Replayed, ...) as bytes, each made once. Values
 * stay strings (most differ per reply). A follower also passes on the names of a forwarded answer's headers, which
 * come from elsewhere: past NAMES_MAX distinct names the rest go as strings, so the table cannot grow without bound.
 */
const NAMES = new Map<string, Buffer>();
const NAMES_MAX = 64;

function headerName(name: string): Buffer | string {
  const b = NAMES.get(name);
  if (b !== undefined) return b;
  if (NAMES.size >= NAMES_MAX) return name;
  const made = Buffer.from(name);
  NAMES.set(name, made);
  return made;
}

export interface ExchangeHooks {
  /** True while the server drains: replies then close their connection. */
  draining(): boolean;
  /** Exchanges still waiting for an answer (for the shutdown drain). */
  readonly pending: PendingSet<Exchange>;
  onInternalError(err: unknown, route: string): void;
  /** Responses waiting for a client that does not read them (see Exchange.sendBody). */
  readonly stalled: Set<Exchange>;
  /** Headers every response carries besides ours (a follower's Replica-Position and Replica-Age-Ms), or null. */
  readonly responseHeaders: ((res: HttpResponse) => void) | null;
  /** Access log (one line per answered request), or null when LOG_LEVEL is above info. */
  readonly accessLog: ((e: AccessEntry) => void) | null;
  /** Connections answered while their request body still arrives, discarding it before they close (linger.ts). */
  readonly lingering: Set<Exchange>;
  readonly linger: LingerBounds;
}

export class Exchange {
  aborted = false;
  done = false;
  /** Its index in hooks.pending while it waits there (src/http/pending-set.ts), else -1. */
  pendingAt = -1;
  /** True once the handler returned and the exchange waits on something async. */
  private async = false;
  readonly start = performance.now();
  /** When the client last took part of a response it has not read in full (see sendBody). */
  stalledSince = 0;
  /** Where the body's chunks go (readBody); null: nobody wants them. */
  private bodySink: ((ab: ArrayBuffer, isLast: boolean) => void) | null = null;
  /** On a follower: a read whose Bookmark the copy has not reached yet (src/http/follower.ts). */
  awaiting: { position: number; since: number; request: ForwardRequest } | null = null;
  private listening = false;
  private linger: Linger | null = null;

  constructor(
    readonly res: HttpResponse,
    readonly route: string,
    /** Where the route's requests are counted (resolved once per route: request-metrics.ts). */
    private readonly stats: RouteStats,
    /** Echoed in X-Request-Id and logged. */
    readonly id: string,
    /** The request's method as sent (routes registered for any method log what was asked). */
    readonly method: string,
    private readonly hooks: ExchangeHooks,
    /** True while the request's body is still arriving (from its head: see expectsBody). */
    public receiving = false,
  ) {}

  /** Hands the body's chunks to `sink`; must be called before the handler returns. */
  onBody(sink: (ab: ArrayBuffer, isLast: boolean) => void): void {
    this.bodySink = sink;
    this.listen();
  }

  /** One onData per request: the body goes to the sink until the exchange is answered, then to the linger (or nowhere). */
  private listen(): void {
    if (this.listening) return;
    this.listening = true;
    this.res.onData((ab, isLast) => {
      if (isLast) this.receiving = false;
      if (this.linger) this.linger.data(ab.byteLength, isLast);
      else if (!this.done) this.bodySink?.(ab, isLast);
    });
  }

  /**
   * Whether an answer that closes the connection should linger: the body is still arriving, and its chunks can
   * still be caught (onData is already registered, or the handler has not returned yet).
   */
  private shouldLinger(): boolean {
    return this.receiving && this.linger === null && (this.listening || !this.async) && lingerEnabled(this.hooks.linger);
  }

  /** Discards the rest of the body, then `finish(how)` (not after an abort: the response is gone). */
  private startLinger(finish: (how: LingerEnd) => void): void {
    this.listen();
    const lingering = this.hooks.lingering;
    lingering.add(this);
    this.res.onAborted(() => {
      this.aborted = true;
      this.linger?.end('aborted');
      this.finish(499);
    });
    this.linger = new Linger(this.hooks.linger, (how) => {
      lingering.delete(this);
      if (how !== 'aborted' && !this.aborted) finish(how);
    });
  }

  /** Shutdown: stop waiting for the rest of a body and close. */
  endLinger(): void {
    this.linger?.end('shutdown');
  }

  /** Must be called before the handler returns without replying. */
  goAsync(): void {
    if (this.async || this.done) return;
    this.async = true;
    this.hooks.pending.add(this);
    this.res.onAborted(() => {
      this.aborted = true;
      this.finish(499);
    });
  }

  /** Replies with a JSON body (already serialised, as text or UTF-8 bytes, or a value to serialise). */
  json(status: number, body: Body | object | null, headers?: Readonly<Record<string, string>>): void {
    const text = body === null ? '' : typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
    this.send(status, text, 'application/json', headers, false);
  }

  /** Replies with a body of another type (Prometheus text, a forwarded answer as the writer sent it). */
  text(status: number, contentType: string, body: Body, headers?: Readonly<Record<string, string>>): void {
    this.send(status, body, contentType, headers, false);
  }

  error(err: unknown): void {
    const e = toAppError(err);
    if (e.code === 'internal') this.hooks.onInternalError(err, this.route);
    this.sendError(e, e.code === 'payload_too_large' || e.headers?.Connection === 'close');
  }

  private sendError(e: AppError, close: boolean): void {
    this.send(e.status, JSON.stringify({ error: e.toWire() }), 'application/json', e.headers, close);
  }

  /**
   * Answers `err` and closes the connection, for a request whose framing cannot be trusted (src/http/head-check.ts).
   * Not from inside the handler: uWS (20.30, and v20.51 re-measured) closes after an `end(..., true)` only once it
   * has parsed the rest of the read, so a request pipelined behind this one would still be routed and answered. Pending, the exchange makes
   * uWS close the connection itself when such a request arrives (neither is answered); otherwise the reply goes
   * out on the next turn, with Connection: close.
   */
  refuse(err: AppError): void {
    if (this.shouldLinger()) {
      // The answer waits until the body (as uWS frames it) is read, so that closing right after it resets nothing.
      // Not sent at once and completed later (as lingeringReply does): the bytes after this body are exactly what
      // must never be routed, so the response stays pending (uWS then closes on a pipelined request) and the
      // connection closes with it.
      this.async = true;
      this.startLinger(() => this.sendError(err, true));
      return;
    }
    this.goAsync();
    setImmediate(() => this.sendError(err, true));
  }

  private failFn: ((err: unknown) => void) | null = null;
  /** error(), bound (made once, on first use) so promise chains can pass it directly. */
  get fail(): (err: unknown) => void {
    return (this.failFn ??= (err) => this.error(err));
  }

  private send(
    status: number,
    text: Body,
    contentType: string,
    headers: Readonly<Record<string, string>> | undefined,
    close: boolean,
  ): void {
    if (this.done) return;
    const closeConnection = close || this.hooks.draining();
    if (closeConnection && text.length > 0 && this.shouldLinger()) {
      this.lingeringReply(status, text, contentType, headers);
      return;
    }
    // Inside the handler uWS has corked the socket already; afterwards the reply is corked here. No closure on the
    // handler's path: a new one per request is an allocation and a lazy compile on its first call.
    if (this.async) this.res.cork(() => this.write(status, text, contentType, headers, closeConnection));
    else this.write(status, text, contentType, headers, closeConnection);
    this.finish(status);
  }

  private write(status: number, text: Body, contentType: string, headers: Readonly<Record<string, string>> | undefined, closeConnection: boolean): void {
    const res = this.res;
    this.writeHead(status, text, contentType, headers);
    // end(..., true) adds `Connection: close` and closes after the reply is written.
    // A 204 carries no body and, per RFC 9110, no Content-Length either. uWS 20.30 can only close the
    // connection after a 204 by also writing `Content-Length: 0` (and an explicit `undefined` length
    // writes 2^63), so only replies while draining carry it.
    if (status === 204) {
      if (closeConnection) res.endWithoutBody(0, true);
      else res.endWithoutBody();
    } else if (this.method === 'HEAD') {
      // GET's status and headers, no body. uWS 20.51 writes whatever body end() is given, even to a HEAD, and
      // endWithoutBody(n) with n > 0 leaves the response open (the process aborts when the handler returns),
      // so the length is written as a header. Closing needs endWithoutBody(0, true): a HEAD answered while
      // the connection closes (drain, refused head) says Content-Length: 0.
      if (closeConnection) res.endWithoutBody(0, true);
      else {
        res.writeHeader('Content-Length', String(Buffer.byteLength(text)));
        res.endWithoutBody();
      }
    } else if (closeConnection) res.end(text, true);
    else this.sendBody(text);
  }

  private writeHead(status: number, text: Body, contentType: string, headers: Readonly<Record<string, string>> | undefined): void {
    const res = this.res;
    // uWS writes `200 OK` itself when no status was written.
    if (status !== 200) res.writeStatus(statusLineBytes(status));
    res.writeHeader(H.XRequestId, this.id);
    if (headers) for (const k in headers) if (k !== 'Connection') res.writeHeader(headerName(k), headers[k]!);
    this.hooks.responseHeaders?.(res);
    if (text.length === 0) return;
    if (contentType === 'application/json') res.writeHeader(H.ContentType, H.jsonNosniff);
    else res.writeHeader(H.ContentType, contentType).writeHeader(H.XContentTypeOptions, H.nosniff);
  }

  /**
   * Answers at once while the body is still arriving, then lingers (linger.ts). The answer goes out whole but
   * chunked, with our own `Connection: close`: write() sends it and leaves the response open, so uWS keeps handing
   * us the body, and a request pipelined behind the body makes uWS close rather than route it. (end() would
   * invalidate the response, and uWS 20.51's end(..., true) after write() puts a stray `Connection: close` line in
   * the body and drops the last chunk: measured.) When the body is over, end() sends the last chunk and the client,
   * told to close, closes; at a bound the connection is closed without it.
   */
  private lingeringReply(status: number, text: Body, contentType: string, headers: Readonly<Record<string, string>> | undefined): void {
    const res = this.res;
    const write = () => {
      this.writeHead(status, text, contentType, headers);
      res.writeHeader('Connection', 'close');
      res.write(text);
    };
    if (this.async) res.cork(write);
    else write();
    this.startLinger((how) => {
      if (how === 'bound') res.close();
      else res.cork(() => res.end());
    });
    this.finish(status);
  }

  /**
   * Writes the body without letting a client that does not read make the server buffer without bound.
   * `end()` would hand uWS the whole body and let it parse the next pipelined request at once, so a client that
   * pipelines and never reads grows the process by every response (measured: 19 GB in 10 s). `tryEnd()` leaves
   * a response uWS could not write in full pending, and uWS reads no further request on that connection until it
   * is written: at most one unsent response per connection. Its rest goes out from onWritable; a client that
   * reads none of it for SLOW_CLIENT_TIMEOUT_MS is disconnected (hooks.stalled, swept by the server).
   */
  private sendBody(text: Body): void {
    const res = this.res;
    const total = Buffer.byteLength(text);
    const [, done] = res.tryEnd(text, total);
    if (done) return;
    // Not written in full: the rest goes out as the client reads. The byte offset is the body's.
    const body = typeof text === 'string' ? Buffer.from(text) : text;
    const stalled = this.hooks.stalled;
    this.stalledSince = performance.now();
    stalled.add(this);
    res.onAborted(() => {
      this.aborted = true;
      stalled.delete(this);
    });
    res.onWritable((offset) => {
      const [ok, written] = res.tryEnd(body.subarray(offset), total);
      if (written) stalled.delete(this);
      else this.stalledSince = performance.now();
      return ok;
    });
  }

  /** Closes a connection whose client stopped reading its response (see sendBody). */
  closeStalled(): void {
    this.hooks.stalled.delete(this);
    if (!this.aborted) this.res.close();
  }

  private finish(status: number): void {
    if (this.done) return;
    this.done = true;
    if (this.async) this.hooks.pending.delete(this);
    const ms = performance.now() - this.start;
    this.stats.observe(status, ms / 1000);
    // Never the body: only what identifies the request and its outcome.
    this.hooks.accessLog?.({ reqId: this.id, method: this.method, route: this.route, status, ms: Math.round(ms * 1000) / 1000 });
  }
}
