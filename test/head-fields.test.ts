// The header fields handlers read (X-Request-Id, Content-Length, Transfer-Encoding, Content-Type, Prefer,
// Idempotency-Key) come from the head check's one pass over the request (src/http/head-fields.ts), or from uWS's
// getHeader with HEADER_CHECK=0. Both must give the same answers: the first field of a name wins as getHeader's
// does, every Idempotency-Key counts, and nothing of one request's fields is left for the next on the connection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawConnect, type RawConn } from './helpers/raw-http.js';
import { killAll, startServer, type Running } from './helpers/server.js';

afterAll(killAll);

let checked: Running;
let unchecked: Running;
beforeAll(async () => {
  [checked, unchecked] = await Promise.all([startServer(), startServer({ env: { HEADER_CHECK: '0' } })]);
});

const BODY = '{"name":"head","price":1}';

/** A POST /products head with the fields given in order (names may repeat), then the body. */
function post(fields: [string, string][], body = BODY): string {
  const all: [string, string][] = [['Host', 'localhost'], ['Content-Length', String(Buffer.byteLength(body))], ...fields];
  if (!fields.some(([k]) => k.toLowerCase() === 'content-type')) all.push(['Content-Type', 'application/json']);
  return `POST /products HTTP/1.1\r\n${all.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`;
}

async function send(c: RawConn, head: string) {
  c.write(head);
  return c.response(5_000);
}

describe.each([
  ['with the head check (one pass)', () => checked],
  ['with HEADER_CHECK=0 (getHeader)', () => unchecked],
])('request header fields %s', (_name, server) => {
  it('the first X-Request-Id, Prefer and Content-Type win, as getHeader gives them; a second Idempotency-Key is refused', async () => {
    const c = await rawConnect(server().port);
    try {
      const first = await send(
        c,
        post([
          ['X-Request-Id', 'first-id'],
          ['X-Request-Id', 'second-id'],
          ['Prefer', 'durability=local'],
          ['Prefer', 'durability=bogus'],
        ]),
      );
      expect(first.status).toBe(201);
      expect(first.headers['x-request-id']).toBe('first-id');
      expect(first.headers['preference-applied']).toBe('durability=local');

      const bogusFirst = await send(c, post([['Prefer', 'durability=bogus'], ['Prefer', 'durability=local']]));
      expect(bogusFirst.status).toBe(400);
      expect(bogusFirst.json().error.details[0].path).toBe('header.Prefer');

      const typed = await send(c, post([['Content-Type', 'text/plain'], ['Content-Type', 'application/json']]));
      expect(typed.status).toBe(415);

      const twoKeys = await send(c, post([['Idempotency-Key', 'k-a'], ['Idempotency-Key', 'k-b']]));
      expect(twoKeys.status).toBe(400);
      expect(twoKeys.json().error.details[0].path).toBe('header.Idempotency-Key');
    } finally {
      c.destroy();
    }
  });

  it("nothing of a request's fields reaches the next request on the connection", async () => {
    const c = await rawConnect(server().port);
    const key = `carry-${Math.random()}`;
    try {
      const keyed = await send(c, post([['Idempotency-Key', key], ['Prefer', 'durability=local'], ['X-Request-Id', 'mine']]));
      expect(keyed.status).toBe(201);
      // The same body without the fields: a new product (not a replay of the key), no Preference-Applied, a fresh id.
      const plain = await send(c, post([]));
      expect(plain.status).toBe(201);
      expect(plain.json().id).not.toBe(keyed.json().id);
      expect(plain.headers['preference-applied']).toBeUndefined();
      expect(plain.headers['x-request-id']).not.toBe('mine');
      // A read after a write: no body is expected of it (Content-Length is this request's, not the last one's).
      c.write(`GET /products/${keyed.json().id} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
      const read = await c.response(5_000);
      expect(read.status).toBe(200);
      expect(read.json().name).toBe('head');
      // And the key still replays when it is sent again.
      const again = await send(c, post([['Idempotency-Key', key]]));
      expect(again.status).toBe(201);
      expect(again.json().id).toBe(keyed.json().id);
    } finally {
      c.destroy();
    }
  });
});
