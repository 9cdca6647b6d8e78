// HTTP/1.1 over a bare TCP socket, for what fetch hides: keep-alive connections we control, partial bodies,
// chunked uploads, and seeing exactly when the server closes the connection.
import net from 'node:net';

export interface RawResponse {
  status: number;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  body: string;
  json(): any;
}

export interface RawConn {
  socket: net.Socket;
  /** Writes bytes as they are; nothing is added. */
  write(data: string | Buffer): void;
  /** The next complete response on this connection (Content-Length framed or chunked). */
  response(timeoutMs?: number): Promise<RawResponse>;
  /** Resolves once the peer closed the connection (or it errored). */
  readonly closed: Promise<void>;
  isClosed(): boolean;
  /** Everything received and not yet taken by response(), as latin1 text (for answers that never complete). */
  received(): string;
  destroy(): void;
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

    const tryParse = (): RawResponse | null => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return null;
      const head = buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1]);
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
        const chunked = dechunk(buf.subarray(end + 4));
        if (!chunked) return null;
        buf = buf.subarray(end + 4 + chunked.used);
        const body = chunked.body.toString('utf8');
        return { status, headers, body, json: () => JSON.parse(body) };
      }
      const len = Number(headers['content-length'] ?? 0);
      if (buf.length < end + 4 + len) return null;
      const body = buf.subarray(end + 4, end + 4 + len).toString('utf8');
      buf = buf.subarray(end + 4 + len);
      return { status, headers, body, json: () => JSON.parse(body) };
    };

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
            const r = tryParse();
            if (r) {
              clearTimeout(timer);
              wake = null;
              res(r);
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

/** A complete chunked body at the start of `b` (no trailers), or null while it is incomplete. */
function dechunk(b: Buffer): { body: Buffer; used: number } | null {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = b.indexOf('\r\n', at);
    if (eol < 0) return null;
    const size = parseInt(b.subarray(at, eol).toString('latin1'), 16);
    if (Number.isNaN(size)) throw new Error(`bad chunk size line ${JSON.stringify(b.subarray(at, eol).toString('latin1'))}`);
    if (b.length < eol + 2 + size + 2) return null;
    if (size === 0) return { body: Buffer.concat(parts), used: eol + 4 };
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
