// Every route of the API on one uWS app: products, counters, operations, then 405/404 for the rest.
import type { TemplatedApp } from 'uWebSockets.js';
import type { ExchangeHooks } from '../exchange.js';
import { mountCounters } from './counters.js';
import { routeKit, type RouteDeps } from './kit.js';
import { mountOps } from './ops.js';
import { mountProducts } from './products.js';
import { Router } from './router.js';

/** Registers every route on `app`; returns what was registered, as [METHOD, pattern] pairs. */
export function mountRoutes(app: TemplatedApp, hooks: ExchangeHooks, deps: RouteDeps): [string, string][] {
  const router = new Router(app, hooks, deps.state, deps.config.headerCheck, deps.follower ?? null);
  const kit = routeKit(deps);
  mountProducts(router, kit);
  mountCounters(router, kit);
  mountOps(router, deps);
  router.finish();
  return router.registered;
}
