// `npm run bench:followers`: the read-follower measurements (lib/followers.ts) on their own, with the suite's full
// settings (BENCH_MINUTE_MS, BENCH_LAG_S, BENCH_READ_RATE override them). Needs litestream and fake-gcs-server.
// Results: bench/results/followers-<stamp>.json and markdown on stdout.
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../test/helpers/server.js';
import { followersMarkdown, measureFollowers } from './lib/followers.js';
import { FOLLOWER_SETTINGS } from './scenarios/followers.js';

const st = {
  ...FOLLOWER_SETTINGS.full,
  minuteMs: Number(process.env.BENCH_MINUTE_MS ?? FOLLOWER_SETTINGS.full.minuteMs),
  lagS: Number(process.env.BENCH_LAG_S ?? FOLLOWER_SETTINGS.full.lagS),
  readRate: Number(process.env.BENCH_READ_RATE ?? FOLLOWER_SETTINGS.full.readRate),
};
const result = await measureFollowers(st, (line) => console.error(line));
const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
const out = path.join(ROOT, 'bench', 'results', `followers-${stamp}.json`);
fs.writeFileSync(out, JSON.stringify(result, null, 2));
console.log([...followersMarkdown(result), '', `Raw: ${path.relative(ROOT, out)}`].join('\n'));
