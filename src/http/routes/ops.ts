// Operations endpoints, answered while draining too: liveness, readiness, metrics, the OpenAPI document.
// /health and /ready answer exactly as /healthz and /readyz: Cloud Run reserves some paths ending in `z` at its front
// end (an outside check of /healthz may get Google's own 404), while its probes reach the container directly.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { HttpRequest } from 'uWebSockets.js';
import { AppError } from '../../shared/errors.js';
import { registry } from '../../shared/metrics.js';
import type { Exchange } from '../exchange.js';
import { openApiDocument } from '../openapi.js';
import type { ServiceState } from '../state.js';
import type { RouteDeps } from './kit.js';
import type { Router } from './router.js';

export function mountOps(r: Router, { config, state }: RouteDeps): void {
  const always = { whileDraining: true };
  const health = (ex: Exchange) => ex.json(200, { status: 'ok' });
  const ready = (ex: Exchange) => readiness(ex, state);
  for (const path of ['/healthz', '/health']) r.on('GET', path, health, always);
  for (const path of ['/readyz', '/ready']) r.on('GET', path, ready, always);
  const authorized = bearerCheck(config.metricsToken);
  r.on(
    'GET',
    '/metrics',
    (ex, req) => {
      if (!authorized(req)) throw new AppError('unauthorized');
      ex.goAsync();
      registry.metrics().then((text) => ex.text(200, registry.contentType, text), ex.fail);
    },
    always,
  );
  const openApiJson = JSON.stringify(openApiDocument());
  r.on('GET', '/openapi.json', (ex) => ex.json(200, openApiJson), always);
}

/**
 * Ready (200) or not (503, with why). A full database volume does not make the server unready: reads still work and
 * there is no other writer to send traffic to, so it is reported (`storage: "full"`) and writes answer 507.
 */
function readiness(ex: Exchange, state: ServiceState): void {
  // A standby is ready too (REPLICA_URL): it holds requests until it leads, and Cloud Run must be able to shift
  // traffic to it so that the old instance gets its SIGTERM and hands the lease over.
  const storage = state.backend?.writer?.storageFull ? 'full' : 'ok';
  if (state.ready && !state.draining) ex.json(200, { status: 'ready', role: state.role, storage });
  else
    ex.json(503, {
      status: state.draining ? 'draining' : 'not_ready',
      reason: state.draining ? 'server is shutting down' : state.notReadyReason,
      storage,
    });
}

/** METRICS_TOKEN: `Authorization: Bearer <token>`, compared in constant time. Null token: everyone is let through. */
function bearerCheck(token: string | null): (req: HttpRequest) => boolean {
  if (token === null) return () => true;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  const want = digest(token);
  return (req) => {
    const m = /^Bearer +(\S+) *$/i.exec(req.getHeader('authorization'));
    return m !== null && timingSafeEqual(digest(m[1]!), want);
  };
}
