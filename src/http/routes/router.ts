// Registering routes on the uWS app: every handler gets the same wrapper (exchange set-up, refusal of untrustworthy
// heads, refusal while draining, synchronous throws turned into error replies), HEAD wherever GET is, and once
// everything is registered, 405 with Allow for known paths and 404 for the rest.
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { AppError, shuttingDown } from '../../shared/errors.js';
import { Exchange, type ExchangeHooks } from '../exchange.js';
import { expectsBody, requestId, requestMethod } from '../request.js';
import { checkHead } from '../head-check.js';
import { forwardWrite, pendingRead, type FollowerEdge } from '../follower.js';
import { passEnd } from '../head-fields.js';
import { routeStats } from '../request-metrics.js';
import type { ServiceState } from '../state.js';

export type Handler = (ex: Exchange, req: HttpRequest) => void;
export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export interface RouteOptions {
  /** Answered while the server drains (health, readiness, metrics). */
  whileDraining?: boolean;
}

const UWS_METHOD = { GET: 'get', POST: 'post', PUT: 'put', PATCH: 'patch', DELETE: 'del' } as const;

export class Router {
  /** What was registered, as [METHOD, pattern] pairs (HEAD not listed: it follows GET). */
  readonly registered: [Method, string][] = [];

  constructor(
    private readonly app: TemplatedApp,
    private readonly hooks: ExchangeHooks,
    private readonly state: ServiceState,
    private readonly headerCheck: boolean,
    /** A read follower: writes are forwarded to the writer instead of handled, reads honour a Bookmark. */
    private readonly follower: FollowerEdge | null = null,
  ) {}

  on(method: Method, pattern: string, handler: Handler, opts?: RouteOptions): void {
    const follower = this.follower;
    if (follower && method !== 'GET') handler = (ex, req) => forwardWrite(follower, ex, req, method);
    this.app[UWS_METHOD[method]](pattern, this.wrap(method, pattern, handler, opts));
    this.registered.push([method, pattern]);
    // HEAD wherever GET is (RFC 9110 9.3.2): the same handler, answered without its body (Exchange.send).
    if (method === 'GET') this.app.head(pattern, this.wrap('HEAD', pattern, handler, opts));
  }

  /** After every route: 405 (with Allow) on known paths for other methods, 404 everywhere else. */
  finish(): void {
    const allowed = new Map<string, string[]>();
    for (const [method, pattern] of this.registered) {
      allowed.set(pattern, [...(allowed.get(pattern) ?? []), ...(method === 'GET' ? ['GET', 'HEAD'] : [method])]);
    }
    for (const [pattern, list] of allowed) {
      const methods = list.join(', ');
      this.app.any(
        pattern,
        this.wrap('ANY', pattern, (_ex, req) => {
          throw new AppError('method_not_allowed', `${req.getMethod().toUpperCase()} is not allowed on ${pattern}`, undefined, { Allow: methods });
        }),
      );
    }
    this.app.any(
      '/*',
      this.wrap('ANY', '/*', (_ex, req) => {
        throw new AppError('not_found', `no route for ${req.getMethod().toUpperCase()} ${req.getUrl()}`);
      }),
    );
  }

  private wrap(method: string, pattern: string, handler: Handler, opts: RouteOptions = {}) {
    const name = `${method} ${pattern}`;
    const stats = routeStats(name);
    const { hooks, state, headerCheck } = this;
    // Reads of the API on a follower (not health, readiness, metrics: those answer while draining) honour a Bookmark.
    const follower = (method === 'GET' || method === 'HEAD') && !opts.whileDraining ? this.follower : null;
    return (res: HttpResponse, req: HttpRequest) => {
      try {
        // First: the pass also collects the fields read below and by the handler (src/http/head-fields.ts).
        // ~0.2 us per header field (uWS.js's forEach): a trusted front end can switch it off (HEADER_CHECK=0).
        const refused = headerCheck ? checkHead(req) : null;
        const ex = new Exchange(res, name, stats, requestId(req), method === 'ANY' ? requestMethod(req) : method, hooks, expectsBody(req));
        if (refused) {
          ex.refuse(refused);
          return;
        }
        if (state.draining && !opts.whileDraining) {
          ex.error(shuttingDown());
          return;
        }
        try {
          if (follower) ex.awaiting = pendingRead(follower, ex, req, method);
          handler(ex, req);
        } catch (err) {
          ex.error(err);
        }
      } finally {
        passEnd();
      }
    };
  }
}
