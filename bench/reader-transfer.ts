// Micro-benchmark: are reader-thread results faster back on the main thread as plain objects (structured
// clone), msgpackr buffers (transferred, unpacked on main) or a JSON string (what src/readers/queries.ts
// returns)? For a point read and a 100-row page, through a real worker_threads round trip and through
// piscina, one at a time and 64 in flight. Every case ends the same way: the JSON body to send is in hand
// on the main thread. "main us/op" is the main thread's own CPU time per read (from /proc, 10 ms ticks;
// event-loop utilisation where /proc is missing): on a 2-core machine the main thread (HTTP) is the scarce one.
//   npm run bench:reader-transfer [-- --ms=500]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { createSeedDb, SEED_PRODUCTS } from './lib/seed.js';
import { openReads, toBody, type Format, type Query, type Task } from './transfer/reads.js';

const measureMs = Number(/--ms=(\d+)/.exec(process.argv.slice(2).join(' '))?.[1] ?? 500);
const warmMs = Math.min(150, measureMs);
const IN_FLIGHT = 64;

type Call = (t: Task) => Promise<unknown>;

/** CPU milliseconds used by the main thread alone (its thread id is the process id). */
function mainThreadCpuMs(): number {
  try {
    const stat = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(rest[11]) + Number(rest[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

function rawReader(dbPath: string): { call: Call; close(): Promise<number> } {
  const worker = new Worker(new URL('./transfer/raw-worker.js', import.meta.url), { workerData: { dbPath } });
  const waiting = new Map<number, (v: unknown) => void>();
  let next = 1;
  worker.on('message', (m: { id: number; v: unknown }) => {
    const r = waiting.get(m.id)!;
    waiting.delete(m.id);
    r(m.v);
  });
  return {
    call: (task) =>
      new Promise((resolve) => {
        const id = next++;
        waiting.set(id, resolve);
        worker.postMessage({ id, task });
      }),
    close: () => worker.terminate(),
  };
}

const task = (q: Query, fmt: Format): Task => ({
  q,
  fmt,
  key: q === 'point' ? 1 + Math.floor(Math.random() * SEED_PRODUCTS) : Math.floor(Math.random() * (SEED_PRODUCTS - 100)),
});

/** One at a time: wall-clock microseconds per read. */
async function oneAtATime(call: Call, q: Query, fmt: Format): Promise<number> {
  const loop = async (ms: number) => {
    let ops = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      toBody(fmt, await call(task(q, fmt)));
      ops++;
    }
    return ((performance.now() - t0) * 1000) / ops;
  };
  await loop(warmMs);
  return loop(measureMs);
}

/** IN_FLIGHT reads outstanding: wall microseconds per read, and main-thread busy microseconds per read. */
async function inFlight(call: Call, q: Query, fmt: Format): Promise<{ wall: number; main: number }> {
  const loop = (ms: number) =>
    new Promise<{ wall: number; main: number }>((resolve) => {
      let ops = 0;
      let active = 0;
      const end = performance.now() + ms;
      const t0 = performance.now();
      const elu0 = performance.eventLoopUtilization();
      const cpu0 = mainThreadCpuMs();
      const launch = () => {
        active++;
        void call(task(q, fmt)).then((v) => {
          toBody(fmt, v);
          ops++;
          active--;
          if (performance.now() < end) launch();
          else if (active === 0) {
            const cpu = mainThreadCpuMs() - cpu0;
            const busy = Number.isFinite(cpu) ? cpu : performance.eventLoopUtilization(elu0).active;
            resolve({ wall: ((performance.now() - t0) * 1000) / ops, main: (busy * 1000) / ops });
          }
        });
      };
      for (let i = 0; i < IN_FLIGHT; i++) launch();
    });
  await loop(warmMs);
  return loop(measureMs);
}

/** Inline (READERS=0): query, encode and body on the main thread; wall = main-thread time. */
function inline(run: (t: Task) => unknown, q: Query, fmt: Format): number {
  const loop = (ms: number) => {
    let ops = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      toBody(fmt, run(task(q, fmt)));
      ops++;
    }
    return ((performance.now() - t0) * 1000) / ops;
  };
  loop(warmMs);
  return loop(measureMs);
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reader-transfer-'));
  const dbPath = path.join(dir, 'seed.db');
  createSeedDb(dbPath);
  const raw = rawReader(dbPath);
  const pool = new Piscina({
    filename: new URL('./transfer/piscina-worker.js', import.meta.url).href,
    minThreads: 1,
    maxThreads: 1,
    idleTimeout: Infinity,
    workerData: { dbPath },
  });
  const viaPiscina: Call = (t) => pool.run(t) as Promise<unknown>;
  const local = openReads(dbPath);
  const formats: Format[] = ['json', 'object', 'msgpack'];
  const rows: string[][] = [];
  const f = (n: number) => n.toFixed(1);
  process.stderr.write(`reader-transfer: ${measureMs} ms per cell, ${IN_FLIGHT} in flight for the concurrent columns\n`);
  for (const q of ['point', 'page100'] as Query[]) {
    for (const fmt of formats) {
      const bytes = toBody(fmt, local(task(q, fmt))).length;
      const inl = inline(local, q, fmt);
      const rawSeq = await oneAtATime(raw.call, q, fmt);
      const rawPar = await inFlight(raw.call, q, fmt);
      const pisSeq = await oneAtATime(viaPiscina, q, fmt);
      const pisPar = await inFlight(viaPiscina, q, fmt);
      const row = [q, fmt, String(bytes), f(inl), f(rawSeq), f(rawPar.wall), f(rawPar.main), f(pisSeq), f(pisPar.wall), f(pisPar.main)];
      rows.push(row);
      process.stderr.write(`  ${row.join('  ')}\n`);
    }
  }
  await raw.close();
  await pool.close();
  fs.rmSync(dir, { recursive: true, force: true });

  const head = [
    'read',
    'format',
    'body bytes',
    'inline us/op',
    'worker_threads 1-at-a-time us/op',
    `worker_threads ${IN_FLIGHT} in flight us/op`,
    'main us/op',
    'piscina 1-at-a-time us/op',
    `piscina ${IN_FLIGHT} in flight us/op`,
    'main us/op',
  ];
  const line = (c: string[]) => `| ${c.join(' | ')} |`;
  process.stdout.write(
    [
      `Reader result transfer (Node ${process.version}, ${os.cpus()[0]?.model.trim()}, ${os.availableParallelism()} cores; lower is better)`,
      '',
      line(head),
      line(head.map((_, i) => (i < 2 ? '---' : '---:'))),
      ...rows.map(line),
      '',
      'inline = READERS=0 (query + encode + body on the main thread). json = the string the reader returns today;',
      'object = structured clone, JSON.stringify on main; msgpack = msgpackr buffer transferred, unpacked and stringified on main.',
      '',
    ].join('\n'),
  );
}

await main();
