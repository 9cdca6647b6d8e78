// Reader thread entry (piscina): one read-only connection per thread, statements prepared once.
import { workerData } from 'node:worker_threads';
import type { Config } from '../config.js';
import { openReader } from '../db/open.js';
import type { ReadOp, ReadResult } from '../protocol.js';
import { prepareQueries } from './queries.js';

const config = (workerData as { config: Config }).config;
const run = prepareQueries(openReader(config));

export default function read(op: ReadOp): ReadResult {
  return run(op);
}
