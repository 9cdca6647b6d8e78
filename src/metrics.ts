// Prometheus metrics: one registry for the process. Hot-path children are cached so a request costs
// one Map lookup, not prom-client's label hashing.
import client from 'prom-client';

export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });

const batchBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];
const secondsBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Queue depths are read when scraped, not maintained per request. */
export const depthSources = { writer: () => 0, reader: () => 0 };

export const m = {
  writerBatches: new client.Counter({ name: 'writer_batches_total', help: 'Transactions committed by the writer', registers: [registry] }),
  writerCommands: new client.Counter({
    name: 'writer_commands_total',
    help: 'Write commands answered by the writer, by outcome',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
  writerBatchSize: new client.Histogram({
    name: 'writer_batch_size',
    help: 'Commands per committed transaction',
    buckets: batchBuckets,
    registers: [registry],
  }),
  writerCommitSeconds: new client.Histogram({
    name: 'writer_commit_seconds',
    help: 'Time from BEGIN IMMEDIATE to COMMIT returning, per batch',
    buckets: secondsBuckets,
    registers: [registry],
  }),
  writerQueueDepth: new client.Gauge({
    name: 'writer_queue_depth',
    help: 'Write commands accepted and not yet answered',
    registers: [registry],
    collect() {
      this.set(depthSources.writer());
    },
  }),
  busyRetries: new client.Counter({
    name: 'sqlite_busy_retries_total',
    help: 'Whole-batch retries after SQLITE_BUSY outlasted busy_timeout (another process held the write lock)',
    registers: [registry],
  }),
  readQueueDepth: new client.Gauge({
    name: 'reader_queue_depth',
    help: 'Reads handed to the reader pool and not yet answered',
    registers: [registry],
    collect() {
      this.set(depthSources.reader());
    },
  }),
  overloaded: new client.Counter({
    name: 'overloaded_rejections_total',
    help: 'Requests refused with 503 overloaded, by queue',
    labelNames: ['queue'] as const,
    registers: [registry],
  }),
  httpRequests: new client.Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by route and status',
    labelNames: ['route', 'status'] as const,
    registers: [registry],
  }),
  httpDuration: new client.Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from request to response, by route',
    labelNames: ['route'] as const,
    buckets: secondsBuckets,
    registers: [registry],
  }),
  ready: new client.Gauge({ name: 'server_ready', help: '1 when /readyz answers 200', registers: [registry] }),
};

const reqChildren = new Map<string, ReturnType<typeof m.httpRequests.labels>>();
const durChildren = new Map<string, ReturnType<typeof m.httpDuration.labels>>();

export function observeRequest(route: string, status: number, seconds: number): void {
  const key = route + '\u0000' + status;
  let c = reqChildren.get(key);
  if (!c) reqChildren.set(key, (c = m.httpRequests.labels(route, String(status))));
  c.inc();
  let h = durChildren.get(route);
  if (!h) durChildren.set(route, (h = m.httpDuration.labels(route)));
  h.observe(seconds);
}
