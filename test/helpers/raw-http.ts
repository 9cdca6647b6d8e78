// HTTP/1.1 over a bare TCP socket, for what fetch hides: keep-alive connections we control, partial bodies,
// chunked uploads, and seeing exactly when the server closes the connection.
import net from 'node:net';

export interface RawResponse {
  status: number;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  body: string;
  json(): any;
  /** `server`: a route ran (the server's answers carry X-Request-Id); `uWS`: its parser answered before any route. */
  by: 'server' | 'uWS';
  /** A chunked body the close cut off (no last chunk): `body` is what arrived of it. */
  truncated: boolean;
}

export interface RawConn {
  socket: net.Socket;
  /** Writes bytes as they are; nothing is added. */
  write(data: string | Buffer): void;
  /**
   * The next complete response on this connection (Content-Length framed, chunked, or, for uWS's own pages that
   * carry neither, up to the close). Rejects if the connection closes first, or cuts a chunked body short.
   */
  response(timeoutMs?: number): Promise<RawResponse>;
  /** Resolves once the peer closed the connection (or it errored). */
  readonly closed: Promise<void>;
  isClosed(): boolean;
  /** Everything received and not yet taken by response(), as latin1 text (for answers that never complete). */
  received(): string;
  destroy(): void;
}

/**
 * The response at the start of `buf` and the bytes it takes, or null while it is incomplete. `ended`: no more
 * bytes will come. An answer with neither Content-Length nor chunking but `Connection: close` (uWS's own error
 * pages) runs to the end of the connection, so it is complete only once ended; so is a chunked answer the close
 * cut short (truncated: a lingering 413 closed at its bound).
 */
export function parseResponse(buf: Buffer, ended = false): { response: RawResponse; used: number } | null {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1]);
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const answer = (body: Buffer, used: number, truncated = false) => {
    const text = body.toString('utf8');
    const by: RawResponse['by'] = 'x-request-id' in headers ? 'server' : 'uWS';
    return { response: { status, headers, body: text, json: () => JSON.parse(text), by, truncated }, used };
  };
  const rest = buf.subarray(end + 4);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const chunked = dechunk(rest);
    if (chunked.complete) return answer(chunked.body, end + 4 + chunked.used);
    return ended ? answer(chunked.body, buf.length, true) : null;
  }
  if (headers['content-length'] === undefined && /^close$/i.test(headers.connection ?? '')) {
    return ended ? answer(rest, buf.length) : null;
  }
  const len = Number(headers['content-length'] ?? 0);
  if (rest.length < len) return null;
  return answer(rest.subarray(0, len), end + 4 + len);
}

/** Every complete response in `buf`, in order, and the bytes after the last one (latin1). */
export function parseResponses(buf: Buffer, ended = false): { responses: RawResponse[]; leftover: string } {
  const responses: RawResponse[] = [];
  let at = 0;
  for (;;) {
    const r = parseResponse(buf.subarray(at), ended);
    if (!r) break;
    responses.push(r.response);
    at += r.used;
  }
  return { responses, leftover: buf.subarray(at).toString('latin1') };
}

export function rawConnect(port: number, host = '127.0.0.1'): Promise<RawConn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host });
    let buf = Buffer.alloc(0);
    let closed = false;
    let wake: (() => void) | null = null;
    const closedP = new Promise<void>((res) => {
      const done = () => {
        closed = true;
        wake?.();
        res();
      };
      socket.on('close', done);
      socket.on('end', done);
    });
    socket.on('error', () => {});
    socket.on('data', (b: Buffer) => {
      buf = Buffer.concat([buf, b]);
      wake?.();
    });

    const conn: RawConn = {
      socket,
      write: (data) => void socket.write(data),
      response(timeoutMs = 15_000) {
        return new Promise((res, rej) => {
          const timer = setTimeout(() => {
            wake = null;
            rej(new Error(`no complete response within ${timeoutMs} ms; got ${JSON.stringify(buf.toString('latin1'))}`));
          }, timeoutMs);
          const check = () => {
            const r = parseResponse(buf, closed);
            if (r && !r.response.truncated) {
              buf = buf.subarray(r.used);
              clearTimeout(timer);
              wake = null;
              res(r.response);
            } else if (closed) {
              clearTimeout(timer);
              wake = null;
              rej(new Error(`connection closed before a complete response; got ${JSON.stringify(buf.toString('latin1'))}`));
            }
          };
          wake = check;
          check();
        });
      },
      closed: closedP,
      isClosed: () => closed,
      received: () => buf.toString('latin1'),
      destroy: () => socket.destroy(),
    };
    socket.once('connect', () => resolve(conn));
    socket.once('error', (err) => reject(err));
  });
}

/**
 * The chunked body at the start of `b` (no trailers): complete with the bytes it takes, or, while incomplete,
 * what arrived of it so far.
 */
function dechunk(b: Buffer): { body: Buffer; used: number; complete: boolean } {
  const parts: Buffer[] = [];
  const partial = () => ({ body: Buffer.concat(parts), used: b.length, complete: false });
  let at = 0;
  for (;;) {
    const eol = b.indexOf('\r\n', at);
    if (eol < 0) return partial();
    const size = parseInt(b.subarray(at, eol).toString('latin1'), 16);
    if (Number.isNaN(size)) throw new Error(`bad chunk size line ${JSON.stringify(b.subarray(at, eol).toString('latin1'))}`);
    if (size === 0) {
      if (b.length < eol + 4) return partial();
      return { body: Buffer.concat(parts), used: eol + 4, complete: true };
    }
    if (b.length < eol + 2 + size + 2) {
      parts.push(b.subarray(eol + 2, Math.min(b.length, eol + 2 + size)));
      return partial();
    }
    parts.push(b.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** A minimal request head (plus optional body) for rawConnect's write(). */
export function rawRequest(method: string, path: string, body?: string, headers: Record<string, string> = {}): string {
  const h: Record<string, string> = { Host: 'localhost', ...headers };
  if (body !== undefined && !('Content-Length' in h) && !('Transfer-Encoding' in h)) h['Content-Length'] = String(Buffer.byteLength(body));
  if (body !== undefined && !('Content-Type' in h)) h['Content-Type'] = 'application/json';
  return `${method} ${path} HTTP/1.1\r\n${Object.entries(h)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n${body ?? ''}`;
}

/** Resolves true if a new TCP connection to the port is refused. */
export function connectionRefused(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}
