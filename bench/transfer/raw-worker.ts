// Plain worker_threads reader for the transfer micro-benchmark: one message in, one message out.
import { parentPort, workerData } from 'node:worker_threads';
import { openReads, type Task } from './reads.js';

const run = openReads((workerData as { dbPath: string }).dbPath);
parentPort!.on('message', (msg: { id: number; task: Task }) => {
  const v = run(msg.task);
  if (v instanceof Uint8Array) parentPort!.postMessage({ id: msg.id, v }, [v.buffer as ArrayBuffer]);
  else parentPort!.postMessage({ id: msg.id, v });
});
