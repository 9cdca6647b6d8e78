// CRUD mix: reads, creates, updates and deletes in fixed proportions, as fast as the servers answer.
import type { Scenario } from '../lib/scenario.js';
import { compare } from '../lib/scenario.js';
import { headlinePair } from '../lib/tables.js';
import { CRUD_MIX_DESCRIPTION, makeCrudMix } from '../lib/workloads.js';

export const crudMixScenario: Scenario = {
  id: 'crud-mix',
  title: 'CRUD mix',
  async run(ctx) {
    return {
      id: this.id,
      title: this.title,
      what: `${CRUD_MIX_DESCRIPTION}; ${ctx.settings.connections} connections, ${ctx.settings.durationS} s`,
      rows: await compare(ctx, this.id, makeCrudMix, ctx.settings.connections),
      summary: {},
    };
  },
  headlines: (s) => headlinePair('CRUD mix', s, {}),
};
