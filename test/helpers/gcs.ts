// The external tools the replication tests run for real: litestream (pinned in .litestream-version) and
// fake-gcs-server (a GCS JSON/XML API on loopback). Missing tools skip those tests with an install hint,
// except under CI=true, where a missing tool is a failure.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ROOT, tempDir } from './server.js';

export const LITESTREAM_VERSION = fs.readFileSync(path.join(ROOT, '.litestream-version'), 'utf8').trim();
export const FAKE_GCS_VERSION = 'v1.56.1';

const INSTALL: Record<string, string> = {
  litestream: `go install github.com/benbjohnson/litestream/cmd/litestream@${LITESTREAM_VERSION}`,
  'fake-gcs-server': `go install github.com/fsouza/fake-gcs-server@${FAKE_GCS_VERSION}`,
};

/** `name` from $<ENV>, PATH, or Go's default install dir (GOBIN / ~/go/bin); null if none exists. */
export function findTool(name: 'litestream' | 'fake-gcs-server', envVar: string): string | null {
  const candidates = [
    process.env[envVar],
    ...(process.env.PATH ?? '').split(path.delimiter).map((d) => d && path.join(d, name)),
    process.env.GOBIN && path.join(process.env.GOBIN, name),
    path.join(process.env.GOPATH ?? path.join(os.homedir(), 'go'), 'bin', name),
  ];
  for (const c of candidates) {
    if (!c) continue;
    try {
      fs.accessSync(c, fs.constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return null;
}

export const LITESTREAM_BIN = findTool('litestream', 'LITESTREAM_BIN');
export const FAKE_GCS_BIN = findTool('fake-gcs-server', 'FAKE_GCS_BIN');

/**
 * Why the replication tests cannot run here ('' = they can). Under CI=true this throws instead: CI must
 * install the tools (.ci/run does), and a silently skipped suite would prove nothing.
 */
export function missingTools(): string {
  const missing = [
    LITESTREAM_BIN ? null : 'litestream',
    FAKE_GCS_BIN ? null : 'fake-gcs-server',
  ].filter((x): x is string => x !== null);
  if (missing.length === 0) return '';
  const msg = `replication tests need ${missing.join(' and ')}: install with ${missing.map((t) => `\`${INSTALL[t]}\``).join(' and ')} (then put $(go env GOPATH)/bin on PATH)`;
  if (process.env.CI === 'true') throw new Error(`CI=true: ${msg}`);
  console.warn(`SKIPPED: ${msg}`);
  return msg;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface Gcs {
  port: number;
  /** For STORAGE_EMULATOR_HOST. */
  host: string;
  proc: ChildProcess;
  createBucket(name: string): Promise<void>;
  /** Object names under `prefix` in `bucket`. */
  list(bucket: string, prefix?: string): Promise<string[]>;
  stop(): Promise<void>;
}

const running = new Set<Gcs>();

/** Stops every emulator a test left running (call from afterAll). */
export async function stopAllGcs(): Promise<void> {
  await Promise.all([...running].map((g) => g.stop()));
}

/** Starts fake-gcs-server on a free loopback port (its reads need Host = -public-host, hence the flags). */
export async function startGcs(opts: { backend?: 'memory' | 'filesystem'; port?: number; publicHost?: string } = {}): Promise<Gcs> {
  if (!FAKE_GCS_BIN) throw new Error('fake-gcs-server not installed');
  for (let attempt = 0; ; attempt++) {
    const port = opts.port ?? (await freePort());
    // publicHost: the host:port clients use, when they reach it through a proxy (test/helpers/latency-proxy.ts).
    const args = ['-scheme', 'http', '-host', '127.0.0.1', '-port', String(port), '-public-host', opts.publicHost ?? `127.0.0.1:${port}`];
    args.push('-external-url', `http://127.0.0.1:${port}`, '-log-level', 'warn');
    if (opts.backend === 'filesystem') args.push('-backend', 'filesystem', '-filesystem-root', tempDir('fake-gcs-'));
    else args.push('-backend', 'memory');
    const proc = spawn(FAKE_GCS_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    const base = `http://127.0.0.1:${port}`;
    const up = await waitUp(base, proc, 10_000);
    if (!up) {
      proc.kill('SIGKILL');
      await exited;
      if (attempt < 3 && opts.port === undefined) continue; // the free port was taken meanwhile
      throw new Error(`fake-gcs-server did not start on ${port}:\n${err}`);
    }
    const gcs: Gcs = {
      port,
      host: `127.0.0.1:${port}`,
      proc,
      async createBucket(name) {
        const r = await fetch(`${base}/storage/v1/b?project=test`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name }),
        });
        if (!r.ok) throw new Error(`create bucket ${name}: ${r.status} ${await r.text()}`);
      },
      async list(bucket, prefix = '') {
        const names: string[] = [];
        let token = '';
        do {
          const r = await fetch(`${base}/storage/v1/b/${bucket}/o?prefix=${encodeURIComponent(prefix)}&pageToken=${token}`);
          const j = (await r.json()) as { items?: { name: string }[]; nextPageToken?: string };
          names.push(...(j.items ?? []).map((i) => i.name));
          token = j.nextPageToken ?? '';
        } while (token);
        return names;
      },
      async stop() {
        running.delete(gcs);
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      },
    };
    running.add(gcs);
    return gcs;
  }
}

async function waitUp(base: string, proc: ChildProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) return false;
    try {
      const r = await fetch(`${base}/storage/v1/b`);
      if (r.ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** `litestream version`, e.g. "v0.5.18". */
export function litestreamVersion(bin: string): string {
  return spawnSync(bin, ['version'], { encoding: 'utf8' }).stdout.trim();
}
