// Fenced egress: every byte Litestream's `replicate` sends towards Cloud Storage passes through this process, which
// forwards it only while the writer lease is valid (src/shared/fence.ts), checked on its own monotonic clock per
// chunk. Litestream's uploads are unconditional (no GCS preconditions in 0.5.18), so without this a container frozen
// past its lease and then thawed could have its Litestream upload an L0 file in the instant before the server kills
// it, overwriting the new leader's file of the same TXID (seen in the lease chaos soak). Here the first chunk such an
// upload sends after the thaw finds the fence expired, and the connection is cut before it reaches the bucket.
//
// Two ways in, chosen by the environment Litestream would otherwise use:
//   Cloud Storage (https)   Litestream gets HTTPS_PROXY=http://127.0.0.1:<port>; each CONNECT to an allowed host
//                           (*.googleapis.com:443) becomes a tunnel whose client-to-bucket bytes are fenced. TLS is
//                           not opened: only whether bytes may pass is decided here.
//   An emulator (http)      Litestream gets STORAGE_EMULATOR_HOST=127.0.0.1:<port>; each connection is piped to the
//                           emulator, request heads naming this listener as Host name the emulator instead.
// `litestream restore` (reads, before a term's fence opens) does not come through here.
import net from 'node:net';
import type { Logger } from '../shared/log.js';

export interface EgressFence {
  valid(): boolean;
}

const METHOD = /^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) /;

export class FencedEgress {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private port = 0;
  /** Chunks refused because the fence was down (for the log and the tests). */
  refused = 0;

  constructor(
    private readonly fence: EgressFence,
    /** host:port of an emulator (STORAGE_EMULATOR_HOST), or null: CONNECT tunnels to `allowConnect` hosts. */
    private readonly emulator: string | null,
    private readonly log: Logger,
    private readonly allowConnect: (host: string, port: number) => boolean = (host, port) => port === 443 && /(^|\.)googleapis\.com$/.test(host),
  ) {}

  async listen(): Promise<void> {
    const server = net.createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    server.unref();
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
    this.log.info({ port: this.port, mode: this.emulator ? 'emulator' : 'connect' }, 'fenced egress for litestream listening');
  }

  /** What Litestream's environment gets so that its traffic to the bucket comes through here. */
  env(): Record<string, string> {
    if (!this.port) throw new Error('fenced egress: listen() first');
    const self = `127.0.0.1:${this.port}`;
    return this.emulator ? { STORAGE_EMULATOR_HOST: self } : { HTTPS_PROXY: `http://${self}`, https_proxy: `http://${self}` };
  }

  /** The lease is gone: every open connection is cut at once (new ones are refused by the fence check). */
  cut(): void {
    if (this.sockets.size > 0) this.log.warn({ connections: this.sockets.size }, 'writer lease gone: litestream connections to the bucket cut');
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  close(): void {
    this.cut();
    this.server?.close();
    this.server = null;
  }

  private track(...sockets: net.Socket[]): void {
    for (const s of sockets) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => {});
    }
  }

  private accept(client: net.Socket): void {
    this.track(client);
    if (!this.fence.valid()) {
      this.refuse(client);
      return;
    }
    if (this.emulator) {
      const [host, port] = splitHostPort(this.emulator);
      const upstream = net.connect(port, host);
      this.track(upstream);
      this.pipe(client, upstream, (chunk) => this.renameHost(chunk));
      return;
    }
    // CONNECT host:port HTTP/1.1 ... \r\n\r\n, then a tunnel.
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 8192) client.destroy();
        return;
      }
      client.off('data', onData);
      client.pause();
      const m = /^CONNECT ([^\s:]+):(\d+) HTTP\/1\.[01]\r\n/i.exec(head.subarray(0, end + 2).toString('latin1'));
      if (!m || !this.allowConnect(m[1]!, Number(m[2]))) {
        client.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
      }
      const upstream = net.connect(Number(m[2]), m[1]!, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        const rest = head.subarray(end + 4);
        if (rest.length > 0 && !this.forward(client, upstream, rest)) return;
        this.pipe(client, upstream, (c) => c);
        client.resume();
      });
      this.track(upstream);
      upstream.on('error', () => client.destroy());
    };
    client.on('data', onData);
  }

  /** client -> upstream fenced chunk by chunk; upstream -> client as it comes. */
  private pipe(client: net.Socket, upstream: net.Socket, transform: (chunk: Buffer) => Buffer): void {
    client.on('data', (chunk: Buffer) => void this.forward(client, upstream, transform(chunk)));
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  /** One chunk towards the bucket, if the lease is still valid now; otherwise both ends are cut. */
  private forward(client: net.Socket, upstream: net.Socket, chunk: Buffer): boolean {
    if (this.fence.valid()) {
      upstream.write(chunk);
      return true;
    }
    this.refuse(client);
    upstream.destroy();
    return false;
  }

  private refuse(client: net.Socket): void {
    this.refused++;
    if (this.refused === 1 || this.refused % 100 === 0) this.log.warn({ refused: this.refused }, 'litestream tried to send to the bucket without a valid writer lease: cut');
    client.destroy();
  }

  /** Emulator mode: request heads name the emulator as Host (it serves reads only for its own host name). */
  private renameHost(chunk: Buffer): Buffer {
    return renameHost(chunk, `127.0.0.1:${this.port}`, this.emulator!);
  }
}

/**
 * A chunk that starts an HTTP request and names `from` as its Host, naming `to` instead (the rest of the chunk, body
 * bytes, copied as it came). fake-gcs-server answers XML-API reads (what Litestream uses to read) only for its own
 * public host, so whatever stands between Litestream and it must do this. Heads arrive whole in their first chunk
 * (small requests on loopback). Also used by the tests' latency proxy (test/helpers/latency-proxy.ts).
 */
export function renameHost(chunk: Buffer, from: string, to: string): Buffer {
  if (!METHOD.test(chunk.subarray(0, 8).toString('latin1'))) return chunk;
  const text = chunk.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  const escaped = from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // Host may be the head's last line (no CRLF after it within `head`).
  const fixed = head.replace(new RegExp(`\\r\\nhost: ${escaped}(?=\\r\\n|$)`, 'i'), `\r\nHost: ${to}`);
  return fixed === head ? chunk : Buffer.concat([Buffer.from(fixed, 'latin1'), chunk.subarray(Buffer.byteLength(head, 'latin1'))]);
}

/** `http://h:p`, `h:p` -> [h, p]. */
export function splitHostPort(hostPort: string): [string, number] {
  const bare = hostPort.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  const i = bare.lastIndexOf(':');
  return i < 0 ? [bare, 80] : [bare.slice(0, i), Number(bare.slice(i + 1))];
}
