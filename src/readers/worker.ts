// Reader thread entry (piscina): one read-only connection per thread, statements prepared once.
// A task is every read the main thread accepted during one event-loop turn (its share of them).
import { workerData } from 'node:worker_threads';
import type { Config } from '../shared/config.js';
import { openReader } from '../shared/db/open.js';
import { toAppError } from '../shared/errors.js';
import { createLogger } from '../shared/log.js';
import type { ReadOp, ReadOutcome } from '../shared/protocol.js';
import { prepareQueries } from './queries.js';

const config = (workerData as { config: Config }).config;
const run = prepareQueries(openReader(config));
const log = createLogger(config.logLevel).child({ thread: 'reader' });

export default function read(ops: ReadOp[]): ReadOutcome[] {
  return ops.map((op) => {
    try {
      return run(op);
    } catch (err) {
      const e = toAppError(err);
      // Only the code crosses to the main thread: the cause is logged here.
      if (e.code === 'internal') log.error({ err, read: op.q }, 'read failed with an internal error');
      return { err: e.toWire() };
    }
  });
}
