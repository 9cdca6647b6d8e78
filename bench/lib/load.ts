// Load generation with autocannon's programmatic API, plus two things it lacks:
// - per-response latencies at microsecond resolution (its own histogram rounds to whole milliseconds);
// - a smooth fixed rate: autocannon's overallRate lets every connection fire its whole per-second budget
//   at the start of each second (a burst, then silence), so a "5,000 req/s" run is really 1-second bursts
//   at full speed. Here a shared token bucket refilled every millisecond releases requests evenly.
import autocannon, { type Request, type Result } from 'autocannon';

export interface LoadSpec {
  connections: number;
  /** Seconds; ignored when `amount` is set. */
  durationS?: number;
  /** Exact total: each connection sends amount/connections requests (the remainder spread), then closes. */
  amount?: number;
  /** Overall requests per second, paced evenly across the connections. */
  rate?: number;
  /** Built fresh for every run (workloads keep per-run state such as the ids they created). */
  requests: () => Request[];
  timeoutS?: number;
}

export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface LoadResult {
  connections: number;
  /** Seconds from start to the last response. */
  elapsedS: number;
  /** Responses received (any status). */
  responses: number;
  rps: number;
  ok2xx: number;
  non2xx: number;
  status: Record<string, number>;
  /** Connection errors and timeouts (autocannon counts timeouts as errors too). */
  errors: number;
  timeouts: number;
  /** Milliseconds, over every response. */
  latencyMs: Latency;
  /** Cores the load generator process used on average (1.0 = one core busy). */
  generatorCores: number;
  /** Fixed-rate runs: latencyMs counts from when each request was due; this one from when it was sent. */
  targetRate?: number;
  serviceLatencyMs?: Latency;
}

class Samples {
  private buf = new Float64Array(1 << 16);
  n = 0;
  push(v: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = v;
  }
  summary(): Latency {
    if (this.n === 0) return { p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN, mean: NaN };
    const s = this.buf.slice(0, this.n).sort();
    const at = (q: number) => s[Math.min(this.n - 1, Math.max(0, Math.ceil(q * this.n) - 1))]!;
    let sum = 0;
    for (let i = 0; i < this.n; i++) sum += s[i]!;
    return { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: s[this.n - 1]!, mean: sum / this.n };
  }
}

interface PacedClient {
  destroyed: boolean;
  _doRequest: (...args: unknown[]) => void;
  /** When the request now in flight was due by the schedule (performance.now() ms). */
  benchDue?: number;
}

/**
 * An open-loop schedule shared by all connections, like wrk2: request k is due at start + k / rate.
 * A free connection takes the oldest due slot at once, or waits for the next one (released by a 1 ms
 * timer). When every connection is busy, due slots pile up and the connection that frees up first
 * sends the oldest one late: its latency counts from when it was due, so a stalled server cannot hide
 * behind fewer requests (coordinated omission).
 */
function createPacer(rate: number) {
  const interval = 1000 / rate;
  // The schedule starts once the connections have had time to open (they all open at once).
  const startAt = performance.now() + 100;
  let nextDue = startAt;
  let waiting: (() => boolean)[] = [];
  let head = 0;
  const release = () => {
    const now = performance.now();
    while (head < waiting.length && nextDue <= now) {
      if (waiting[head++]!()) nextDue += interval;
    }
    if (head > 4096) {
      waiting = waiting.slice(head);
      head = 0;
    }
  };
  const timer = setInterval(release, 1);
  return {
    startAt,
    wrap(client: unknown): void {
      const c = client as PacedClient;
      const original = c._doRequest;
      if (typeof original !== 'function') {
        throw new Error('autocannon internals changed (Client._doRequest missing): the fixed-rate pacer needs updating');
      }
      const send = (): boolean => {
        if (c.destroyed) return false;
        c.benchDue = nextDue;
        original.call(c);
        return true;
      };
      c._doRequest = function paced() {
        if (c.destroyed) return original.call(c);
        if (head === waiting.length && nextDue <= performance.now()) {
          send();
          nextDue += interval;
        } else waiting.push(send);
      };
    },
    stop(): void {
      clearInterval(timer);
    },
  };
}

export async function runLoad(url: string, spec: LoadSpec): Promise<LoadResult> {
  const samples = new Samples();
  const service = spec.rate ? new Samples() : null;
  const pacer = spec.rate ? createPacer(spec.rate) : null;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let lastResponse = t0;
  const instance = autocannon({
    url,
    connections: spec.connections,
    duration: spec.durationS ?? 10,
    ...(spec.amount !== undefined ? { amount: spec.amount } : {}),
    timeout: spec.timeoutS ?? 10,
    requests: spec.requests(),
    // Stop checks run on this sample interval (default 1 s, which would stretch short runs).
    sampleInt: 100,
    ...(pacer ? { setupClient: (c: unknown) => pacer.wrap(c) } : {}),
  } as Parameters<typeof autocannon>[0]);
  instance.on('response', (client: PacedClient, _status: number, _bytes: number, ms: number) => {
    lastResponse = performance.now();
    // Paced runs: from when the request was due (includes any wait for a free connection).
    samples.push(client.benchDue !== undefined ? lastResponse - client.benchDue : ms);
    service?.push(ms);
  });
  let result: Result;
  try {
    result = await instance;
  } finally {
    pacer?.stop();
  }
  const elapsedS = Math.max(1e-3, (lastResponse - (pacer ? pacer.startAt : t0)) / 1000);
  const cpu = process.cpuUsage(cpu0);
  const status: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats ?? {})) status[code] = count;
  return {
    connections: spec.connections,
    elapsedS,
    responses: samples.n,
    rps: samples.n / elapsedS,
    ok2xx: result['2xx'],
    non2xx: result.non2xx,
    status,
    errors: result.errors,
    timeouts: result.timeouts,
    latencyMs: samples.summary(),
    generatorCores: (cpu.user + cpu.system) / 1e6 / ((performance.now() - t0) / 1000),
    ...(spec.rate && service ? { targetRate: spec.rate, serviceLatencyMs: service.summary() } : {}),
  };
}
