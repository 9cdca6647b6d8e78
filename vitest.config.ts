import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests start real servers and threads; on 2 cores, files run one at a time for stable timings.
    fileParallelism: false,
    // The second prints a plain "N passed, N failed, N skipped" line last, which CI reads.
    reporters: ['default', './test/reporters/closing-line.ts'],
  },
});
