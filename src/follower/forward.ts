// A follower answers reads from its own copy and sends every write to the one writer (WRITER_URL): this is that
// client. It knows nothing of uWebSockets.js: the HTTP edge hands it a ForwardRequest and writes the ForwardResponse.
//
// Rules it keeps, and why:
// - A forwarded write is sent at most once. A POST that timed out or lost its connection may have been applied, and
//   only the client can decide to retry it (with the same Idempotency-Key, which the writer deduplicates). So every
//   failure is an AppError the client sees: writer_unreachable (502) or writer_timeout (504).
// - The writer's answer is the answer, whatever its status: a 4xx/5xx from the writer is returned, not thrown.
// - Few warm connections (keep-alive, LIFO so the hot ones stay hot and the spare ones age out), a fixed cap
//   (`connections`): a burst queues here instead of opening a connection per write.
// - No X-Forwarded-For / Forwarded is added. The writer does not use client addresses (it logs by X-Request-Id), this
//   client is not given the peer address, and on Cloud Run the front end already puts the client chain in the
//   request's own X-Forwarded-For, which passes through unchanged like any end-to-end header.
import http from 'node:http';
import https from 'node:https';
import type { IdTokenClient } from 'google-auth-library';
import { AppError, shuttingDown } from '../shared/errors.js';

export interface ForwardRequest {
  method: string;
  /** Starts with '/': appended to WRITER_URL's path. */
  pathAndQuery: string;
  headers: ReadonlyArray<readonly [string, string]>;
  body: Buffer | null;
}

export interface ForwardResponse {
  status: number;
  /** The writer's headers in its order and spelling, minus hop-by-hop ones and Content-Length (the body is whole). */
  headers: Array<[string, string]>;
  body: Buffer;
}

export interface ForwarderOptions {
  /** http:// or https://, optionally with a base path. */
  writerUrl: string;
  /** Budget for one forward, from the forward() call to the last byte of the answer (ID token fetch included). */
  timeoutMs: number;
  /** Most connections open to the writer at once; more forwards wait for a free one (inside their budget). */
  connections: number;
  /** When set, every request carries `Authorization: Bearer <Google ID token for this audience>` (Cloud Run IAM). */
  audience?: string;
}

/**
 * Idle connections are closed after this long. uWS closes an idle connection after 10 s; closing ours first avoids
 * sending a write on a connection the writer is closing at that moment (a reset we could not safely retry).
 */
const IDLE_SOCKET_MS = 4_000;

/** Hop-by-hop fields (RFC 9110 7.6.1) and the ones this hop frames itself; Proxy-* is matched by prefix. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host']);
/**
 * Also never sent on: Content-Length (recomputed from the body we hold), Expect (the body was already read, there is
 * nothing to wait for).
 */
const NOT_FORWARDED = new Set([...HOP_BY_HOP, 'content-length', 'expect']);
/** Also never returned: Content-Length (the body is handed over whole; the edge frames it again). */
const NOT_RETURNED = new Set([...HOP_BY_HOP, 'content-length']);

export class WriterForwarder {
  readonly #agent: http.Agent;
  readonly #request: typeof http.request;
  readonly #hostname: string;
  readonly #port: number | undefined;
  readonly #basePath: string;
  readonly #timeoutMs: number;
  readonly #audience: string | undefined;
  #idTokens: Promise<IdTokenClient> | undefined;
  #pendingAuth: Promise<string> | undefined;
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  constructor(opts: ForwarderOptions) {
    let url: URL;
    try {
      url = new URL(opts.writerUrl);
    } catch {
      throw new TypeError(`WriterForwarder: writerUrl must be an http:// or https:// URL, got ${JSON.stringify(opts.writerUrl)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`WriterForwarder: writerUrl must be an http:// or https:// URL, got ${JSON.stringify(opts.writerUrl)}`);
    }
    if (url.username || url.password || url.search || url.hash) {
      throw new TypeError('WriterForwarder: writerUrl must not carry credentials, a query or a fragment');
    }
    if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) {
      throw new TypeError(`WriterForwarder: timeoutMs must be a positive number of milliseconds, got ${opts.timeoutMs}`);
    }
    if (!Number.isSafeInteger(opts.connections) || opts.connections < 1) {
      throw new TypeError(`WriterForwarder: connections must be an integer >= 1, got ${opts.connections}`);
    }
    if (opts.audience !== undefined && opts.audience.length === 0) {
      throw new TypeError('WriterForwarder: audience must not be empty (leave it unset for no ID token)');
    }
    const secure = url.protocol === 'https:';
    const agentOptions = {
      keepAlive: true,
      maxSockets: opts.connections,
      maxFreeSockets: opts.connections,
      scheduling: 'lifo' as const,
      // On a socket in the pool this is the idle timeout (the agent destroys a free socket that times out); on a
      // socket in use it only emits 'timeout', which nothing here listens to: the forward's own timer decides.
      timeout: IDLE_SOCKET_MS,
    };
    this.#agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.#request = secure ? https.request : http.request;
    this.#hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
    this.#port = url.port === '' ? undefined : Number(url.port);
    this.#basePath = url.pathname.replace(/\/+$/, '');
    this.#timeoutMs = opts.timeoutMs;
    this.#audience = opts.audience;
  }

  /**
   * Sends the request to the writer once and resolves with its answer, whatever the status. Rejects only with
   * AppError: writer_unreachable, writer_timeout, or unavailable after close().
   */
  forward(req: ForwardRequest): Promise<ForwardResponse> {
    if (this.#closed) return Promise.reject(shuttingDown());
    if (!req.pathAndQuery.startsWith('/')) {
      return Promise.reject(new TypeError(`WriterForwarder: pathAndQuery must start with '/', got ${req.pathAndQuery}`));
    }
    const p = this.#forward(req);
    this.#inFlight.add(p);
    const forget = () => this.#inFlight.delete(p);
    p.then(forget, forget);
    return p;
  }

  /** Refuses new forwards, waits for the ones in flight (each ends within timeoutMs), then closes the connections. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    this.#agent.destroy();
  }

  async #forward(req: ForwardRequest): Promise<ForwardResponse> {
    const deadline = performance.now() + this.#timeoutMs;
    const authorization = this.#audience === undefined ? undefined : await this.#authorization(this.#audience, deadline);
    return this.#send(req, authorization, deadline - performance.now());
  }

  /** The Authorization value for the writer, within the forward's budget; any failure means nothing was sent. */
  async #authorization(audience: string, deadline: number): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const pending = this.#bearer(audience);
    const outOfTime = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // On Cloud Run the library waits for the metadata server without a timeout of its own: a fetch that hangs is
        // given up here, so the next forward starts a new one instead of queueing behind it.
        if (this.#pendingAuth === pending) this.#pendingAuth = undefined;
        reject(new Error(`no ID token within the forward timeout (${this.#timeoutMs} ms)`));
      }, Math.max(0, deadline - performance.now()));
    });
    try {
      return await Promise.race([pending, outOfTime]);
    } catch (err) {
      throw unreachable({ reason: 'id_token_failed', message: (err as Error)?.message ?? String(err) }, err);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * google-auth-library finds the credentials (on Cloud Run: the metadata server), caches the token and fetches a new
   * one 5 minutes before it expires. Forwards arriving together share one call, so a cold start or an expiry costs
   * one token fetch, not one per waiting write. A failed client set-up is forgotten so the next forward tries again.
   */
  #bearer(audience: string): Promise<string> {
    if (this.#pendingAuth) return this.#pendingAuth;
    const p = this.#fetchBearer(audience).finally(() => {
      if (this.#pendingAuth === p) this.#pendingAuth = undefined;
    });
    this.#pendingAuth = p;
    return p;
  }

  async #fetchBearer(audience: string): Promise<string> {
    this.#idTokens ??= import('google-auth-library').then(({ GoogleAuth }) => new GoogleAuth().getIdTokenClient(audience));
    const client = await this.#idTokens.catch((err: unknown) => {
      this.#idTokens = undefined;
      throw err;
    });
    const value = (await client.getRequestHeaders()).get('authorization');
    if (!value) throw new Error('google-auth-library returned no authorization header');
    return value;
  }

  #send(req: ForwardRequest, authorization: string | undefined, budgetMs: number): Promise<ForwardResponse> {
    return new Promise<ForwardResponse>((resolve, reject) => {
      let settled = false;
      let timedOut = false;
      let connected = false;
      let sent = false;
      const finish = (f: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        f();
      };
      const failed = (err: unknown, afterResponse: boolean) =>
        finish(() =>
          reject(
            timedOut
              ? new AppError('writer_timeout', undefined, [{ timeoutMs: this.#timeoutMs, requestSent: sent }])
              : unreachable(
                  { reason: afterResponse ? 'response_interrupted' : connected ? 'connection_reset' : 'connect_failed', code: errorCode(err) },
                  err,
                ),
          ),
        );

      const out = this.#request({
        agent: this.#agent,
        hostname: this.#hostname,
        port: this.#port,
        method: req.method,
        path: this.#basePath + req.pathAndQuery,
        headers: outgoingHeaders(req, authorization),
      });
      // One timer for the whole exchange (waiting for a pooled connection, connecting, sending, the answer):
      // destroying the request ends whichever phase it is in, and the error handlers below report the timeout.
      const timer = setTimeout(() => {
        timedOut = true;
        out.destroy(new Error(`no answer within ${this.#timeoutMs} ms`));
      }, Math.max(0, budgetMs));

      out.on('socket', (socket) => {
        // A pooled socket is already connected; a new one connects later (TCP: what tells a refused connection
        // from a reset one in the error's details).
        if (!socket.connecting) connected = true;
        else socket.once('connect', () => (connected = true));
      });
      out.on('finish', () => (sent = true));
      let answered = false;
      out.on('error', (err) => failed(err, answered));
      // Ended without an 'error' (and without an answer): treated like a reset.
      out.on('close', () => {
        if (!answered) failed(new Error('the request closed before an answer'), false);
      });
      out.on('response', (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          finish(() => resolve({ status: res.statusCode ?? 502, headers: returnedHeaders(res.rawHeaders), body: Buffer.concat(chunks) })),
        );
        res.on('error', (err) => failed(err, true));
        // The connection dropped mid-body: 'close' without 'end' (Node does not always emit 'error' on the response).
        res.on('close', () => {
          if (!res.complete) failed(new Error('the connection closed before the answer was complete'), true);
        });
      });
      out.end(req.body ?? undefined);
    });
  }
}

function unreachable(detail: Record<string, unknown>, cause: unknown): AppError {
  const err = new AppError('writer_unreachable', undefined, [detail]);
  // For the caller's log: the underlying error (its message may name internal addresses, so it is not in details).
  err.cause = cause;
  return err;
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The field names a Connection header lists are hop-by-hop too (RFC 9110 7.6.1). */
function connectionOptions(pairs: Iterable<readonly [string, string]>): Set<string> {
  const names = new Set<string>();
  for (const [name, value] of pairs) {
    if (name.toLowerCase() !== 'connection') continue;
    for (const token of value.split(',')) if (token.trim()) names.add(token.trim().toLowerCase());
  }
  return names;
}

function isHopByHop(lower: string, listed: Set<string>, never: Set<string>): boolean {
  return never.has(lower) || lower.startsWith('proxy-') || listed.has(lower);
}

function outgoingHeaders(req: ForwardRequest, authorization: string | undefined): Record<string, string | string[]> {
  const listed = connectionOptions(req.headers);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of req.headers) {
    const lower = name.toLowerCase();
    if (isHopByHop(lower, listed, NOT_FORWARDED)) continue;
    // The client's own credentials are not for the writer when we authenticate this hop ourselves.
    if (authorization !== undefined && lower === 'authorization') continue;
    const prev = out[lower];
    // A repeated field stays repeated (Node writes one line per value), so the writer refuses what it would refuse.
    out[lower] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  if (authorization !== undefined) out.authorization = authorization;
  if (req.body !== null) out['content-length'] = String(req.body.length);
  return out;
}

function returnedHeaders(raw: string[]): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
  const listed = connectionOptions(pairs);
  return pairs.filter(([name]) => !isHopByHop(name.toLowerCase(), listed, NOT_RETURNED));
}
