// The bundled SQLite must be at least 3.51.3 (the WAL-reset corruption fix that app + Litestream need).
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { compareVersions, MIN_SQLITE_VERSION } from '../src/shared/db/open.js';
import { killAll, startServer } from './helpers/server.js';
import { logLines } from './helpers/wait.js';

afterAll(killAll);

function bundledVersion(): string {
  const db = new Database(':memory:');
  try {
    return (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  } finally {
    db.close();
  }
}

describe('SQLite version', () => {
  it('compareVersions orders versions numerically, part by part', () => {
    expect(MIN_SQLITE_VERSION).toBe('3.51.3');
    expect(compareVersions('3.51.3', '3.51.3')).toBe(0);
    expect(compareVersions('3.51.2', '3.51.3')).toBeLessThan(0);
    expect(compareVersions('3.9.0', '3.51.3')).toBeLessThan(0);
    expect(compareVersions('3.100.0', '3.51.3')).toBeGreaterThan(0);
    expect(compareVersions('3.52', '3.51.3')).toBeGreaterThan(0);
    expect(compareVersions('4.0.0', '3.99.99')).toBeGreaterThan(0);
  });

  it(`the SQLite bundled with better-sqlite3 is >= ${MIN_SQLITE_VERSION}`, () => {
    const v = bundledVersion();
    console.log(`bundled SQLite ${v} (minimum ${MIN_SQLITE_VERSION})`);
    expect(v).toMatch(/^\d+\.\d+\.\d+$/);
    expect(compareVersions(v, MIN_SQLITE_VERSION)).toBeGreaterThanOrEqual(0);
  });

  it('the server reports the same version in its "writer ready" start-up line', async () => {
    const s = await startServer();
    try {
      const [line] = logLines(s, 'writer ready');
      expect(line).toBeDefined();
      expect(line!.sqliteVersion).toBe(bundledVersion());
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });
});
