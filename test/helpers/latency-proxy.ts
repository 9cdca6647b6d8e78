// A TCP proxy for putting latency (and outages) between Litestream and fake-gcs-server: every chunk from the client
// is held `delayMs` before it goes upstream (so each request arrives that much later, as over a longer path), and
// `stall()` holds everything in both directions until `resume()`. It counts HTTP requests (chunks that start with a
// method) for "GCS requests per second". Used by test/durability.test.ts and bench/durability.ts.
import net from 'node:net';

export interface LatencyProxy {
  port: number;
  /** For STORAGE_EMULATOR_HOST. */
  host: string;
  delayMs: number;
  /** HTTP requests forwarded so far (approximate: a request whose head starts a chunk). */
  requests: number;
  stall(): void;
  resume(): void;
  close(): Promise<void>;
}

const METHOD = /^(GET|POST|PUT|PATCH|DELETE|HEAD) /;

export async function startLatencyProxy(upstreamPort: number, delayMs = 0): Promise<LatencyProxy> {
  let stalled = false;
  const held: (() => void)[] = [];
  const sockets = new Set<net.Socket>();
  const proxy: LatencyProxy = {
    port: 0,
    host: '',
    delayMs,
    requests: 0,
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
  const pass = (f: () => void, delay: number) => {
    const go = () => (stalled ? held.push(f) : f());
    if (delay > 0) setTimeout(go, delay);
    else go();
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.on('data', (b) => {
      if (METHOD.test(b.subarray(0, 8).toString('latin1'))) proxy.requests++;
      pass(() => upstream.write(b), proxy.delayMs);
    });
    upstream.on('data', (b) => pass(() => client.write(b), 0));
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', () => pass(end, proxy.delayMs));
    upstream.on('close', () => pass(end, 0));
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = (server.address() as net.AddressInfo).port;
  proxy.host = `127.0.0.1:${proxy.port}`;
  return proxy;
}
