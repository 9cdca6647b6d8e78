// DATA_FILE: a JSON file of counters and products, applied through the writer exactly once per content: at
// start-up before listening, then after each change; never again for the same content (a touch, a restart, a
// second server on the same database); an invalid file applies nothing and the server keeps serving.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, metric, req, startServer, tempDir, type Running } from './helpers/server.js';
import { logLines, waitFor } from './helpers/wait.js';

afterAll(killAll);

const POLL = { DATA_FILE_POLL_MS: '50' };

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

/** Replaces the file the way editors and deploy tools do: write a temp file, rename it over (a new inode). */
function replace(file: string, content: unknown): string {
  const text = typeof content === 'string' ? content : JSON.stringify(content, null, 2);
  fs.writeFileSync(`${file}.tmp`, text);
  fs.renameSync(`${file}.tmp`, file);
  return sha(text);
}

/** Changes mtime (and ctime) without changing a byte. */
function touch(file: string, secondsAhead: number): void {
  const t = new Date(Date.now() + secondsAhead * 1000);
  fs.utimesSync(file, t, t);
}

/** data_file_applied, oldest first, read from the database file the servers use. */
function history(dbPath: string): { hash: string; counters: number; products: number }[] {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT hash, counters, products FROM data_file_applied ORDER BY seq').all() as {
      hash: string;
      counters: number;
      products: number;
    }[];
  } finally {
    db.close();
  }
}

const loads = (s: Running, result: string) => metric(s.url, 'data_file_loads_total', `result="${result}"`);
const counter = async (s: Running, name: string) => (await req(s.url, 'GET', `/counters/${name}`)).body?.value as number | undefined;
const bump = async (s: Running, name: string, by: number) =>
  (await req(s.url, 'POST', `/counters/${name}/increment`, { by })).body.value as number;

function setup(content: unknown): { dir: string; file: string; dbPath: string; hash: string; env: Record<string, string> } {
  const dir = tempDir('data-file-');
  const file = path.join(dir, 'data.json');
  const hash = replace(file, content);
  return { dir, file, dbPath: path.join(dir, 'app.db'), hash, env: { ...POLL, DATA_FILE: file } };
}

describe('DATA_FILE', () => {
  it('is applied at start-up, before the server listens: counters set, products inserted with their ids', async () => {
    const { file, dbPath, hash, env } = setup({
      counters: { visits: 41, 'edge.zero': 0 },
      products: [
        { id: 3, name: 'lamp', price: 19.5, stock: 2 },
        { id: 10, name: 'desk', price: 120, description: 'oak' },
      ],
    });
    const s = await startServer({ dbPath, env });
    // No waiting: "listening" comes after the apply.
    expect((await req(s.url, 'GET', '/counters/visits')).body).toEqual({ name: 'visits', value: 41 });
    expect((await req(s.url, 'GET', '/counters/edge.zero')).body).toEqual({ name: 'edge.zero', value: 0 });
    const lamp = await req(s.url, 'GET', '/products/3');
    expect(lamp.status).toBe(200);
    expect(lamp.body).toMatchObject({ id: 3, name: 'lamp', price: 19.5, description: '', stock: 2 });
    expect(lamp.body.created_at).toBe(lamp.body.updated_at);
    expect((await req(s.url, 'GET', '/products/10')).body).toMatchObject({ id: 10, name: 'desk', price: 120, description: 'oak', stock: 0 });
    expect((await req(s.url, 'GET', '/products/4')).status).toBe(404);
    // Ids are never reused: the next created product comes after the file's largest id.
    expect((await req(s.url, 'POST', '/products', { name: 'new', price: 1 })).body.id).toBe(11);

    expect(history(dbPath)).toEqual([{ hash, counters: 2, products: 2 }]);
    const [applied, ...more] = logLines(s, 'data file applied');
    expect(more).toEqual([]);
    expect(applied).toMatchObject({ path: file, hash: hash.slice(0, 12), counters: 2, products: 2 });
    expect(s.output().indexOf('"msg":"data file applied"')).toBeLessThan(s.output().indexOf('"msg":"listening"'));
    expect(await loads(s, 'applied')).toBe(1);
    expect(await s.stop()).toBe(0);
  });

  it('a changed content is applied once; touching the file (same bytes) re-applies nothing and keeps client increments', async () => {
    const { file, dbPath, hash: a, env } = setup({ counters: { c: 1 }, products: [{ id: 1, name: 'lamp', price: 10 }] });
    const s = await startServer({ dbPath, env });
    expect(await counter(s, 'c')).toBe(1);
    const before = (await req(s.url, 'GET', '/products/1')).body;
    expect(await bump(s, 'c', 5)).toBe(6);

    touch(file, 5);
    await waitFor(async () => (await loads(s, 'unchanged')) === 1, 'the touch to be noticed');
    expect(await counter(s, 'c')).toBe(6);
    expect(history(dbPath)).toEqual([{ hash: a, counters: 1, products: 1 }]);

    // New content, written in place (same inode): the price changes, the counter is set.
    const textB = JSON.stringify({ counters: { c: 100 }, products: [{ id: 1, name: 'lamp', price: 12.5 }] });
    fs.writeFileSync(file, textB);
    const b = sha(textB);
    await waitFor(() => history(dbPath).length === 2, 'the new content to be applied');
    expect(await counter(s, 'c')).toBe(100);
    const after = (await req(s.url, 'GET', '/products/1')).body;
    expect(after).toMatchObject({ id: 1, name: 'lamp', price: 12.5, created_at: before.created_at });
    expect(after.updated_at > before.updated_at).toBe(true);

    // Incremented by a client after the apply: a touch must not reset it.
    expect(await bump(s, 'c', 1)).toBe(101);
    touch(file, 10);
    await waitFor(async () => (await loads(s, 'unchanged')) === 2, 'the second touch to be noticed');
    expect(await counter(s, 'c')).toBe(101);

    // Replaced by rename (a new inode, as editors and `mv` do): applied too.
    const c = replace(file, { counters: { c: 7, d: -3 } });
    await waitFor(() => history(dbPath).length === 3, 'the replaced file to be applied');
    expect(await counter(s, 'c')).toBe(7);
    expect(await counter(s, 'd')).toBe(-3);
    // A product the new file no longer lists stays as it was.
    expect((await req(s.url, 'GET', '/products/1')).body.price).toBe(12.5);

    expect(history(dbPath)).toEqual([
      { hash: a, counters: 1, products: 1 },
      { hash: b, counters: 1, products: 1 },
      { hash: c, counters: 2, products: 0 },
    ]);
    expect(logLines(s, 'data file applied').length).toBe(3);
    expect(await loads(s, 'applied')).toBe(3);
    expect(await s.stop()).toBe(0);
  });

  it('a restart with the same file re-applies nothing: client increments survive', async () => {
    const { dbPath, hash, env } = setup({ counters: { c: 1 } });
    const first = await startServer({ dbPath, env });
    expect(await bump(first, 'c', 41)).toBe(42);
    expect(await first.stop()).toBe(0);

    const second = await startServer({ dbPath, env });
    expect(await counter(second, 'c')).toBe(42);
    expect(history(dbPath)).toEqual([{ hash, counters: 1, products: 0 }]);
    expect(logLines(second, 'data file applied')).toEqual([]);
    expect(logLines(second, 'data file unchanged since it was last applied; nothing to do')).toHaveLength(1);
    expect(await loads(second, 'unchanged')).toBe(1);
    expect(await loads(second, 'applied')).toBe(0);
    expect(await second.stop()).toBe(0);
  });

  it('a file too large for the writer ring (~1 MB packed) goes over the port in its place: applied whole, in order with the writes around it', async () => {
    // src/shared/ring.ts takes records up to half its 1 MiB; a larger message travels over the MessagePort and an
    // empty ring record keeps its place in the order (src/writer/client.ts post()).
    const big = (tag: string, n: number) => ({
      counters: { order: 0 },
      products: Array.from({ length: n }, (_, i) => ({ id: i + 1, name: `${tag} ${i}`, price: i, description: `${tag} `.repeat(20) })),
    });
    const { file, dbPath, env } = setup(big('first', 6000));
    const s = await startServer({ dbPath, env });
    expect((await req(s.url, 'GET', '/products/6000')).body).toMatchObject({ id: 6000, name: 'first 5999' });
    // Increments before, during and after the second big file, which sets `order` to a million: each increment
    // ran before it (a small value) or after it (above a million), and the last value counts every one after it.
    expect(await bump(s, 'order', 1)).toBe(1);
    replace(file, { ...big('second', 7000), counters: { order: 1_000_000 } });
    const answered: number[] = [];
    const t0 = Date.now();
    while ((await loads(s, 'applied')) < 2) {
      if (Date.now() - t0 > 20_000) throw new Error('the second file was not applied');
      answered.push(...(await Promise.all(Array.from({ length: 8 }, () => bump(s, 'order', 1)))));
    }
    const after = answered.filter((v) => v > 1_000_000);
    expect(answered.filter((v) => v < 1_000_000).length + after.length).toBe(answered.length);
    expect(answered.length).toBeGreaterThan(0);
    expect(await bump(s, 'order', 1)).toBe(1_000_000 + after.length + 1);
    expect((await req(s.url, 'GET', '/products/7000')).body).toMatchObject({ id: 7000, name: 'second 6999' });
    expect(await loads(s, 'applied')).toBe(2);
    expect(await s.stop()).toBe(0);
  });

  it('an invalid file (bad JSON, or one bad product among good ones) is logged, applies nothing, and the server keeps serving', async () => {
    const { file, dbPath, hash: good, env } = setup({ counters: { c: 1 }, products: [{ id: 1, name: 'a', price: 1 }] });
    const s = await startServer({ dbPath, env });
    const invalidMsg = 'data file is invalid: nothing from it was applied, the last applied state stays';

    replace(file, '{"counters": {"c": nope}}');
    await waitFor(() => logLines(s, invalidMsg).length === 1, 'the bad JSON to be logged');
    expect(logLines(s, invalidMsg)[0]).toMatchObject({ level: 50, path: file, reason: "not valid JSON: Unexpected token 'o'" });
    // V8's message quotes the text around the error; the log must not.
    expect(s.output()).not.toContain('nope}');
    expect(await counter(s, 'c')).toBe(1);
    expect((await req(s.url, 'GET', '/healthz')).status).toBe(200);
    expect(await bump(s, 'c', 1)).toBe(2);

    // One good product, one bad, a good counter: none of it may land.
    const secret = 'a description that must never reach the log';
    const bad = replace(file, {
      counters: { c: 50 },
      products: [
        { id: 2, name: 'good', price: 1, description: secret },
        { id: 3, name: '', price: -1 },
      ],
    });
    await waitFor(() => logLines(s, invalidMsg).length === 2, 'the schema errors to be logged');
    const line = logLines(s, invalidMsg)[1]!;
    expect(line).toMatchObject({ path: file, hash: bad.slice(0, 12), issueCount: 2 });
    expect((line.issues as { path: string }[]).map((i) => i.path).sort()).toEqual(['products.1.name', 'products.1.price']);
    expect(s.output()).not.toContain(secret);
    expect(await counter(s, 'c')).toBe(2);
    expect((await req(s.url, 'GET', '/products/2')).status).toBe(404);
    expect(await loads(s, 'invalid')).toBe(2);
    expect(history(dbPath)).toEqual([{ hash: good, counters: 1, products: 1 }]);

    // Fixed: applied on the next change.
    const fixed = replace(file, { counters: { c: 50 }, products: [{ id: 2, name: 'good', price: 1, description: secret }] });
    await waitFor(() => history(dbPath).length === 2, 'the fixed file to be applied');
    expect(await counter(s, 'c')).toBe(50);
    expect((await req(s.url, 'GET', '/products/2')).body).toMatchObject({ id: 2, name: 'good', description: secret });
    expect(history(dbPath).at(-1)).toEqual({ hash: fixed, counters: 1, products: 1 });
    expect(await s.stop()).toBe(0);
  });

  it('a missing file at start-up is a warning, not a failure: it is applied when it appears', async () => {
    const dir = tempDir('data-file-');
    const file = path.join(dir, 'later.json');
    const dbPath = path.join(dir, 'app.db');
    const s = await startServer({ dbPath, env: { ...POLL, DATA_FILE: file } });
    expect(logLines(s, 'data file not found; the last applied state stays and the file is applied when it appears')).toMatchObject([
      { level: 40, path: file },
    ]);
    expect((await req(s.url, 'GET', '/counters/c')).status).toBe(404);
    const hash = replace(file, { counters: { c: 3 } });
    await waitFor(async () => (await counter(s, 'c')) === 3, 'the file to be applied once it appears');
    expect(history(dbPath)).toEqual([{ hash, counters: 1, products: 0 }]);
    expect(await s.stop()).toBe(0);
  });

  it('two servers on one database watching one file: each change is applied by exactly one of them', async () => {
    const { file, dbPath, hash: first, env } = setup({ counters: { c: 0 } });
    const a = await startServer({ dbPath, env });
    const b = await startServer({ dbPath, env });
    // b started after a had applied the file: it found it applied.
    expect(logLines(b, 'data file applied')).toEqual([]);
    expect(history(dbPath)).toEqual([{ hash: first, counters: 1, products: 0 }]);

    const hashes = [first];
    for (let round = 1; round <= 3; round++) {
      const h = replace(file, { counters: { c: round * 10 }, products: [{ id: round, name: `p${round}`, price: round }] });
      hashes.push(h);
      const reported = (s: Running) =>
        [...logLines(s, 'data file applied'), ...logLines(s, 'data file unchanged since it was last applied; nothing to do')].filter(
          (l) => l.hash === h.slice(0, 12),
        );
      await waitFor(() => reported(a).length === 1 && reported(b).length === 1, `both servers to handle round ${round}`);
      // One applied it; the other found its hash already recorded inside its own write transaction.
      const appliedBy = [a, b].filter((s) => reported(s)[0]!.msg === 'data file applied');
      expect(appliedBy).toHaveLength(1);
      expect(await counter(a, 'c')).toBe(round * 10);
    }
    const rows = history(dbPath);
    expect(rows.map((r) => r.hash)).toEqual(hashes);
    expect((await loads(a, 'applied')) + (await loads(b, 'applied'))).toBe(4);
    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
  });
});
