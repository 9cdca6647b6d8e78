// Hot read: one counter read over and over, 20 connections, ours against the baseline.
import type { Scenario } from '../lib/scenario.js';
import { compare } from '../lib/scenario.js';
import { headlinePair } from '../lib/tables.js';
import { hotRead } from '../lib/workloads.js';

export const hotReadScenario: Scenario = {
  id: 'hot-read',
  title: 'Hot read',
  async run(ctx) {
    return {
      id: this.id,
      title: this.title,
      what: `${hotRead.describe}, 20 connections, ${ctx.settings.durationS} s`,
      rows: await compare(ctx, this.id, hotRead, 20),
      summary: {},
    };
  },
  headlines: (s) => headlinePair('Hot read GET /counters/c1', s, {}),
};
