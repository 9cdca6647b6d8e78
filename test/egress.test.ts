// The fenced egress (src/replication/egress.ts): Litestream's bytes towards the bucket pass only while the fence is
// valid. Real sockets on loopback, the server's own Fence; a TCP server stands for the bucket.
import net from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FencedEgress } from '../src/replication/egress.js';
import { Fence, monotonicMs } from '../src/shared/fence.js';
import { waitFor } from './helpers/wait.js';

const log = pino({ level: 'silent' });
const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

/** A TCP server that records what it receives and answers "ok:<bytes>" to each chunk. */
async function bucket(): Promise<{ port: number; received: () => string }> {
  let got = '';
  const server = net.createServer((s) => s.on('data', (b) => ((got += b.toString()), s.write(`ok:${b.toString()}`))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => server.close());
  return { port: (server.address() as net.AddressInfo).port, received: () => got };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
    closers.push(() => s.destroy());
  });
}

const readSome = (s: net.Socket) => new Promise<string>((resolve) => s.once('data', (b) => resolve(b.toString())));
const closed = (s: net.Socket) => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));

describe('fenced egress', () => {
  it('CONNECT tunnel: bytes pass while the lease is valid; after the fence drops the next chunk cuts the tunnel and never arrives', async () => {
    const b = await bucket();
    const fence = new Fence();
    fence.open(1, monotonicMs() + 60_000);
    const egress = new FencedEgress(fence, null, log, (host, port) => host === '127.0.0.1' && port === b.port);
    await egress.listen();
    closers.push(() => egress.close());
    const proxyPort = Number(egress.env().HTTPS_PROXY!.split(':').pop());

    const s = await connect(proxyPort);
    s.write(`CONNECT 127.0.0.1:${b.port} HTTP/1.1\r\nHost: 127.0.0.1:${b.port}\r\n\r\n`);
    expect(await readSome(s)).toMatch(/^HTTP\/1\.1 200/);
    s.write('upload-1');
    expect(await readSome(s)).toBe('ok:upload-1');

    fence.revoke();
    s.write('upload-2');
    await closed(s);
    await new Promise((r) => setTimeout(r, 100));
    expect(b.received()).toBe('upload-1');
    expect(egress.refused).toBe(1);

    // A new tunnel is not even opened while the fence is down.
    const t = await connect(proxyPort);
    await closed(t);
  });

  it('CONNECT only to the allowed hosts (Cloud Storage): anything else gets 403', async () => {
    const fence = new Fence();
    fence.open(1, monotonicMs() + 60_000);
    const egress = new FencedEgress(fence, null, log);
    await egress.listen();
    closers.push(() => egress.close());
    const s = await connect(Number(egress.env().HTTPS_PROXY!.split(':').pop()));
    s.write('CONNECT 127.0.0.1:22 HTTP/1.1\r\n\r\n');
    expect(await readSome(s)).toMatch(/^HTTP\/1\.1 403/);
  });

  it('emulator mode: piped to the emulator, Host renamed to it; a fence that expires on its own clock cuts the connection', async () => {
    const b = await bucket();
    const fence = new Fence();
    fence.open(1, monotonicMs() + 400); // expires by itself: nobody calls revoke(), as in a frozen process
    const egress = new FencedEgress(fence, `127.0.0.1:${b.port}`, log);
    await egress.listen();
    closers.push(() => egress.close());
    const self = egress.env().STORAGE_EMULATOR_HOST!;
    const s = await connect(Number(self.split(':')[1]));
    s.write(`GET /b/x/o/y HTTP/1.1\r\nHost: ${self}\r\n\r\n`);
    await readSome(s);
    expect(b.received()).toContain(`Host: 127.0.0.1:${b.port}\r\n`);
    await waitFor(() => !fence.valid(), 'the fence to expire', 2000);
    s.write('POST /upload/late HTTP/1.1\r\n\r\n');
    await closed(s);
    expect(b.received()).not.toContain('/upload/late');
  });
});
