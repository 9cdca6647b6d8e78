// What the two A/B tools (ab-cpu.ts: CPU time; ab-instr.ts: instructions under callgrind) read from their command
// line the same way: the workloads to run and extra server settings.
import { createProduct, getProduct, increment, type Workload } from './workloads.js';

const WORKLOADS: Record<string, Workload> = { create: createProduct, increment: increment('ab'), read: getProduct };

/** `--workloads=create,increment,read`: each name with its workload, in the order given. */
export function abWorkloads(list: string): (readonly [string, Workload])[] {
  return list.split(',').map((w) => {
    const workload = WORKLOADS[w];
    if (!workload) throw new Error(`unknown workload ${w} (known: ${Object.keys(WORKLOADS).join(', ')})`);
    return [w, workload] as const;
  });
}

/** `--env=NAME=value` given any number of times: the settings as an object (the value may itself hold `=`). */
export function envPairs(list: string[]): Record<string, string> {
  return Object.fromEntries(list.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as [string, string]));
}
