// The HTTP edge's lifetime: the uWS app and its listen socket, the bookkeeping of every exchange (pending answers,
// stalled responses, lingering refusals) and the sweep that bounds them, and the drain on shutdown.
import type { us_listen_socket, us_socket } from 'uWebSockets.js';
import type { Config } from '../shared/config.js';
import { AppError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { depthSources, m } from '../shared/metrics.js';
import { createAccessLog } from './access-log.js';
import type { Exchange, ExchangeHooks } from './exchange.js';
import { replicaHeaders } from './follower.js';
import { mountRoutes } from './routes/index.js';
import type { RouteDeps } from './routes/kit.js';
import { PendingSet } from './pending-set.js';
import { loadNativeUws, type App, type Uws } from './uws.js';

export class HttpEdge {
  private readonly uws: Uws;
  private readonly pending = new PendingSet<Exchange>();
  private readonly stalled = new Set<Exchange>();
  private readonly lingering = new Set<Exchange>();
  private app: App | null = null;
  private listenSocket: us_listen_socket | null = null;
  private sweep: NodeJS.Timeout | null = null;
  port = 0;

  /** Loads uWS at once, so a missing binary fails start-up before any slow step (a restore). */
  constructor(
    private readonly config: Config,
    private readonly log: Logger,
  ) {
    this.uws = loadNativeUws(config.maxHeaderBytes);
    depthSources.stalled = () => this.stalled.size;
  }

  /** Answers requests in flight, for the drain's log line. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Registers the routes, listens (exclusively: a second server on the port fails), and starts the sweep. */
  async listen(deps: RouteDeps): Promise<number> {
    const { config, log } = this;
    const hooks: ExchangeHooks = {
      draining: () => deps.state.draining,
      pending: this.pending,
      stalled: this.stalled,
      onInternalError: (err, route) => log.error({ err, route }, 'request failed with an internal error'),
      accessLog: createAccessLog(log, config.accessLog),
      responseHeaders: deps.follower ? replicaHeaders(deps.follower.follower) : null,
      lingering: this.lingering,
      linger: { ms: config.lingerTimeoutMs, bytes: config.lingerMaxBytes },
    };
    const app = (this.app = this.uws.App() as App);
    const routes = mountRoutes(app, hooks, deps);
    log.debug({ routes: routes.map(([method, pattern]) => `${method} ${pattern}`) }, 'routes registered');
    this.listenSocket = await new Promise<us_listen_socket>((resolve, reject) =>
      // Exclusive: a second server on the same port must fail, not share it through SO_REUSEPORT.
      app.listen(config.host, config.port, this.uws.LIBUS_LISTEN_EXCLUSIVE_PORT, (ls) =>
        ls ? resolve(ls) : reject(new Error(`cannot listen on ${config.host}:${config.port} (in use or not permitted)`)),
      ),
    );
    this.port = this.uws.us_socket_local_port(this.listenSocket as unknown as us_socket);
    this.sweep = setInterval(() => this.sweepOnce(), Math.min(1000, Math.ceil(config.requestTimeoutMs / 4), Math.ceil(config.slowClientTimeoutMs / 4)));
    this.sweep.unref();
    log.info({ host: config.host, port: this.port }, 'listening');
    return this.port;
  }

  /**
   * Drain, first step: no new connections, and a request still receiving its body is answered now (it can only end
   * in 503: the writer takes nothing new, and its client may never finish sending). The rest of its body is
   * discarded, then the connection closes; its body never reached the writer, so nothing of it was applied. The
   * sweep keeps running: the drain waits on nothing longer than it would otherwise.
   */
  stopAccepting(): void {
    if (this.listenSocket) this.uws.us_listen_socket_close(this.listenSocket);
    for (const ex of this.pending) {
      if (ex.receiving) ex.error(new AppError('unavailable', 'server is shutting down; the request body was not read', undefined, { Connection: 'close' }));
    }
  }

  /** Resolves once every request in flight has its answer. */
  drained(): Promise<void> {
    return waitUntil(() => this.pending.size === 0);
  }

  /** Last step: connections still discarding a refused body get their answer completed, then every connection closes. */
  close(): void {
    if (this.sweep) clearInterval(this.sweep);
    for (const ex of this.lingering) ex.endLinger();
    // Idle keep-alive connections outlive the listen socket: close them.
    this.app?.close();
  }

  /** uWS's idle timeout does not cover a response we owe: answer anything pending for too long. */
  private sweepOnce(): void {
    const cutoff = performance.now() - this.config.requestTimeoutMs;
    for (const ex of this.pending) {
      if (ex.start < cutoff) ex.error(new AppError('request_timeout', undefined, undefined, { 'Retry-After': '1' }));
    }
    // A client that stopped reading its response holds one response's memory: let it go after a while.
    const stallCutoff = performance.now() - this.config.slowClientTimeoutMs;
    for (const ex of this.stalled) {
      if (ex.stalledSince >= stallCutoff) continue;
      m.slowClientsClosed.inc();
      ex.closeStalled();
    }
  }
}

function waitUntil(cond: () => boolean, everyMs = 5): Promise<void> {
  return new Promise((resolve) => {
    if (cond()) return resolve();
    const t = setInterval(() => {
      if (cond()) {
        clearInterval(t);
        resolve();
      }
    }, everyMs);
  });
}
