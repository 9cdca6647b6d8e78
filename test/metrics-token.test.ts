// METRICS_TOKEN: with it set, GET /metrics needs `Authorization: Bearer <token>` (401 unauthorized otherwise), and
// nothing else changes; without it, /metrics answers anyone who reaches the server. Real server on a loopback port.
import { afterAll, describe, expect, it } from 'vitest';
import { expectError } from './helpers/api.js';
import { killAll, req, startServer } from './helpers/server.js';

afterAll(killAll);

const TOKEN = 'metrics-token-for-tests-0123456789';

describe('METRICS_TOKEN', () => {
  it('set: /metrics answers 401 unauthorized (WWW-Authenticate: Bearer) without the token or with a wrong one, 200 with it', async () => {
    const s = await startServer({ env: { METRICS_TOKEN: TOKEN, READERS: '0' } });
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer wrong-token-wrong-token-wrong' }, { authorization: `Basic ${TOKEN}` }, { authorization: `Bearer ${TOKEN}x` }]) {
      const r = await req(s.url, 'GET', '/metrics', undefined, headers);
      expectError(r, 401, 'unauthorized');
      expect(r.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
      expect(r.text).not.toContain(TOKEN);
    }
    expect((await fetch(`${s.url}/metrics`, { method: 'HEAD' })).status).toBe(401);

    const ok = await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toMatch(/^# HELP /m);
    // The scheme is case-insensitive (RFC 9110 11.1).
    expect((await fetch(`${s.url}/metrics`, { headers: { authorization: `bearer ${TOKEN}` } })).status).toBe(200);

    // Everything else is untouched by the token: the API, the probes and their aliases, the OpenAPI document.
    expect((await req(s.url, 'POST', '/counters/t/increment')).status).toBe(200);
    for (const path of ['/healthz', '/health', '/readyz', '/ready', '/openapi.json', '/counters/t']) {
      expect((await req(s.url, 'GET', path)).status, path).toBe(200);
    }
    // The refusals are counted like any answer (read with the token).
    const text = await (await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    expect(text).toMatch(/^http_requests_total\{route="GET \/metrics",status="401"\} [1-9]/m);
    expect(await s.stop()).toBe(0);
  });

  it('unset: /metrics answers without any Authorization header (a private service: Cloud Run\'s invoker check gates it)', async () => {
    const s = await startServer({ env: { READERS: '0' } });
    expect((await fetch(`${s.url}/metrics`)).status).toBe(200);
    expect(await s.stop()).toBe(0);
  });
});
