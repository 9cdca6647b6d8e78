// HTTP over Litestream 0.5's control socket (a Unix socket, no auth; server.go in the litestream repo).
// Endpoints used here, as implemented in v0.5.18:
//   GET  /info                              -> {version, pid, uptime_seconds, started_at, database_count}
//   POST /sync {path, wait, timeout}        -> {status: "synced"|"no_change"|"synced_local", path, txid, replicated_txid}
//        `timeout` is whole seconds (0 with wait = 30 s); 404 unknown path, 409 database closed, 500 sync failed.
//   POST /stop {path, timeout}              -> {status: "stopped"|"already_stopped", path, txid}
//        Closes the database: final WAL sync, then the replica upload retried for `shutdown-sync-timeout`.
//        It can hang past `timeout` while the replica is unreachable: callers must bound it themselves.
import http from 'node:http';

export interface ControlReply {
  status: number;
  body: Record<string, unknown>;
}

export class ControlSocketError extends Error {
  override name = 'ControlSocketError';
}

/** One request on the socket; rejects after timeoutMs, or if the socket refuses or the reply is not JSON. */
export function control(socketPath: string, method: 'GET' | 'POST', urlPath: string, body: unknown, timeoutMs: number): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        socketPath,
        method,
        path: urlPath,
        // No pooling: a kept-alive connection to a Litestream that died would fail the next call for no reason.
        agent: false,
        headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        signal: AbortSignal.timeout(Math.max(1, Math.round(timeoutMs))),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (s: string) => (text += s));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> });
          } catch {
            reject(new ControlSocketError(`${method} ${urlPath}: unreadable reply (${res.statusCode}): ${text.slice(0, 200)}`));
          }
        });
        res.on('error', (err) => reject(new ControlSocketError(`${method} ${urlPath}: ${err.message}`)));
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      const why = err.name === 'AbortError' || err.name === 'TimeoutError' ? `no reply within ${Math.round(timeoutMs)} ms` : err.code ?? err.message;
      reject(new ControlSocketError(`${method} ${urlPath} on ${socketPath}: ${why}`));
    });
    req.end(payload);
  });
}

/** Litestream's `timeout` fields are whole seconds, and 0 means its own default (30 s): never send 0. */
export function wholeSeconds(ms: number): number {
  return Math.max(1, Math.floor(ms / 1000));
}

/** What a successful POST /sync says. Both positions are Litestream's own TXID counters, not SQLite's. */
export interface SyncResult {
  /** "synced", "no_change" (the background monitor had already written the LTX; the upload still ran) or "synced_local". */
  status: string;
  /** Litestream's local position after the sync (one per sync pass or checkpoint). */
  txid: number;
  /** The replica's position as Litestream last saw it. */
  replicatedTxid: number;
}

/**
 * The one way to ask Litestream for an upload: POST /sync with wait, for `db`. Resolves once Litestream answered 200
 * (everything committed before the call was written to local LTX files and uploaded); rejects with the reason
 * otherwise (404 unknown db, 409 db closed, 500 checkpoint/upload error or Litestream's own timeout, no answer by
 * `deadlineMs`). Litestream's timeout is whole seconds; the request's own deadline defaults to one second later,
 * so Litestream's timeout answer normally arrives first.
 */
export async function postSync(socketPath: string, db: string, timeoutMs: number, deadlineMs = timeoutMs + 1000): Promise<SyncResult> {
  const r = await control(socketPath, 'POST', '/sync', { path: db, wait: true, timeout: wholeSeconds(timeoutMs) }, deadlineMs);
  if (r.status !== 200) throw new ControlSocketError(`POST /sync answered ${r.status}: ${replyError(r)}`);
  return { status: String(r.body.status), txid: Number(r.body.txid), replicatedTxid: Number(r.body.replicated_txid) };
}

/** POST /stop: Litestream closes `db` on its side (final WAL sync, upload retried for shutdown-sync-timeout). */
export async function postStop(socketPath: string, db: string, timeoutMs: number): Promise<void> {
  const r = await control(socketPath, 'POST', '/stop', { path: db, timeout: wholeSeconds(timeoutMs) }, timeoutMs);
  if (r.status !== 200) throw new ControlSocketError(`POST /stop answered ${r.status}: ${replyError(r)}`);
}

function replyError(r: ControlReply): string {
  return String(r.body.error ?? JSON.stringify(r.body));
}
