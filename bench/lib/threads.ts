// CPU per thread of a server process, from /proc/<pid>/task/<tid>/stat. Every thread of a Node process is named
// "node" there, so ours says which is which in its `threads` log line (src/shared/thread-id.ts); the rest are
// grouped by what they are: libuv's pool ("libuv-worker") and everything else (V8's platform threads: garbage
// collection and compilation; the inspector; reader threads when READERS > 0).
import fs from 'node:fs';
import { ticksPerSecond } from './server.js';

/** One thread's CPU seconds so far: user + system, and the system (kernel) part of it. */
export interface ThreadCpu {
  comm: string;
  seconds: number;
  system: number;
}

/** CPU seconds (user + system, and system alone) per thread id, now. */
export function threadCpuSeconds(pid: number): Map<number, ThreadCpu> {
  const out = new Map<number, ThreadCpu>();
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      // After the command name: utime and stime are the 14th and 15th fields overall.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const hz = ticksPerSecond();
      out.set(Number(tid), { comm, seconds: (Number(rest[11]) + Number(rest[12])) / hz, system: Number(rest[12]) / hz });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** Thread id -> role, from the last `threads` line in a server's log (ours only); the process id is the main thread. */
export function threadRoles(pid: number, output: string): Map<number, string> {
  const roles = new Map<number, string>([[pid, 'main']]);
  const lines = output.split('\n').filter((l) => l.includes('"msg":"threads"'));
  const last = lines.at(-1);
  if (last) {
    try {
      const o = JSON.parse(last) as Record<string, unknown>;
      for (const role of ['writer', 'checkpointer'] as const) if (typeof o[role] === 'number') roles.set(o[role] as number, role);
    } catch {
      // a partial line: roles by name only
    }
  }
  return roles;
}

/**
 * CPU seconds per role between two readings: main, writer, checkpointer, libuv, other (V8 platform: GC, compiler);
 * `part: 'system'` counts only the time in the kernel (syscalls, wake-ups, page faults).
 */
export function cpuByRole(
  before: Map<number, ThreadCpu>,
  after: Map<number, ThreadCpu>,
  roles: Map<number, string>,
  part: 'all' | 'system' = 'all',
): Record<string, number> {
  const out: Record<string, number> = {};
  const of = (t: ThreadCpu | undefined) => (t === undefined ? 0 : part === 'system' ? t.system : t.seconds);
  for (const [tid, a] of after) {
    const role = roles.get(tid) ?? (a.comm === 'libuv-worker' ? 'libuv' : 'other');
    out[role] = (out[role] ?? 0) + of(a) - of(before.get(tid));
  }
  return out;
}

/** The seconds (or counts) of every role together: a cpuByRole record's total. */
export function roleTotal(byRole: Record<string, number>): number {
  return Object.values(byRole).reduce((x, y) => x + y, 0);
}
