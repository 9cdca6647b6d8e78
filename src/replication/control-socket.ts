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
