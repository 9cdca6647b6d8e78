// Per-request metrics: http_requests_total and http_request_duration_seconds, on the process's one registry.
import { Buckets, scraped, secondsBuckets } from '../shared/metrics.js';

// prom-client hashes the label set on every observe(), even through a cached child: at 50k req/s on the
// main thread that was ~10% of its CPU. Requests are counted in plain arrays here and turned into
// Prometheus samples only when /metrics is scraped (scraped() in src/shared/metrics.ts).

interface RouteStats {
  byStatus: Map<number, number>;
  seconds: Buckets;
}

const routeStats = new Map<string, RouteStats>();

export function observeRequest(route: string, status: number, seconds: number): void {
  let r = routeStats.get(route);
  if (!r) routeStats.set(route, (r = { byStatus: new Map(), seconds: new Buckets(secondsBuckets) }));
  r.byStatus.set(status, (r.byStatus.get(status) ?? 0) + 1);
  r.seconds.observe(seconds);
}

scraped('http_requests_total', 'HTTP requests answered, by route and status (499: client went away first)', 'counter', () =>
  [...routeStats].flatMap(([route, r]) => [...r.byStatus].map(([status, value]) => ({ labels: { route, status }, value }))),
);

scraped('http_request_duration_seconds', 'Time from request to response, by route', 'histogram', () =>
  [...routeStats].flatMap(([route, r]) => r.seconds.samples('http_request_duration_seconds', { route })),
);
