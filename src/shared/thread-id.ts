// The kernel's id of the calling thread (Linux), for attributing CPU per thread from /proc/<pid>/task/<tid>/stat:
// every thread of a Node process is called "node" there, so each one reports its own id at start (logged by the
// main thread as `threads`; read by bench/lib/threads.ts). Null where /proc/thread-self does not exist.
import fs from 'node:fs';

export function threadId(): number | null {
  try {
    return Number(fs.readlinkSync('/proc/thread-self').split('/').pop()) || null;
  } catch {
    return null;
  }
}
