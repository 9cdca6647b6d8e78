// Configuration: a bad value stops the process before it listens (or touches the database), naming the variable.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, runToExit, startServer, tempDir } from './helpers/server.js';
import { logLines } from './helpers/wait.js';

afterAll(killAll);

describe('configuration from the environment', () => {
  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['READERS', '-1'],
    ['READERS', 'two'],
    ['WRITE_BATCH_MAX', '0'],
    ['WRITE_BATCH_WAIT_MS', '5000'],
    ['WRITE_QUEUE_MAX', '1e4'],
    ['READ_QUEUE_MAX', '0'],
    ['SQLITE_SYNCHRONOUS', 'OFF'],
    ['SQLITE_BUSY_TIMEOUT_MS', '-5'],
    ['CHECKPOINT_INTERVAL_MS', '70000'],
    ['MAX_BODY_BYTES', '1.5'],
    ['MAX_HEADER_BYTES', 'abc'],
    ['MAX_HEADER_BYTES', '100'],
    ['HEADER_CHECK', 'maybe'],
    ['ACCESS_LOG', 'some'],
    ['LOG_LEVEL', 'verbose'],
    ['METRICS_TOKEN', 'too-short'],
    ['DB_MAX_BYTES', '4096'],
  ])('%s=%s exits non-zero before listening, naming the variable', async (name, value) => {
    const dir = tempDir();
    const dbPath = path.join(dir, 'app.db');
    const { code, output } = await runToExit({ DB_PATH: dbPath, [name]: value });
    expect(code).not.toBe(0);
    expect(typeof code).toBe('number');
    expect(output).toContain(name);
    expect(output).not.toMatch(/"msg":"listening"/);
    // It failed at configuration, before opening (and creating) the database.
    expect(fs.existsSync(dbPath)).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('names every bad variable at once', async () => {
    const { code, output } = await runToExit({ DB_PATH: path.join(tempDir(), 'app.db'), PORT: 'x', READERS: '-1' });
    expect(code).not.toBe(0);
    expect(output).toContain('PORT');
    expect(output).toContain('READERS');
  });

  it('applies valid values: SQLITE_SYNCHRONOUS=FULL, READERS=0', async () => {
    const s = await startServer({ env: { SQLITE_SYNCHRONOUS: 'FULL', READERS: '0' } });
    expect(logLines(s, 'writer ready')[0]).toMatchObject({ synchronous: 'FULL' });
    expect(logLines(s, 'readers ready')[0]).toMatchObject({ readers: 0 });
    expect(await s.stop()).toBe(0);
  });

  it('treats an empty value as unset (the default applies)', async () => {
    const s = await startServer({ env: { SQLITE_SYNCHRONOUS: '', WRITE_BATCH_MAX: '' } });
    expect(logLines(s, 'writer ready')[0]).toMatchObject({ synchronous: 'NORMAL' });
    expect(await s.stop()).toBe(0);
  });

  // A second server on a port in use is covered by uws-native.test.ts.
});
