// Prometheus metrics: one registry for the process. What is counted per request or per batch is kept in plain
// numbers and rendered when scraped (scraped(), Buckets), not observed through prom-client.
import client from 'prom-client';

export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });

const batchBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];
export const secondsBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Queue depths are read when scraped, not maintained per request. */
export const depthSources = { writer: () => 0, reader: () => 0, stalled: () => 0 };

type Sample = { labels: Record<string, string | number>; value: number; metricName?: string };

/**
 * Registers a metric whose samples are computed when /metrics is scraped. For the hot paths: prom-client hashes
 * the label set on every observe() and inc(), even through a cached child, so what is counted per request or per
 * batch is counted in plain numbers and turned into samples here.
 */
export function scraped(name: string, help: string, type: 'counter' | 'histogram', samples: () => Sample[]): void {
  const meta = { name, help, type, aggregator: 'sum' as const };
  registry.registerMetric({ ...meta, get: async () => ({ ...meta, values: samples() }) } as unknown as client.Metric);
}

/** Histogram bucket counts in plain arrays (non-cumulative; the last slot is +Inf), rendered by histogramSamples(). */
export class Buckets {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(v: number): void {
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
  samples(name: string, labels: Record<string, string | number> = {}): Sample[] {
    const out: Sample[] = [];
    let acc = 0;
    for (let i = 0; i <= this.bounds.length; i++) {
      acc += this.counts[i]!;
      out.push({ metricName: `${name}_bucket`, labels: { le: i < this.bounds.length ? this.bounds[i]! : '+Inf', ...labels }, value: acc });
    }
    out.push({ metricName: `${name}_sum`, labels, value: this.sum });
    out.push({ metricName: `${name}_count`, labels, value: this.count });
    return out;
  }
}

/** What the writer client counts per committed batch (on the main thread; see scraped()). */
export const writerStats = {
  batches: 0,
  commandsOk: 0,
  commandsFailed: 0,
  batchSize: new Buckets(batchBuckets),
  commitSeconds: new Buckets(secondsBuckets),
};
scraped('writer_batches_total', 'Transactions committed by the writer', 'counter', () => [{ labels: {}, value: writerStats.batches }]);
scraped('writer_commands_total', 'Write commands answered by the writer, by outcome', 'counter', () => [
  { labels: { outcome: 'ok' }, value: writerStats.commandsOk },
  { labels: { outcome: 'failed' }, value: writerStats.commandsFailed },
]);
scraped('writer_batch_size', 'Commands per committed transaction', 'histogram', () => writerStats.batchSize.samples('writer_batch_size'));
scraped('writer_commit_seconds', 'Time from BEGIN IMMEDIATE to COMMIT returning, per batch', 'histogram', () =>
  writerStats.commitSeconds.samples('writer_commit_seconds'),
);

/** A gauge that reads its value from `depthSources[source]` when scraped. */
function depthGauge(name: string, help: string, source: keyof typeof depthSources): client.Gauge {
  return new client.Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(depthSources[source]());
    },
  });
}

/** A read follower's copy, read when scraped (src/follower/follower.ts sets them; absent on a writer). */
export const followerSources: { copyAgeS: (() => number) | null; dataAgeS: (() => number) | null } = { copyAgeS: null, dataAgeS: null };

for (const [name, help, key] of [
  ['follower_copy_age_seconds', 'Since the copy was last confirmed current (a poll that found nothing newer in the bucket)', 'copyAgeS'],
  ['follower_data_age_seconds', "Since the writer committed the position the copy holds (the writer's clock: heartbeats keep it small while the writer runs)", 'dataAgeS'],
] as const) {
  new client.Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      const f = followerSources[key];
      if (f) this.set(f());
    },
  });
}

export const m = {
  followerPosition: new client.Gauge({
    name: 'follower_replica_position',
    help: "The replica position (the writer's replica_position.seq) this follower's copy holds",
    registers: [registry],
  }),
  followerPolls: new client.Counter({
    name: 'follower_polls_total',
    help: 'Polls of the replica by result: current (nothing new), applied (new files applied), failed',
    labelNames: ['result'] as const,
    registers: [registry],
  }),
  followerAppliedFiles: new client.Counter({
    name: 'follower_applied_files_total',
    help: 'Level-0 LTX files this follower applied to its copy',
    registers: [registry],
  }),
  followerGcsOps: new client.Counter({
    name: 'follower_gcs_operations_total',
    help: 'Requests this follower sent to Cloud Storage: list (Class A) and get (Class B)',
    labelNames: ['op'] as const,
    registers: [registry],
  }),
  followerRestores: new client.Counter({
    name: 'follower_restores_total',
    help: 'Full restores of the copy: start, gap (away longer than level-0 files are kept), fork (a new writer lineage)',
    labelNames: ['why'] as const,
    registers: [registry],
  }),
  followerStale: new client.Counter({
    name: 'follower_stale_total',
    help: 'Times this follower turned not ready because its copy was not confirmed current within FOLLOWER_MAX_LAG_MS',
    registers: [registry],
  }),
  followerBookmarkReads: new client.Counter({
    name: 'follower_bookmark_reads_total',
    help: 'Reads with a Bookmark the copy had not reached: served (it caught up within FOLLOWER_WAIT_MS) or forwarded to the writer',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
  replicaPosition: new client.Gauge({
    name: 'writer_replica_position',
    help: 'The replica position (replica_position.seq) of the last transaction the writer committed: the newest Bookmark',
    registers: [registry],
  }),
  writerHeartbeats: new client.Counter({
    name: 'writer_heartbeats_total',
    help: 'Heartbeat transactions an idle writer committed (WRITER_HEARTBEAT_MS)',
    registers: [registry],
  }),
  writerFallbacks: new client.Counter({
    name: 'writer_batch_fallbacks_total',
    help: 'Batches whose optimistic pass (no SAVEPOINT per command) hit a failing command and ran again with one per command',
    registers: [registry],
  }),
  writerQueueDepth: depthGauge('writer_queue_depth', 'Write commands accepted and not yet answered', 'writer'),
  busyRetries: new client.Counter({
    name: 'sqlite_busy_retries_total',
    help: 'Whole-batch retries after SQLITE_BUSY outlasted busy_timeout (another process held the write lock)',
    registers: [registry],
  }),
  storageFullWrites: new client.Counter({
    name: 'sqlite_full_writes_total',
    help: 'Write commands refused with 507 insufficient_storage because SQLite answered SQLITE_FULL (volume or DB_MAX_BYTES full)',
    registers: [registry],
  }),
  storageFull: new client.Gauge({
    name: 'sqlite_storage_full',
    help: '1 from a write refused with SQLITE_FULL until a later batch commits a write without it',
    registers: [registry],
  }),
  checkpoints: new client.Counter({
    name: 'sqlite_checkpoints_total',
    help: 'PASSIVE checkpoints run by the checkpointer thread that found WAL frames (none with REPLICA_URL: Litestream checkpoints)',
    registers: [registry],
  }),
  checkpointSeconds: new client.Histogram({
    name: 'sqlite_checkpoint_seconds',
    help: 'Duration of the checkpointer thread\'s checkpoints (copying WAL pages into the database, and its fsync)',
    buckets: secondsBuckets,
    registers: [registry],
  }),
  checkpointFailures: new client.Counter({
    name: 'sqlite_checkpoint_failures_total',
    help: 'Checkpoints of the checkpointer thread that failed (disk full, I/O error); each is retried with backoff up to 5 s',
    registers: [registry],
  }),
  walFrames: new client.Gauge({
    name: 'sqlite_wal_frames',
    help: 'Frames in the WAL at the checkpointer\'s last checkpoint (the WAL restarts from 0 after a full copy)',
    registers: [registry],
  }),
  readQueueDepth: depthGauge('reader_queue_depth', 'Reads handed to the reader pool and not yet answered', 'reader'),
  stalledResponses: depthGauge(
    'http_stalled_responses',
    'Responses not yet written in full because their client is not reading (at most one per connection)',
    'stalled',
  ),
  slowClientsClosed: new client.Counter({
    name: 'http_slow_clients_closed_total',
    help: 'Connections closed because their client read nothing of a response for SLOW_CLIENT_TIMEOUT_MS',
    registers: [registry],
  }),
  overloaded: new client.Counter({
    name: 'overloaded_rejections_total',
    help: 'Requests refused with 503 overloaded, by queue',
    labelNames: ['queue'] as const,
    registers: [registry],
  }),
  ready: new client.Gauge({ name: 'server_ready', help: '1 when /readyz answers 200', registers: [registry] }),
  leaseHeld: new client.Gauge({ name: 'lease_held', help: '1 while this instance holds the writer lease (REPLICA_URL)', registers: [registry] }),
  leaseEpoch: new client.Gauge({ name: 'lease_epoch', help: 'Epoch of the writer lease this instance holds or last held', registers: [registry] }),
  leaseRenewals: new client.Counter({
    name: 'lease_renewals_total',
    help: 'Writer lease renewals by result: ok, failed (kept until its validity ends), lost',
    labelNames: ['result'] as const,
    registers: [registry],
  }),
  leaderTerms: new client.Counter({
    name: 'leader_terms_total',
    help: 'Terms as the writer, by how they ended: released (handover), lost (superseded or expired), failed (could not start)',
    labelNames: ['end'] as const,
    registers: [registry],
  }),
  standbyHeld: new client.Gauge({ name: 'standby_held_requests', help: 'Requests held waiting for this instance to lead', registers: [registry] }),
  litestreamUp: new client.Gauge({
    name: 'litestream_up',
    help: '1 while the supervised Litestream process runs and its control socket answers; 0 otherwise, and always 0 without REPLICA_URL',
    registers: [registry],
  }),
  litestreamRestarts: new client.Counter({
    name: 'litestream_restarts_total',
    help: 'Times the server restarted Litestream after it died',
    registers: [registry],
  }),
  litestreamSyncSeconds: new client.Histogram({
    name: 'litestream_sync_seconds',
    help: 'Duration of control-socket POST /sync (wait) passes, by outcome',
    labelNames: ['outcome'] as const,
    buckets: secondsBuckets,
    registers: [registry],
  }),
  replicationSyncSeconds: new client.Histogram({
    name: 'replication_sync_seconds',
    help: 'Duration of the durability gate\'s POST /sync passes (confirming durability=replicated writes)',
    buckets: secondsBuckets,
    registers: [registry],
  }),
  replicationSyncs: new client.Counter({
    name: 'replication_syncs_total',
    help: 'Durability gate sync passes, by result: ok, failed (error or timeout), behind (200 but replicated_txid < txid)',
    labelNames: ['result'] as const,
    registers: [registry],
  }),
  replicatedWritesPerSync: new client.Histogram({
    name: 'replicated_writes_per_sync',
    help: 'durability=replicated writes confirmed (or failed) by one sync pass',
    buckets: batchBuckets,
    registers: [registry],
  }),
  replicationWaitSeconds: new client.Histogram({
    name: 'replication_wait_seconds',
    help: 'Time from commit to replica confirmation of durability=replicated writes (confirmed ones only)',
    buckets: secondsBuckets,
    registers: [registry],
  }),
  replicationLagTxids: new client.Gauge({
    name: 'replication_lag_txids',
    help: 'Litestream txid minus replicated_txid at the last gate sync (0 = the replica holds everything)',
    registers: [registry],
  }),
  dataFileLoads: new client.Counter({
    name: 'data_file_loads_total',
    help: 'DATA_FILE reads after a change, by result: applied, unchanged (content already applied), invalid (nothing applied), error (writer failed; retried)',
    labelNames: ['result'] as const,
    registers: [registry],
  }),
};
