// Per-request metrics: http_requests_total and http_request_duration_seconds, on the process's one registry.
import { Buckets, scraped, secondsBuckets } from '../shared/metrics.js';

// prom-client hashes the label set on every observe(), even through a cached child: at 50k req/s on the
// main thread that was ~10% of its CPU. Requests are counted in plain arrays here and turned into
// Prometheus samples only when /metrics is scraped (scraped() in src/shared/metrics.ts). Each route's counts are
// found once, when the route is registered (routeStats), so answering a request looks nothing up by name.

/** One route's requests: how many ended with each status, and how long they took. */
export class RouteStats {
  /** Statuses seen so far, and how many requests ended with each (a route answers a handful of statuses). */
  readonly statuses: number[] = [];
  readonly counts: number[] = [];
  readonly seconds = new Buckets(secondsBuckets);

  observe(status: number, seconds: number): void {
    const statuses = this.statuses;
    let i = 0;
    while (i < statuses.length && statuses[i] !== status) i++;
    if (i === statuses.length) {
      statuses.push(status);
      this.counts.push(0);
    }
    this.counts[i]!++;
    this.seconds.observe(seconds);
  }
}

const byRoute = new Map<string, RouteStats>();

/** The counts of `route` (`METHOD pattern`), made when the route is registered. */
export function routeStats(route: string): RouteStats {
  let r = byRoute.get(route);
  if (!r) byRoute.set(route, (r = new RouteStats()));
  return r;
}

scraped('http_requests_total', 'HTTP requests answered, by route and status (499: client went away first)', 'counter', () =>
  [...byRoute].flatMap(([route, r]) => r.statuses.map((status, i) => ({ labels: { route, status }, value: r.counts[i]! }))),
);

scraped('http_request_duration_seconds', 'Time from request to response, by route', 'histogram', () =>
  // Routes registered but not yet asked for are left out, as before they had counts of their own.
  [...byRoute].flatMap(([route, r]) => (r.seconds.count === 0 ? [] : r.seconds.samples('http_request_duration_seconds', { route }))),
);
