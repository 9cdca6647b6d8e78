// The ceiling probe: the bare single-thread uWS + better-sqlite3 server whose figures under wrk -c64 the
// suite's targets were set from, rebuilt so every benchmark run measures the ceiling of the machine it runs on,
// in the same session.
// It does the least that still answers the same requests over the same schema: no validation, no metrics,
// no access log, no threads, no timeouts, no error catalogue. Writes are group-committed on the main thread:
// every POST that arrives in one event-loop turn joins one transaction, committed in setImmediate.
// Not a server to use: a malformed body answers 400 and nothing else is checked.
//
// Env: PORT, HOST, DB_PATH, SQLITE_SYNCHRONOUS (NORMAL or FULL).
import Database from 'better-sqlite3';
import type { HttpResponse } from 'uWebSockets.js';
import { loadNativeUws, type App } from '../../src/http/uws.js';

const port = Number(process.env.PORT ?? 0);
const host = process.env.HOST ?? '127.0.0.1';
const sync = process.env.SQLITE_SYNCHRONOUS === 'NORMAL' ? 'NORMAL' : 'FULL';
const db = new Database(process.env.DB_PATH ?? 'probe.db');
db.pragma('journal_mode = WAL');
db.pragma(`synchronous = ${sync}`);

const PRODUCT_JSON =
  "json_object('id', id, 'name', name, 'price', price, 'description', description, 'stock', stock, " +
  "'created_at', created_at, 'updated_at', updated_at)";
const byId = db.prepare<[number], string>(`SELECT ${PRODUCT_JSON} FROM products WHERE id = ?`).pluck();
const counter = db.prepare<[string], string>("SELECT json_object('name', name, 'value', value) FROM counters WHERE name = ?").pluck();
const insert = db.prepare<[string, number, string, number, string, string]>(
  'INSERT INTO products (name, price, description, stock, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
);
const increment = db
  .prepare<[string, number], number>(
    'INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value RETURNING value',
  )
  .pluck();

interface Pending {
  res: HttpResponse;
  aborted: boolean;
  run(now: string): string;
}
let batch: Pending[] = [];

function commit(): void {
  const items = batch;
  batch = [];
  const now = new Date().toISOString();
  const bodies: string[] = [];
  db.exec('BEGIN');
  for (const p of items) bodies.push(p.run(now));
  db.exec('COMMIT');
  for (let i = 0; i < items.length; i++) {
    const p = items[i]!;
    if (!p.aborted) p.res.cork(() => p.res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').end(bodies[i]));
  }
}

function enqueue(res: HttpResponse, run: (now: string) => string): Pending {
  const p: Pending = { res, aborted: false, run };
  if (batch.length === 0) setImmediate(commit);
  batch.push(p);
  return p;
}

function json(res: HttpResponse, body: string | undefined): void {
  if (body === undefined) res.writeStatus('404 Not Found').end();
  else res.writeHeader('Content-Type', 'application/json').end(body);
}

// No config here: uWS's own default head limit, which is also the server's default MAX_HEADER_BYTES.
const uws = loadNativeUws(4096);
const app = uws.App() as App;
app.get('/counters/:name', (res, req) => json(res, counter.get(req.getParameter(0)!)));
app.get('/products/:id', (res, req) => json(res, byId.get(Number(req.getParameter(0)))));
/**
 * Reads the whole body and hands it to `then` parsed as JSON (400 when it is not); `then` returns the request's
 * place in the batch. Both writes read their body: an increment's `by` is in it.
 */
function withJson<T>(res: HttpResponse, then: (d: T) => Pending): void {
  let body = Buffer.alloc(0);
  const state = { aborted: false };
  res.onAborted(() => (state.aborted = true));
  res.onData((chunk, last) => {
    body = Buffer.concat([body, Buffer.from(chunk)]);
    if (!last) return;
    let d: T;
    try {
      d = JSON.parse(body.toString()) as T;
    } catch {
      if (!state.aborted) res.writeStatus('400 Bad Request').end();
      return;
    }
    const p = then(d);
    res.onAborted(() => (p.aborted = true));
  });
}

app.post('/products', (res) =>
  withJson<{ name: string; price: number; description?: string; stock?: number }>(res, (d) =>
    enqueue(res, (now) => {
      const id = Number(insert.run(d.name, d.price, d.description ?? '', d.stock ?? 0, now, now).lastInsertRowid);
      return JSON.stringify({ id, ...d, created_at: now, updated_at: now });
    }),
  ),
);
// Until 2026-12-03 the probe answered an increment without reading its body (uWS drops a body nobody reads) and
// always added 1: a different request from the one the suite sends ({"by":1}), and cheaper by the body's read
// and parse. bench/ANALYSIS.md has increments' ratios against both.
app.post('/counters/:name/increment', (res, req) => {
  const name = req.getParameter(0)!;
  withJson<{ by?: number }>(res, (d) => enqueue(res, () => JSON.stringify({ name, value: increment.get(name, d.by ?? 1) })));
});
// The harness scrapes /metrics around every trial; the probe has none.
app.get('/metrics', (res) => void res.end(''));
app.any('/*', (res) => void res.writeStatus('404 Not Found').end());

app.listen(host, port, (ls) => {
  if (!ls) throw new Error(`cannot listen on ${host}:${port}`);
  // The harness waits for this line (the same shape as the servers' pino line).
  process.stdout.write(JSON.stringify({ port: uws.us_socket_local_port(ls), msg: 'listening' }) + '\n');
});
process.once('SIGTERM', () => process.exit(0));
