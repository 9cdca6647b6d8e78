// Routes: the products + counters API, health, readiness and metrics, on one uWS app.
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { z } from 'zod';
import type { Config } from '../shared/config.js';
import { AppError } from '../shared/errors.js';
import { registry } from '../shared/metrics.js';
import type { ReadOp, ReadResult, WriteOp, WriteResult } from '../shared/protocol.js';
import type { Readers } from '../readers/pool.js';
import {
  counterName,
  createProductBody,
  incrementBody,
  issueDetails,
  listQuery,
  patchProductBody,
  productId,
  putProductBody,
} from './schemas.js';
import type { WriterClient } from '../writer/client.js';
import { contentTypeError } from './content-type.js';
import { checkHead } from './head-check.js';
import { idempotencyKey } from './idempotency.js';
import { openApiDocument } from './openapi.js';
import { pathParam } from './path-param.js';
import { preferenceApplied, requestDurability, type Durability } from './prefer.js';
import { Exchange, expectsBody, parseJson, readBody, requestId, requestMethod, type ExchangeHooks } from './exchange.js';

export interface AppState {
  ready: boolean;
  draining: boolean;
  /** Why the server is not ready, for /readyz. */
  notReadyReason: string;
  /** Set while replication is down: writes answer 503 replication_down with this reason. */
  writesRefused?: string;
}

export interface AppDeps {
  config: Config;
  writer: WriterClient;
  readers: Readers;
  state: AppState;
  hooks: ExchangeHooks;
}

type Handler = (ex: Exchange, req: HttpRequest) => void;

function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new AppError('validation_failed', `invalid ${where}`, issueDetails(r.error, where));
  return r.data;
}

/** Registers every route on `app`; returns what was registered, as [METHOD, pattern] pairs. */
export function mountRoutes(app: TemplatedApp, deps: AppDeps): [string, string][] {
  const { config, writer, readers, state, hooks } = deps;
  const { headerCheck } = config;
  const registered: [string, string][] = [];
  const methods = { GET: 'get', POST: 'post', PUT: 'put', PATCH: 'patch', DELETE: 'del' } as const;
  const on = (method: keyof typeof methods, pattern: string, handler: Handler, opts?: { whileDraining?: boolean }) => {
    app[methods[method]](pattern, route(method, pattern, handler, opts));
    registered.push([method, pattern]);
    // HEAD wherever GET is (RFC 9110 9.3.2): the same handler, answered without its body (Exchange.send).
    if (method === 'GET') app.head(pattern, route('HEAD', pattern, handler, opts));
  };

  /**
   * Wraps a handler: exchange set-up, refusal of untrustworthy heads, drain refusal, and synchronous throws turned
   * into error replies.
   */
  const route = (method: string, pattern: string, handler: Handler, opts: { whileDraining?: boolean } = {}) => {
    const name = `${method} ${pattern}`;
    return (res: HttpResponse, req: HttpRequest) => {
      const ex = new Exchange(res, name, requestId(req), method === 'ANY' ? requestMethod(req) : method, hooks, expectsBody(req));
      // ~0.2 us per header field (uWS.js's forEach): a trusted front end can switch it off (HEADER_CHECK=0).
      const refused = headerCheck ? checkHead(req) : null;
      if (refused) {
        ex.refuse(refused);
        return;
      }
      if (state.draining && !opts.whileDraining) {
        ex.error(new AppError('unavailable', 'server is shutting down', undefined, { Connection: 'close' }));
        return;
      }
      try {
        handler(ex, req);
      } catch (err) {
        ex.error(err);
      }
    };
  };

  const read = (ex: Exchange, op: ReadOp, status = 200) => {
    const reply = (body: ReadResult) => {
      if (body === null) ex.error(new AppError('not_found', notFoundMessage(op)));
      else ex.json(status, body);
    };
    const r = readers.run(op);
    if (typeof r === 'string' || r === null) reply(r);
    else {
      ex.goAsync();
      r.then(reply, ex.fail);
    }
  };

  type Dur = { durability: Durability; explicit: boolean };
  /** The write's durability, from Prefer or DEFAULT_DURABILITY (read while `req` is valid). */
  const durability = (req: HttpRequest): Dur => requestDurability(req, config.defaultDurability, config.replication !== null);
  const write = (ex: Exchange, op: WriteOp, d: Dur, reply: (r: WriteResult, headers?: Record<string, string>) => void) => {
    if (state.writesRefused) throw new AppError('replication_down', state.writesRefused, undefined, { 'Retry-After': '5' });
    ex.goAsync();
    const applied = preferenceApplied(d);
    writer.submit(op, { durability: d.durability }).then((r) => reply(r, applied), ex.fail);
  };

  /** Runs `then` with the parsed JSON body; failures become error replies. */
  const withBody = (ex: Exchange, req: HttpRequest, empty: unknown, then: (body: unknown) => void) => {
    const type = req.getHeader('content-type');
    readBody(ex, req, config.maxBodyBytes, (bytes) => {
      try {
        // Checked once the body is read (the connection stays usable), and only for a body: an empty
        // increment means `by: 1` whatever type a client library puts on it.
        const refused = bytes.length > 0 ? contentTypeError(type) : null;
        if (refused) throw refused;
        then(parseJson(bytes, empty));
      } catch (err) {
        ex.error(err);
      }
    });
  };

  const productReply = (ex: Exchange, status: number) => (r: WriteResult, headers?: Record<string, string>) =>
    ex.json(status, r.body, status === 201 ? { ...headers, Location: `/products/${r.id}` } : headers);

  // ---- products ----
  on('POST', '/products', (ex, req) => {
    const idem = idempotencyKey(req);
    const d = durability(req);
    withBody(ex, req, undefined, (body) =>
      write(ex, { op: 'createProduct', data: parse(createProductBody, body, 'body'), idem: idem?.(body) }, d, productReply(ex, 201)),
    );
  });
  on('GET', '/products', (ex, req) => {
    const query = parse(listQuery, Object.fromEntries(new URLSearchParams(req.getQuery() ?? '')), 'query');
    read(ex, { q: 'products', query });
  });
  on('GET', '/products/:id', (ex, req) => read(ex, { q: 'product', id: parse(productId, pathParam(req, 0, 'id'), 'id') }));
  on('PUT', '/products/:id', (ex, req) => {
    const id = parse(productId, pathParam(req, 0, 'id'), 'id');
    const idem = idempotencyKey(req);
    const d = durability(req);
    withBody(ex, req, undefined, (body) =>
      write(ex, { op: 'putProduct', id, data: parse(putProductBody, body, 'body'), idem: idem?.(body) }, d, productReply(ex, 200)),
    );
  });
  on('PATCH', '/products/:id', (ex, req) => {
    const id = parse(productId, pathParam(req, 0, 'id'), 'id');
    const idem = idempotencyKey(req);
    const d = durability(req);
    withBody(ex, req, undefined, (body) =>
      write(ex, { op: 'patchProduct', id, data: parse(patchProductBody, body, 'body'), idem: idem?.(body) }, d, productReply(ex, 200)),
    );
  });
  on('DELETE', '/products/:id', (ex, req) => {
    const id = parse(productId, pathParam(req, 0, 'id'), 'id');
    write(ex, { op: 'deleteProduct', id, idem: idempotencyKey(req)?.(null) }, durability(req), (_r, headers) => ex.json(204, null, headers));
  });

  // ---- counters ----
  on('GET', '/counters/:name', (ex, req) => read(ex, { q: 'counter', name: parse(counterName, pathParam(req, 0, 'name'), 'name') }));
  on('POST', '/counters/:name/increment', (ex, req) => {
    const name = parse(counterName, pathParam(req, 0, 'name'), 'name');
    const idem = idempotencyKey(req);
    const d = durability(req);
    withBody(ex, req, {}, (body) => {
      const { by } = parse(incrementBody, body, 'body');
      write(ex, { op: 'increment', name, by: by ?? 1, idem: idem?.(body) }, d, (r, headers) => ex.json(200, r.body, headers));
    });
  });

  // ---- operations ----
  const always = { whileDraining: true };
  on('GET', '/healthz', (ex) => ex.json(200, { status: 'ok' }), always);
  on(
    'GET',
    '/readyz',
    (ex) => {
      if (state.ready && !state.draining) ex.json(200, { status: 'ready' });
      else
        ex.json(503, {
          status: state.draining ? 'draining' : 'not_ready',
          reason: state.draining ? 'server is shutting down' : state.notReadyReason,
        });
    },
    always,
  );
  on(
    'GET',
    '/metrics',
    (ex) => {
      ex.goAsync();
      registry.metrics().then((text) => ex.text(200, registry.contentType, text), ex.fail);
    },
    always,
  );
  const openApiJson = JSON.stringify(openApiDocument());
  on('GET', '/openapi.json', (ex) => ex.json(200, openApiJson), always);

  // ---- 405 (with Allow) for known paths, 404 for everything else ----
  const allowed = new Map<string, string[]>();
  for (const [method, pattern] of registered) {
    allowed.set(pattern, [...(allowed.get(pattern) ?? []), ...(method === 'GET' ? ['GET', 'HEAD'] : [method])]);
  }
  for (const [pattern, list] of allowed) {
    const methods = list.join(', ');
    app.any(
      pattern,
      route('ANY', pattern, (ex, req) => {
        throw new AppError('method_not_allowed', `${req.getMethod().toUpperCase()} is not allowed on ${pattern}`, undefined, {
          Allow: methods,
        });
      }),
    );
  }
  app.any(
    '/*',
    route('ANY', '/*', (ex, req) => {
      throw new AppError('not_found', `no route for ${req.getMethod().toUpperCase()} ${req.getUrl()}`);
    }),
  );
  return registered;
}

function notFoundMessage(op: ReadOp): string {
  switch (op.q) {
    case 'product':
      return `product ${op.id} not found`;
    case 'counter':
      return `counter ${op.name} not found`;
    default:
      return 'not found';
  }
}
