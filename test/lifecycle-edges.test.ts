// Lifecycle paths that used to hang or exit with the wrong code (issue 13): a DATA_FILE that blocks on read, a
// signal during start-up, a writer failing at shutdown, a database file the process cannot write.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ENTRY, killAll, req, ROOT, runToExit, startServer, tempDir } from './helpers/server.js';
import { logLines, waitFor } from './helpers/wait.js';

afterAll(killAll);

const invalidMsg = 'data file is invalid: nothing from it was applied, the last applied state stays';

/** Exit code and how long after `t0` it came. */
async function exitWithin(exited: Promise<number | string>, t0: number): Promise<{ code: number | string; ms: number }> {
  const code = await exited;
  return { code, ms: performance.now() - t0 };
}

describe('a DATA_FILE that would block on read', () => {
  it('a FIFO with no writer at start-up is refused at once: the server listens, and SIGTERM exits 0', async () => {
    const dir = tempDir('lifecycle-');
    const file = path.join(dir, 'data.json');
    execFileSync('mkfifo', [file]);
    // Before the fix the open blocked in the thread pool: never listening, and deaf to SIGTERM.
    const s = await startServer({ dbPath: path.join(dir, 'app.db'), env: { DATA_FILE: file, DATA_FILE_POLL_MS: '50' }, timeoutMs: 10_000 });
    expect(logLines(s, invalidMsg)).toMatchObject([{ level: 50, path: file, reason: expect.stringContaining('not a regular file (a FIFO)') }]);
    expect((await req(s.url, 'GET', '/readyz')).status).toBe(200);
    const t0 = performance.now();
    s.proc.kill('SIGTERM');
    const { code, ms } = await exitWithin(s.exited, t0);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(3000);
  });

  it('a file replaced by a FIFO while running is refused, polling goes on, and SIGTERM exits 0', async () => {
    const dir = tempDir('lifecycle-');
    const file = path.join(dir, 'data.json');
    fs.writeFileSync(file, JSON.stringify({ counters: { c: 1 } }));
    const s = await startServer({ dbPath: path.join(dir, 'app.db'), env: { DATA_FILE: file, DATA_FILE_POLL_MS: '50' } });
    expect((await req(s.url, 'GET', '/counters/c')).body.value).toBe(1);

    execFileSync('mkfifo', [`${file}.fifo`]);
    fs.renameSync(`${file}.fifo`, file);
    await waitFor(() => logLines(s, invalidMsg).length === 1, 'the FIFO to be refused');
    expect(logLines(s, invalidMsg)[0]).toMatchObject({ reason: expect.stringContaining('not a regular file (a FIFO)') });
    // Still polling: a regular file put back is applied.
    fs.writeFileSync(`${file}.tmp`, JSON.stringify({ counters: { c: 2 } }));
    fs.renameSync(`${file}.tmp`, file);
    await waitFor(async () => (await req(s.url, 'GET', '/counters/c')).body.value === 2, 'the regular file to be applied');

    const t0 = performance.now();
    s.proc.kill('SIGTERM');
    const { code, ms } = await exitWithin(s.exited, t0);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(3000);
  });
});

describe('a signal during start-up', () => {
  it('SIGTERM before the server listens exits 1 at once, saying so', async () => {
    const dir = tempDir('lifecycle-');
    const file = path.join(dir, 'data.json');
    fs.writeFileSync(file, JSON.stringify({ counters: { c: 1 } }));
    // The data file is applied before listening, through a writer that takes 5 s per batch: start-up is held there.
    const proc = spawn(process.execPath, [ENTRY], {
      cwd: ROOT,
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DB_PATH: path.join(dir, 'app.db'), DATA_FILE: file, TEST_WRITER_DELAY_MS: '5000' },
    });
    let out = '';
    proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | string>((resolve) => proc.on('exit', (c, sig) => resolve(c ?? sig ?? -1)));
    try {
      await waitFor(() => out.includes('"msg":"readers ready"'), 'start-up to reach the data file');
      const t0 = performance.now();
      proc.kill('SIGTERM');
      const { code, ms } = await exitWithin(exited, t0);
      expect(code).toBe(1);
      expect(ms).toBeLessThan(2000);
      expect(out).toContain('"msg":"stopping during start-up: exiting without serving"');
      expect(out).not.toContain('"msg":"listening"');
    } finally {
      proc.kill('SIGKILL');
    }
  });
});

/** Caps the size any file of the running process may reach (RLIMIT_FSIZE): writes past it fail with EFBIG, as on a full disk. */
function capFileSize(pid: number, bytes: number | 'unlimited'): void {
  execFileSync('prlimit', ['--pid', String(pid), `--fsize=${bytes}`]);
}

describe('a writer failure during shutdown', () => {
  it('the final checkpoint failing (no room to grow the database file) makes the shutdown fail: exit 1, reason logged, nothing acknowledged lost', async () => {
    // No checkpointer: every committed page stays in the WAL until the writer's final TRUNCATE checkpoint.
    const s = await startServer({ env: { CHECKPOINT_INTERVAL_MS: '0' } });
    const ids: number[] = [];
    for (let round = 0; round < 10; round++) {
      const rs = await Promise.all(
        Array.from({ length: 10 }, (_, i) => req(s.url, 'POST', '/products', { name: `p${round}-${i}`, price: 1, description: 'd'.repeat(2000) })),
      );
      for (const r of rs) {
        expect(r.status).toBe(201);
        ids.push(r.body.id);
      }
    }
    // The database file may not grow any more: copying the WAL's new pages into it fails like a full disk.
    capFileSize(s.proc.pid!, fs.statSync(s.dbPath).size);
    const code = await s.stop();
    expect(code).toBe(1);
    expect(logLines(s, 'writer failed')).toMatchObject([{ level: 60, reason: expect.stringMatching(/^writer failed: /) }]);
    const [notClean] = logLines(s, 'shutdown was not clean');
    expect(notClean).toMatchObject({ level: 50 });
    expect((notClean!.failed as string[]).some((f) => /^close writer: writer failed: /.test(f))).toBe(true);

    // The WAL still holds every acknowledged write: a restart finds them all.
    const again = await startServer({ dbPath: s.dbPath, env: { CHECKPOINT_INTERVAL_MS: '0' } });
    const found = await Promise.all(ids.map(async (id) => (await req(again.url, 'GET', `/products/${id}`)).status));
    expect(found.filter((st) => st !== 200)).toEqual([]);
    expect(await again.stop()).toBe(0);
  });
});

describe('a database file the process cannot write', () => {
  it('an immutable app.db (chattr +i) in a writable directory: start-up exits 1 with a clear message instead of reporting ready', async () => {
    const s = await startServer();
    expect((await req(s.url, 'POST', '/products', { name: 'a', price: 1 })).status).toBe(201);
    expect(await s.stop()).toBe(0);
    // Root can write a 0444 file; an immutable one it cannot. SQLite then opens it read-only without a word.
    execFileSync('chattr', ['+i', s.dbPath]);
    try {
      const { code, output } = await runToExit({ DB_PATH: s.dbPath }, 10_000);
      expect(output).not.toContain('"msg":"listening"');
      expect(code).toBe(1);
      expect(output).toContain(`the database file ${s.dbPath} cannot be written by this process (attempt to write a readonly database)`);
      expect(output).toContain('"msg":"start-up failed"');
    } finally {
      execFileSync('chattr', ['-i', s.dbPath]);
    }
  });
});
