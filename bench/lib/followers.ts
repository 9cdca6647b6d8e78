// Read followers (issue 19), with real servers against fake-gcs-server, each node through its own counting proxy:
//   cost     Cloud Storage requests per minute of one follower with defaults (FOLLOWER_POLL_MS 3000, the writer's
//            heartbeat every 5 s): idle, and while the writer takes 100 writes/s; priced at $0.005 per 1,000
//            Class A (LIST) and $0.0004 per 1,000 Class B (GET) operations.
//   lag      under 1,000 writes/s (local durability): every 250 ms one more write is a probe increment, and
//            the follower is read every 20 ms until it shows it: the time from the writer's answer to the follower's.
//   reads    GET /products/{id} at a fixed rate on the writer and on a follower: CPU per read and p50/p99.
// Used by the suite's `followers` scenario (scenarios/followers.ts) and by `npm run bench:followers` (../followers.ts).
import { LITESTREAM_BIN, startGcs } from '../../test/helpers/gcs.js';
import { startLatencyProxy, type LatencyProxy } from '../../test/helpers/latency-proxy.js';
import { killAll, req, startServer, type Running } from '../../test/helpers/server.js';
import { runLoad } from './load.js';
import { procCpuSeconds } from './server.js';
import { createProduct, getProduct } from './workloads.js';

export interface FollowerSettings {
  /** Each cost window (idle, 100 writes/s); operations are scaled to a minute. */
  minuteMs: number;
  /** Seconds of 1,000 writes/s while the lag is probed. */
  lagS: number;
  readRate: number;
  /** Seconds of each read run (after 2 s of warm-up). */
  readS: number;
  /** After the write bursts, before the reads: the writer's Litestream checkpoints and compacts. */
  settleMs: number;
}

export interface GcsOps {
  list: number;
  get: number;
  other: number;
  perMinute: number;
  dollarsPerMonth: number;
}

export interface ReadRun {
  rps: number;
  non2xx: number;
  p50: number;
  p99: number;
  usPerRead: number;
}

export interface FollowerResult {
  settings: FollowerSettings;
  idle: GcsOps;
  at100: GcsOps;
  lag: { samples: number; p50: number; p99: number; max: number };
  reads: { writer: ReadRun; follower: ReadRun };
  followerBucketWrites: number;
}

const CLASS_A = 0.005 / 1000;
const CLASS_B = 0.0004 / 1000;
const MONTH_MIN = 30 * 24 * 60;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Operations a node's proxy forwarded since `since`: LISTs (GET .../o?...) and object GETs. */
function ops(proxy: LatencyProxy, since: number): { list: number; get: number; other: number } {
  const out = { list: 0, get: 0, other: 0 };
  for (const h of proxy.heads) {
    if (h.at < since) continue;
    if (!h.line.startsWith('GET ')) out.other++;
    else if (/\/o\?|\/o HTTP/.test(h.line)) out.list++;
    else out.get++;
  }
  return out;
}

function priced(o: { list: number; get: number; other: number }, windowMs: number): GcsOps {
  const f = (MONTH_MIN * 60_000) / windowMs;
  return { ...o, perMinute: +(((o.list + o.get) * 60_000) / windowMs).toFixed(1), dollarsPerMonth: +(f * (o.list * CLASS_A + o.get * CLASS_B)).toFixed(2) };
}

export async function measureFollowers(st: FollowerSettings, progress: (line: string) => void): Promise<FollowerResult> {
  const MINUTE_MS = st.minuteMs;
  const gcs = await startGcs();
  await gcs.createBucket('bench');
  const url = 'gs://bench/followers';
  const base = { REPLICA_URL: url, LITESTREAM_BIN: LITESTREAM_BIN!, LITESTREAM_METRICS_ADDR: 'off' };
  const wProxy = await startLatencyProxy(gcs.port);
  const fProxy = await startLatencyProxy(gcs.port);
  const writer = await startServer({ env: { ...base, STORAGE_EMULATOR_HOST: wProxy.host }, timeoutMs: 60_000 });
  // The seed: 10,000 products for the read runs, replicated before the follower restores.
  for (let i = 0; i < 100; i++) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => req(writer.url, 'POST', '/products', { name: `p${i * 100 + j}`, price: 1 })));
  }
  await req(writer.url, 'POST', '/counters/probe/increment', { by: 1 }, { Prefer: 'durability=replicated' });
  const follower: Running = await startServer({
    env: { ...base, STORAGE_EMULATOR_HOST: fProxy.host, ROLE: 'follower', WRITER_URL: writer.url },
    timeoutMs: 60_000,
  });
  const result = { settings: st } as FollowerResult;
  try {
    // Cost, idle (only the writer's heartbeats move the position).
    await sleep(2000);
    let t0 = performance.now();
    await sleep(MINUTE_MS);
    const idle = ops(fProxy, t0);
    result.idle = priced(idle, MINUTE_MS);
    progress(`followers idle: ${JSON.stringify(result.idle)}`);

    // Cost at 100 writes/s, and lag under 1,000 writes/s.
    t0 = performance.now();
    await runLoad(writer.url, { connections: 4, durationS: MINUTE_MS / 1000, rate: 100, requests: createProduct.requests });
    const busy = ops(fProxy, t0);
    result.at100 = priced(busy, MINUTE_MS);
    progress(`followers, writer at 100 writes/s: ${JSON.stringify(result.at100)}`);

    // Lag: a probe increment every 250 ms among the load's writes, each watched on the follower (every 20 ms) until
    // it shows: from the writer's answer to the follower's first read that has it.
    const lags: number[] = [];
    const probes: Promise<void>[] = [];
    const probe = async () => {
      const w = await req(writer.url, 'POST', '/counters/probe/increment', { by: 1 });
      const acked = performance.now();
      const want = w.body.value as number;
      for (;;) {
        const r = await req(follower.url, 'GET', '/counters/probe');
        if (r.status === 200 && r.body.value >= want) break;
        await sleep(20);
      }
      lags.push(performance.now() - acked);
    };
    const ticker = setInterval(() => probes.push(probe()), 250);
    await runLoad(writer.url, { connections: 16, durationS: st.lagS, rate: 1000, requests: createProduct.requests });
    clearInterval(ticker);
    await Promise.all(probes);
    lags.sort((a, b) => a - b);
    const q = (p: number) => Math.round(lags[Math.min(lags.length - 1, Math.floor(p * lags.length))]!);
    result.lag = { samples: lags.length, p50: q(0.5), p99: q(0.99), max: Math.round(lags.at(-1)!) };
    progress(`followers lag under 1,000 writes/s: ${JSON.stringify(result.lag)}`);

    // Settle before the reads: the follower has applied everything (a replicated write read back with its Bookmark
    // from the copy), and the writer's Litestream has had time to checkpoint and compact after the burst.
    const last = await req(writer.url, 'POST', '/counters/probe/increment', { by: 1 }, { Prefer: 'durability=replicated' });
    for (;;) {
      const r = await req(follower.url, 'GET', '/counters/probe', undefined, { Bookmark: last.headers.get('bookmark')! });
      if (Number(r.headers.get('replica-position')) >= Number(last.headers.get('bookmark'))) break;
    }
    await sleep(st.settleMs);

    // Reads: the same fixed rate on each, CPU per read from /proc.
    const reads = {} as FollowerResult['reads'];
    for (const [name, s] of [['writer', writer], ['follower', follower]] as const) {
      await runLoad(s.url, { connections: 32, durationS: 2, rate: st.readRate, requests: getProduct.requests });
      const c0 = procCpuSeconds(s.proc.pid!);
      const r = await runLoad(s.url, { connections: 32, durationS: st.readS, rate: st.readRate, requests: getProduct.requests });
      const cpu = procCpuSeconds(s.proc.pid!) - c0;
      reads[name] = { rps: Math.round(r.rps), non2xx: r.non2xx, p50: +r.latencyMs.p50.toFixed(2), p99: +r.latencyMs.p99.toFixed(2), usPerRead: +((1e6 * cpu) / r.responses).toFixed(1) };
      progress(`followers reads on the ${name}: ${JSON.stringify(reads[name])}`);
    }
    result.reads = reads;
    result.followerBucketWrites = ops(fProxy, 0).other;
  } finally {
    await follower.stop();
    await writer.stop();
    await killAll();
    await gcs.stop();
    await wProxy.close();
    await fProxy.close();
  }
  return result;
}

/** The results as markdown: the cost table, the lag line, the reads table. */
export function followersMarkdown(r: FollowerResult): string[] {
  const perMin = (n: number) => ((n * 60_000) / r.settings.minuteMs).toFixed(1);
  return [
    '| follower | Cloud Storage LIST / GET per minute | cost per month (operations) |',
    '|---|---|---|',
    `| idle (the writer only beats) | ${perMin(r.idle.list)} / ${perMin(r.idle.get)} | $${r.idle.dollarsPerMonth.toFixed(2)} |`,
    `| the writer taking 100 writes/s | ${perMin(r.at100.list)} / ${perMin(r.at100.get)} | $${r.at100.dollarsPerMonth.toFixed(2)} |`,
    '',
    `Requests from the follower to the bucket other than GETs: ${r.followerBucketWrites}. Lag under 1,000 writes/s (local durability, ` +
      `a probe every 250 ms, ${r.settings.lagS} s): p50 ${r.lag.p50} ms, p99 ${r.lag.p99} ms, max ${r.lag.max} ms (${r.lag.samples} probes).`,
    '',
    `| GET /products/{id} at ${r.settings.readRate}/s, 32 connections | req/s | p50 / p99 ms | CPU per read |`,
    '|---|---|---|---|',
    ...(['writer', 'follower'] as const).map((n) => `| ${n} | ${r.reads[n].rps} | ${r.reads[n].p50} / ${r.reads[n].p99} | ${r.reads[n].usPerRead} us |`),
  ];
}
