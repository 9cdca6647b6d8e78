// Prints one plain closing line after vitest's own summary, e.g. "vitest: 323 passed, 0 failed, 2 skipped".
// CI recognises that shape in any language; vitest's boxed summary ("Tests  323 passed | 2 skipped") it does
// not, so without this line a green run was recorded as having executed no test.
import { writeSync } from 'node:fs';
import type { Reporter, TestModule } from 'vitest/node';

export default class ClosingLine implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of modules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      // A file that failed to load has no tests to count; count it as a failure.
      if (mod.state() === 'failed' && mod.children.size === 0) failed++;
    }
    failed += unhandledErrors.length;
    // Written at exit, so it comes after the default reporter's summary and is the last line printed.
    const line = `\nvitest: ${passed} passed, ${failed} failed, ${skipped} skipped\n`;
    process.once('exit', () => writeSync(1, line));
  }
}
