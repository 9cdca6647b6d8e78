// Operations endpoints, answered while draining too: liveness, readiness, metrics, the OpenAPI document.
import { registry } from '../../shared/metrics.js';
import { openApiDocument } from '../openapi.js';
import type { ServiceState } from '../state.js';
import type { Router } from './router.js';

export function mountOps(r: Router, state: ServiceState): void {
  const always = { whileDraining: true };
  r.on('GET', '/healthz', (ex) => ex.json(200, { status: 'ok' }), always);
  r.on(
    'GET',
    '/readyz',
    (ex) => {
      // A standby is ready too (REPLICA_URL): it holds requests until it leads, and Cloud Run must be able to shift
      // traffic to it so that the old instance gets its SIGTERM and hands the lease over.
      if (state.ready && !state.draining) ex.json(200, { status: 'ready', role: state.role });
      else
        ex.json(503, {
          status: state.draining ? 'draining' : 'not_ready',
          reason: state.draining ? 'server is shutting down' : state.notReadyReason,
        });
    },
    always,
  );
  r.on(
    'GET',
    '/metrics',
    (ex) => {
      ex.goAsync();
      registry.metrics().then((text) => ex.text(200, registry.contentType, text), ex.fail);
    },
    always,
  );
  const openApiJson = JSON.stringify(openApiDocument());
  r.on('GET', '/openapi.json', (ex) => ex.json(200, openApiJson), always);
}
