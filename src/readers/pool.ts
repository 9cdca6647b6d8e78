// Main-thread side of the readers: a piscina pool (READERS > 0) or one read-only connection on the main
// thread (READERS = 0), behind one interface, with a bounded number of reads in flight.
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { Config } from '../shared/config.js';
import { openReader } from '../shared/db/open.js';
import { AppError } from '../shared/errors.js';
import { depthSources, m } from '../shared/metrics.js';
import type { ReadOp, ReadOutcome, ReadResult } from '../shared/protocol.js';
import { prepareQueries } from './queries.js';

export interface Readers {
  readonly threads: number;
  /** Inline readers answer synchronously; the pool answers with a promise. */
  run(op: ReadOp): ReadResult | Promise<ReadResult>;
  readonly depth: number;
  close(): Promise<void>;
}

export async function openReaders(config: Config): Promise<Readers> {
  return config.readers === 0 ? inlineReaders(config) : poolReaders(config);
}

function inlineReaders(config: Config): Readers {
  const db = openReader(config);
  const run = prepareQueries(db);
  return {
    threads: 0,
    run,
    depth: 0,
    async close() {
      db.close();
    },
  };
}

async function poolReaders(config: Config): Promise<Readers> {
  const pool = new Piscina({
    // A path, not a URL: piscina turns it into a file URL itself.
    filename: fileURLToPath(new URL('./worker.js', import.meta.url)),
    minThreads: config.readers,
    maxThreads: config.readers,
    idleTimeout: Infinity,
    workerData: { config },
  });
  let depth = 0;
  depthSources.reader = () => depth;
  const overloaded = () => {
    m.overloaded.labels('read').inc();
    return Promise.reject(new AppError('overloaded', 'read queue is full, retry later', undefined, { 'Retry-After': '1' }));
  };

  // Reads accepted during one event-loop turn go out together: one piscina task per thread carries many
  // reads, instead of one task (a postMessage each way, a promise, a wake-up) per read.
  let queued: ReadOp[] = [];
  let waiting: Waiter[] = [];
  let scheduled = false;
  const dispatch = (ops: ReadOp[], ws: Waiter[]) => {
    (pool.run(ops) as Promise<ReadOutcome[]>).then(
      (outcomes) => {
        depth -= ws.length;
        for (let i = 0; i < ws.length; i++) {
          const o = outcomes[i];
          if (typeof o === 'object' && o !== null) ws[i]!.reject(AppError.fromWire(o.err));
          else ws[i]!.resolve(o ?? null);
        }
      },
      (err: unknown) => {
        depth -= ws.length;
        for (const w of ws) w.reject(err);
      },
    );
  };
  const flush = () => {
    scheduled = false;
    const ops = queued;
    const ws = waiting;
    queued = [];
    waiting = [];
    const tasks = Math.min(config.readers, ops.length);
    const per = Math.ceil(ops.length / tasks);
    for (let i = 0; i < ops.length; i += per) dispatch(ops.slice(i, i + per), ws.slice(i, i + per));
  };

  // Every thread opens its connection before we report ready: a bad path fails start-up, not the first GET.
  await Promise.all(Array.from({ length: config.readers }, () => pool.run([{ q: 'counter', name: '_' }])));
  return {
    threads: config.readers,
    run(op) {
      if (depth >= config.readQueueMax) return overloaded();
      depth++;
      queued.push(op);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
      return new Promise<ReadResult>((resolve, reject) => waiting.push({ resolve, reject }));
    },
    get depth() {
      return depth;
    },
    async close() {
      await pool.close();
    },
  };
}

interface Waiter {
  resolve: (r: ReadResult) => void;
  reject: (e: unknown) => void;
}
