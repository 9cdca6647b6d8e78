// Piscina reader for the transfer micro-benchmark (the server's reader pool uses piscina).
import { move, workerData } from 'piscina';
import { openReads, type Task } from './reads.js';

const run = openReads((workerData as { dbPath: string }).dbPath);
export default function read(task: Task): unknown {
  const v = run(task);
  return v instanceof Uint8Array ? move(v) : v;
}
