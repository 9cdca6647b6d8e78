// Read followers (issue 19): one writer and one follower of its replica on fake-gcs-server, with their defaults:
// Cloud Storage operations of an idle follower and of one following 100 writes/s, the follower's lag under 1,000
// writes/s, CPU per read on the follower against the writer (lib/followers.ts). Needs litestream and
// fake-gcs-server (scripts/install-replication-tools.sh); without them the section says so.
import { missingTools } from '../../test/helpers/gcs.js';
import { followersMarkdown, measureFollowers, type FollowerResult, type FollowerSettings } from '../lib/followers.js';
import type { Headline, Mode, Scenario } from '../lib/scenario.js';

export const FOLLOWER_SETTINGS: Record<Mode, FollowerSettings> = {
  full: { minuteMs: 60_000, lagS: 30, readRate: 5000, readS: 10, settleMs: 10_000 },
  quick: { minuteMs: 15_000, lagS: 10, readRate: 5000, readS: 4, settleMs: 3000 },
  smoke: { minuteMs: 3000, lagS: 3, readRate: 500, readS: 1, settleMs: 500 },
};

export const followersScenario: Scenario = {
  id: 'followers',
  title: 'Read followers of the Cloud Storage replica',
  settings: { key: 'followers', byMode: FOLLOWER_SETTINGS },
  async run(ctx) {
    const st = FOLLOWER_SETTINGS[ctx.settings.mode];
    const missing = missingTools();
    const summary: Record<string, unknown> = missing ? { skipped: missing } : { result: await measureFollowers(st, ctx.progress) };
    return {
      id: this.id,
      title: this.title,
      what:
        `A writer and one follower (ROLE=follower, FOLLOWER_POLL_MS 3000, WRITER_HEARTBEAT_MS 5000) on fake-gcs-server, each through a counting proxy; ` +
        `Cloud Storage operations over ${st.minuteMs / 1000} s idle and ${st.minuteMs / 1000} s of 100 writes/s (priced at $0.005 per 1,000 LIST, $0.0004 per 1,000 GET, for a month of polling); ` +
        `lag under ${st.lagS} s of 1,000 writes/s; GET /products/{id} at ${st.readRate}/s on each for ${st.readS} s. docs/followers.md.`,
      rows: [],
      summary,
    };
  },
  headlines(s) {
    const r = s.summary.result as FollowerResult | undefined;
    if (!r) return [];
    const out: Headline[] = [
      { label: 'Follower: Cloud Storage operations, idle, $ per month', ours: r.idle.dollarsPerMonth, unit: 'usd', note: `${r.idle.perMinute} a minute; goal < $5` },
      { label: 'Follower lag under 1,000 writes/s: p99', ours: r.lag.p99, unit: 'ms', note: `p50 ${r.lag.p50} ms; without a Bookmark, FOLLOWER_POLL_MS 3000` },
      { label: 'CPU per read: follower / writer', ours: r.reads.follower.usPerRead / r.reads.writer.usPerRead, unit: 'ratio', note: `${r.reads.follower.usPerRead} us vs ${r.reads.writer.usPerRead} us` },
    ];
    return out;
  },
  section(s) {
    if (s.summary.skipped) return [`Not measured in this run: ${String(s.summary.skipped)}.`];
    return followersMarkdown(s.summary.result as FollowerResult);
  },
};
