// Per-request metrics: http_requests_total and http_request_duration_seconds, on the process's one registry.
import type client from 'prom-client';
import { registry, secondsBuckets } from '../shared/metrics.js';

// prom-client hashes the label set on every observe(), even through a cached child: at 50k req/s on the
// main thread that was ~10% of its CPU. Requests are counted in plain arrays here and turned into
// Prometheus samples only when /metrics is scraped.

interface RouteStats {
  byStatus: Map<number, number>;
  /** Non-cumulative bucket counts; the last slot is +Inf. */
  buckets: Float64Array;
  sum: number;
  count: number;
}

const routeStats = new Map<string, RouteStats>();

export function observeRequest(route: string, status: number, seconds: number): void {
  let r = routeStats.get(route);
  if (!r) routeStats.set(route, (r = { byStatus: new Map(), buckets: new Float64Array(secondsBuckets.length + 1), sum: 0, count: 0 }));
  r.byStatus.set(status, (r.byStatus.get(status) ?? 0) + 1);
  let i = 0;
  while (i < secondsBuckets.length && seconds > secondsBuckets[i]!) i++;
  r.buckets[i]!++;
  r.sum += seconds;
  r.count++;
}

type Sample = { labels: Record<string, string | number>; value: number; metricName?: string };

/** Registers a metric whose samples are computed at scrape time. */
function scraped(name: string, help: string, type: 'counter' | 'histogram', samples: () => Sample[]): void {
  const meta = { name, help, type, aggregator: 'sum' as const };
  registry.registerMetric({ ...meta, get: async () => ({ ...meta, values: samples() }) } as unknown as client.Metric);
}

scraped('http_requests_total', 'HTTP requests answered, by route and status (499: client went away first)', 'counter', () => {
  const values: Sample[] = [];
  for (const [route, r] of routeStats) for (const [status, n] of r.byStatus) values.push({ labels: { route, status }, value: n });
  return values;
});

scraped('http_request_duration_seconds', 'Time from request to response, by route', 'histogram', () => {
  const values: Sample[] = [];
  const name = 'http_request_duration_seconds';
  for (const [route, r] of routeStats) {
    let acc = 0;
    for (let i = 0; i <= secondsBuckets.length; i++) {
      acc += r.buckets[i]!;
      values.push({ metricName: `${name}_bucket`, labels: { le: i < secondsBuckets.length ? secondsBuckets[i]! : '+Inf', route }, value: acc });
    }
    values.push({ metricName: `${name}_sum`, labels: { route }, value: r.sum });
    values.push({ metricName: `${name}_count`, labels: { route }, value: r.count });
  }
  return values;
});
