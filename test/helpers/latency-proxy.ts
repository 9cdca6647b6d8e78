// A TCP proxy for putting latency (and outages) between Litestream and fake-gcs-server: every chunk from the client
// is held `delayMs` before it goes upstream (so each request arrives that much later, as over a longer path), and
// `stall()` holds everything in both directions until `resume()` (dropping what a client that closed meanwhile
// sent). It counts HTTP requests (chunks that start with a method) for "GCS requests per second", and logs their
// request lines. `upBytesPerSec` caps each connection's upstream bandwidth (an upload as over a slow link, without the
// CPU a fast one costs). Used by test/durability.test.ts, the lease tests (test/helpers/cluster.ts), the large
// restore tests and bench/durability.ts.
import net from 'node:net';
import { renameHost } from '../../src/replication/egress.js';

export interface LatencyProxy {
  port: number;
  /** For STORAGE_EMULATOR_HOST. */
  host: string;
  delayMs: number;
  /** HTTP requests forwarded so far (approximate: a request whose head starts a chunk). */
  requests: number;
  /** Their request lines and when they arrived (performance.now()), e.g. to find uploads after a moment. */
  heads: { at: number; line: string }[];
  /** Bytes forwarded upstream so far (request heads and bodies: what an upload costs). */
  bytesUp: number;
  stall(): void;
  resume(): void;
  close(): Promise<void>;
}

const METHOD = /^(GET|POST|PUT|PATCH|DELETE|HEAD) /;

/**
 * `hostRewrite` (default on): request heads naming the proxy as Host name the emulator instead, so reads work with
 * the emulator's own public host. Its resumable upload sessions then go straight to the emulator (their URLs name
 * it): the proxy sees each upload's first request, not its data. Off: start the emulator with the proxy as its
 * public host (startGcs publicHost) to route everything through here, e.g. to count upload bytes.
 */
export async function startLatencyProxy(
  upstreamPort: number,
  delayMs = 0,
  opts: { hostRewrite?: boolean; upBytesPerSec?: number } = {},
): Promise<LatencyProxy> {
  const hostRewrite = opts.hostRewrite ?? true;
  const rate = opts.upBytesPerSec ?? 0;
  let stalled = false;
  const held: (() => void)[] = [];
  const sockets = new Set<net.Socket>();
  const proxy: LatencyProxy = {
    port: 0,
    host: '',
    delayMs,
    requests: 0,
    heads: [],
    bytesUp: 0,
    stall: () => void (stalled = true),
    resume() {
      stalled = false;
      for (const f of held.splice(0)) f();
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  // Order is kept: chunks of one direction are delayed by the same amount, and timers of equal delay fire in order.
  // A chunk held by a stall is dropped if its sender is gone by the time the stall ends (`alive`): as in a network
  // partition, where what a process had not yet got onto the wire dies with its socket.
  const pass = (f: () => void, delay: number, alive?: () => boolean) => {
    const go = () => (stalled ? held.push(alive ? () => alive() && f() : f) : f());
    if (delay > 0) setTimeout(go, delay);
    else go();
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    let clientGone = false;
    sockets.add(client).add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.on('data', (b: Buffer) => {
      if (METHOD.test(b.subarray(0, 8).toString('latin1'))) {
        proxy.requests++;
        if (hostRewrite) b = renameHost(b, `127.0.0.1:${proxy.port}`, `127.0.0.1:${upstreamPort}`);
        const nl = b.indexOf(13);
        proxy.heads.push({ at: performance.now(), line: b.subarray(0, nl > 0 ? Math.min(nl, 600) : 600).toString('latin1') });
      }
      proxy.bytesUp += b.length;
      pass(() => upstream.write(b), proxy.delayMs, () => !clientGone);
      if (rate > 0) {
        // The next chunk is read only once this one has had its time on the link (TCP pushes back on the sender).
        client.pause();
        setTimeout(() => client.resume(), (b.length / rate) * 1000);
      }
    });
    upstream.on('data', (b) => pass(() => client.write(b), 0));
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', () => {
      clientGone = true;
      pass(end, proxy.delayMs);
    });
    upstream.on('close', () => pass(end, 0));
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = (server.address() as net.AddressInfo).port;
  proxy.host = `127.0.0.1:${proxy.port}`;
  return proxy;
}
