// Where things are, whether this runs from bench/ (vitest, tsx) or compiled from dist-bench/bench/.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'bench', 'tsconfig.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`cannot find the repository root above ${from}`);
  }
}

export const ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));
export const OURS_ENTRY = path.join(ROOT, 'dist', 'main.js');
export const BASELINE_ENTRY = path.join(ROOT, 'dist-bench', 'bench', 'baseline', 'main.js');
/** The bare single-thread ceiling probe (bench/probe/main.ts). */
export const PROBE_ENTRY = path.join(ROOT, 'dist-bench', 'bench', 'probe', 'main.js');
export const WRK_DIR = path.join(ROOT, 'bench', 'wrk');
export const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
export const RESULTS_MD = path.join(ROOT, 'bench', 'RESULTS.md');
/** Hand-written analysis that RESULTS.md includes after the targets. */
export const ANALYSIS_MD = path.join(ROOT, 'bench', 'ANALYSIS.md');
