// Several real servers on one replica (one fake-gcs-server bucket), each with its own data directory and its own
// TCP proxy to the emulator (to count what each one sends, and to cut one off), each in its own process group;
// groupKill() signals that group and its Litestreams' (so a SIGSTOP or SIGKILL reaches everything, as when Cloud
// Run freezes or loses a whole container). Used by test/lease-cluster.test.ts and test/lease-chaos.test.ts.
import path from 'node:path';
import { afterAll } from 'vitest';
import { startGcs, stopAllGcs, type Gcs } from './gcs.js';
import { startLatencyProxy, type LatencyProxy } from './latency-proxy.js';
import { litestreamPids, replicaEnv } from './replica.js';
import { killAll, req, startServer, tempDir, type Running } from './server.js';
import { logLines, waitFor } from './wait.js';

/** Short lease timings so a takeover takes ~3 s instead of ~18 s (margin = TTL / 5). */
export const LEASE_ENV = { LEASE_TTL_MS: '2000', LEASE_RENEW_MS: '400' };
export const TAKEOVER_MS = 2000 + 400;

export interface Node {
  name: string;
  s: Running;
  proxy: LatencyProxy;
  dbPath: string;
  /** performance.now() when it was started. */
  startedAt: number;
  /** Set when the test killed it (kill -9): its term ended then, without a log line. */
  killedAt?: number;
}

/** One term as the writer, from a node's log lines (wall-clock ms). */
export interface TermRecord {
  node: string;
  epoch: number;
  startedAt: number;
  endedAt: number | null;
  end: string | null;
  batches: number | null;
  firstCommitAt: number | null;
  lastCommitAt: number | null;
}

export interface Cluster {
  gcs: Gcs;
  url: string;
  start(name: string, opts?: { dbPath?: string; env?: Record<string, string> }): Promise<Node>;
  /** Waits until `node` logs that it leads (its n-th term, counting from 1). */
  leading(node: Node, nth?: number, timeoutMs?: number): Promise<void>;
  /** Every term every node logged (killed nodes' last term ends at the kill). */
  terms(): TermRecord[];
  /** SIGKILL to the node's whole group (server and Litestream). */
  crash(node: Node): Promise<void>;
  /** Every node's warnings, errors and lease transitions, for an assertion's message when a run goes wrong. */
  leaseLog(): string;
  nodes: Node[];
}

const wall = (iso: unknown) => (typeof iso === 'string' ? Date.parse(iso) : null);

export function useCluster(bucket: string): () => Promise<Cluster> {
  const created: Cluster[] = [];
  afterAll(async () => {
    for (const c of created) for (const n of c.nodes) groupKill(n, 'SIGKILL');
    await killAll();
    for (const c of created) await Promise.all(c.nodes.map((n) => n.proxy.close()));
    await stopAllGcs();
  });
  let count = 0;
  return async () => {
    const gcs = await startGcs();
    await gcs.createBucket(bucket);
    const url = `gs://${bucket}/c${++count}`;
    const nodes: Node[] = [];
    const cluster: Cluster = {
      gcs,
      url,
      nodes,
      async start(name, opts = {}) {
        const proxy = await startLatencyProxy(gcs.port);
        const dbPath = opts.dbPath ?? path.join(tempDir(`node-${name}-`), 'app.db');
        const startedAt = performance.now();
        const s = await startServer({
          dbPath,
          detached: true,
          timeoutMs: 60_000,
          env: replicaEnv(gcs, url, { STORAGE_EMULATOR_HOST: proxy.host, ...LEASE_ENV, ...opts.env }),
        });
        const node: Node = { name, s, proxy, dbPath, startedAt };
        nodes.push(node);
        return node;
      },
      async leading(node, nth = 1, timeoutMs = 30_000) {
        await waitFor(() => logLines(node.s, 'leading: term started').length >= nth, `${node.name} leading (term ${nth})`, timeoutMs).catch((err: Error) => {
          const lines = node.s.output().split('\n').filter((l) => !l.includes('"component":"http"') && !l.includes('"litestream: '));
          throw new Error(`${err.message}\n--- ${node.name} output (no access log) ---\n${lines.slice(-40).join('\n')}`);
        });
      },
      terms() {
        const out: TermRecord[] = [];
        for (const n of nodes) {
          const started = logLines(n.s, 'leading: term started');
          const ended = logLines(n.s, 'term ended');
          for (const st of started) {
            const epoch = st.epoch as number;
            const e = ended.find((x) => x.epoch === epoch);
            out.push({
              node: n.name,
              epoch,
              startedAt: wall(st.startedAt)!,
              endedAt: e ? wall(e.endedAt) : n.killedAt ?? null,
              end: e ? (e.end as string) : n.killedAt ? 'killed' : null,
              batches: e ? (e.batches as number) : null,
              firstCommitAt: e ? wall(e.firstCommitAt) : null,
              lastCommitAt: e ? wall(e.lastCommitAt) : null,
            });
          }
        }
        return out.sort((a, b) => a.epoch - b.epoch);
      },
      leaseLog() {
        const out: string[] = [];
        for (const n of nodes) {
          for (const line of n.s.output().split('\n')) {
            if (!line.startsWith('{') || line.includes('"component":"http"')) continue;
            const level = /"level":(\d+)/.exec(line);
            if ((level && Number(level[1]) >= 40) || /"msg":"(leading|standby|term ended|writer lease|shutting down)/.test(line)) out.push(`${n.name} ${line.slice(0, 400)}`);
          }
        }
        return `--- lease log of every node (warnings, errors, transitions) ---\n${out.slice(-80).join('\n')}`;
      },
      async crash(node) {
        node.killedAt = Date.now();
        groupKill(node, 'SIGKILL');
        await node.s.exited;
      },
    };
    created.push(cluster);
    return cluster;
  };
}

/**
 * A signal to everything a node runs, as when Cloud Run freezes or loses the whole container: the server's process
 * group and each Litestream it started (Litestream runs in a process group of its own, src/replication/process-io.ts).
 */
export function groupKill(node: Node, signal: NodeJS.Signals, opts: { litestream?: boolean } = {}): void {
  for (const pid of [node.s.proc.pid!, ...(opts.litestream === false ? [] : litestreamPids(node.s))]) {
    try {
      process.kill(-pid, signal);
    } catch {
      // already gone
    }
  }
}

/**
 * Problems with the record of terms: epochs must strictly increase, and the commits of one term must all come
 * before the first commit of the next (at most one process commits in any epoch, and never two at once).
 */
export function termViolations(terms: TermRecord[]): string[] {
  const bad: string[] = [];
  for (let i = 1; i < terms.length; i++) {
    const a = terms[i - 1]!;
    const b = terms[i]!;
    if (b.epoch <= a.epoch) bad.push(`epoch ${b.epoch} (${b.node}) does not follow ${a.epoch} (${a.node})`);
    // A's commits end by its last commit (or its kill); B's first commit is after its term started.
    const aEnd = a.lastCommitAt ?? a.endedAt;
    const bStart = b.firstCommitAt ?? b.startedAt;
    if (aEnd !== null && bStart <= aEnd) bad.push(`epoch ${b.epoch} (${b.node}) committed at ${bStart} before epoch ${a.epoch} (${a.node}) stopped at ${aEnd}`);
  }
  return bad;
}

/** Uploads or deletes of Litestream files a node's proxy forwarded after `since` (performance.now()). */
export function ltxWritesSince(node: Node, since: number): string[] {
  return node.proxy.heads
    .filter((h) => h.at >= since && !h.line.startsWith('GET ') && /ltx/.test(decodeURIComponent(h.line)))
    .map((h) => h.line);
}

/** GET /readyz of a node. */
export async function readyz(node: Node): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await req(node.s.url, 'GET', '/readyz');
  return { status: r.status, body: r.body };
}
