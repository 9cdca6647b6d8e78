// The writer lease under a random schedule (a property test): up to three server processes on one replica, each
// with its own data directory, and every few seconds one of: start one, SIGTERM one, kill -9 one (server and
// Litestream), freeze one (SIGSTOP for 3-6 s, then SIGCONT), or cut one off from the bucket for 3-8 s. Writers
// send `durability=replicated` creates to any running process. Invariants, checked as it runs and at the end:
// every term has its own epoch, epochs increase, and no term commits before the previous one's last commit (at
// most one process commits at a time); and every acknowledged write is in the replica a final restore reads.
// `npm test` runs 30 s (LEASE_CHAOS_MS); the soak (SOAK=1) runs 3 minutes. The seed is printed: LEASE_CHAOS_SEED.
import { describe, expect, it } from 'vitest';
import { groupKill, termViolations, useCluster, type Node } from './helpers/cluster.js';
import { missingTools } from './helpers/gcs.js';
import { rng } from './helpers/random.js';
import { readDb, restoreWithCli } from './helpers/replica.js';
import { req } from './helpers/server.js';
import { logLines, waitFor } from './helpers/wait.js';

const skip = missingTools();
const RUN_MS = Number(process.env.LEASE_CHAOS_MS ?? (process.env.SOAK === '1' ? 180_000 : 30_000));
const SEED = Number(process.env.LEASE_CHAOS_SEED ?? Date.now() % 1_000_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A node's lease, term and fencing lines, for a failure message. */
const leaseLines = (n: Node) =>
  n.s
    .output()
    .split('\n')
    .filter((l) => /"component":"lease"|term|fenced|restor|"level":[56]0/.test(l) && !l.includes('"component":"http"'))
    .map((l) => l.slice(0, 500))
    .join('\n');

type Slot = { name: string; dbPath?: string; node: Node | null; frozen: boolean; cut: boolean };

describe.skipIf(skip)('writer lease: random schedule of starts, SIGTERMs, kill -9s, freezes and bucket cuts', () => {
  const cluster = useCluster('lease-chaos');

  it(`${RUN_MS / 1000} s, up to 3 processes: one committer at a time, every acknowledged write in the final restore`, { timeout: RUN_MS + 120_000 }, async () => {
    const random = rng(SEED);
    const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)]!;
    const c = await cluster();
    const slots: Slot[] = ['A', 'B', 'C'].map((name) => ({ name, node: null, frozen: false, cut: false }));
    const events: string[] = [];
    const start = async (slot: Slot) => {
      slot.node = await c.start(slot.name, { dbPath: slot.dbPath, env: { STANDBY_HOLD_MS: '3000' } });
      slot.dbPath = slot.node.dbPath;
    };
    await start(slots[0]!);
    await c.leading(slots[0]!.node!);

    // Writers: durability=replicated creates to any running process; the acknowledged ones are checked at the end.
    const acks = new Map<number, string>();
    const outcomes: Record<string, number> = {};
    let running = true;
    const writer = async (w: number) => {
      for (let n = 0; running; n++) {
        const live = slots.filter((s) => s.node && !s.frozen);
        if (live.length === 0) {
          await sleep(50);
          continue;
        }
        const name = `w${w}-${n}`;
        let outcome: string;
        try {
          const r = await req(live[Math.floor(Math.random() * live.length)]!.node!.s.url, 'POST', '/products', { name, price: 1 }, { Prefer: 'durability=replicated' });
          if (r.status === 201) acks.set(r.body.id, name);
          outcome = r.status === 201 ? '201' : `${r.status} ${r.body?.error?.code}`;
        } catch {
          outcome = 'connection lost';
        }
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        if (outcome !== '201') await sleep(100);
      }
    };
    const writing = Promise.all(Array.from({ length: 12 }, (_, w) => writer(w)));

    // Checked as it runs: the record of terms so far never shows two committers at once.
    const violations: string[] = [];
    const watch = setInterval(() => violations.push(...termViolations(c.terms().filter((t) => t.lastCommitAt !== null || t.end === 'killed'))), 500);

    const t0 = performance.now();
    const background: Promise<void>[] = [];
    while (performance.now() - t0 < RUN_MS) {
      await sleep(2000 + random() * 3000);
      const up = slots.filter((s) => s.node && !s.frozen && !s.cut);
      const down = slots.filter((s) => !s.node);
      const choices: string[] = [];
      if (down.length > 0) choices.push('start', 'start');
      if (up.length > 0) choices.push('sigterm', 'kill', 'freeze', 'cut');
      const what = pick(choices);
      if (what === 'start') {
        const slot = pick(down);
        events.push(`start ${slot.name}`);
        await start(slot);
        continue;
      }
      const slot = pick(up);
      const node = slot.node!;
      events.push(`${what} ${slot.name}`);
      if (what === 'sigterm') {
        node.s.proc.kill('SIGTERM');
        await node.s.exited;
        slot.node = null;
      } else if (what === 'kill') {
        await c.crash(node);
        slot.node = null;
      } else if (what === 'freeze') {
        slot.frozen = true;
        groupKill(node, 'SIGSTOP');
        const ms = 3000 + random() * 3000;
        background.push(
          sleep(ms).then(() => {
            groupKill(node, 'SIGCONT');
            slot.frozen = false;
          }),
        );
      } else {
        slot.cut = true;
        node.proxy.stall();
        const ms = 3000 + random() * 5000;
        background.push(
          sleep(ms).then(() => {
            node.proxy.resume();
            slot.cut = false;
          }),
        );
      }
      // Never leave the replica without anyone: start one if nothing runs.
      if (slots.every((s) => !s.node)) {
        events.push('start A (none left)');
        await start(slots[0]!);
      }
    }
    await Promise.all(background);
    running = false;
    await writing;
    clearInterval(watch);

    // The end: one process leads (wait for it), then everything stops cleanly and the replica is restored.
    const live = slots.filter((s) => s.node).map((s) => s.node!);
    await waitFor(() => live.some((n) => logLines(n.s, 'leading: term started').length > logLines(n.s, 'term ended').length), 'a leader at the end', 30_000).catch(
      (err: Error) => {
        const dump = c.nodes.map((n) => `--- ${n.name} (pid ${n.s.proc.pid}, exit ${String(n.s.proc.exitCode ?? n.s.proc.signalCode)})\n` + leaseLines(n)).join('\n');
        throw new Error(`${err.message} (seed ${SEED}; events ${events.join(', ')})\n${dump}`);
      },
    );
    for (const n of live) {
      n.s.proc.kill('SIGTERM');
      await n.s.exited;
    }
    const terms = c.terms();
    if (process.env.LEASE_CHAOS_DUMP) for (const n of c.nodes) console.log(`--- ${n.name} ---\n${leaseLines(n)}`);
    console.log(
      `lease chaos (seed ${SEED}, ${RUN_MS / 1000} s): events ${events.join(', ')}; terms ${terms.map((t) => `${t.node}#${t.epoch}(${t.end}:${t.batches ?? '?'})`).join(' ')}; ` +
        `outcomes ${JSON.stringify(outcomes)}`,
    );
    expect(violations).toEqual([]);
    expect(termViolations(terms)).toEqual([]);
    expect(new Set(terms.map((t) => t.epoch)).size).toBe(terms.length);
    const db = readDb((await restoreWithCli(c.gcs, c.url)).dbPath);
    expect(db.integrity).toBe('ok');
    const missing = [...acks].filter(([id, name]) => db.products.get(id)?.name !== name);
    expect(missing, `acknowledged replicated writes missing from the final restore (seed ${SEED})`).toEqual([]);
    expect(acks.size).toBeGreaterThan(0);
  });
});
