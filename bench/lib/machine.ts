// What the results were measured on: hardware, versions, commit, and how busy the machine was.
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './paths.js';
import { wrkVersion } from './wrk.js';

export interface Machine {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  sqlite: string;
  packages: Record<string, string>;
  wrk: string | null;
  commit: string;
  /** Uncommitted changes in the work tree when the run started. */
  dirty: boolean;
  loadAvgStart: number[];
}

function pkgVersion(name: string): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

export function describeMachine(): Machine {
  const db = new Database(':memory:');
  const { v } = db.prepare('SELECT sqlite_version() AS v').get() as { v: string };
  db.close();
  return {
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    sqlite: v,
    packages: Object.fromEntries(['better-sqlite3', 'uWebSockets.js', 'autocannon', 'piscina', 'msgpackr'].map((n) => [n, pkgVersion(n)])),
    wrk: wrkVersion(),
    commit: git(['rev-parse', '--short=12', 'HEAD']) || 'unknown',
    dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
    loadAvgStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/** The machine's CPU time counters (/proc/stat, all CPUs), null off Linux. */
export function cpuTimes(): number[] | null {
  try {
    return fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  } catch {
    return null;
  }
}

/**
 * The share of the machine's CPU time between two cpuTimes() that the hypervisor gave to someone else (steal): on
 * a shared VM a trial that ran while it was high measured a slower machine, and its latencies are not ours. On a
 * Firecracker VM the disk's emulation is counted here too: an fsync-bound trial raises its own steal (bench/README.md).
 */
export function stealShare(a: number[] | null, b: number[] | null): number | null {
  if (!a || !b || a.length < 8) return null;
  let total = 0;
  for (let i = 0; i < 8; i++) total += b[i]! - a[i]!;
  return total > 0 ? (b[7]! - a[7]!) / total : null;
}
