// What the router reads off every request before its handler runs: the request id it answers and logs with, the
// method as logged, and whether a body follows the head.
import { randomBytes } from 'node:crypto';
import type { HttpRequest } from 'uWebSockets.js';

/**
 * Header names as bytes: uWS.js copies a string argument into a temporary UTF-8 buffer (a length pass, an allocation
 * and a copy) on every call and takes bytes as they are (~50 ns a call saved; writeHeader: see exchange.ts).
 */
const CONTENT_LENGTH = Buffer.from('content-length');
const TRANSFER_ENCODING = Buffer.from('transfer-encoding');
const X_REQUEST_ID = Buffer.from('x-request-id');

/**
 * A client's X-Request-Id is kept if it is 1..128 printable ASCII characters other than `"` and `\\` (so it
 * can be logged and echoed as is); otherwise one is generated.
 */
const REQUEST_ID = /^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/;

/** Generated ids: a random per-process prefix and a counter, unique without a UUID's cost per request. */
const idPrefix = randomBytes(6).toString('hex');
let idCounter = 0;

export function requestId(req: HttpRequest): string {
  const given = req.getHeader(X_REQUEST_ID);
  return given !== '' && REQUEST_ID.test(given) ? given : `${idPrefix}-${++idCounter}`;
}

/** Methods are logged as sent when they look like one; anything else is logged as OTHER. */
const METHOD = /^[A-Z]{1,16}$/;

export function requestMethod(req: HttpRequest): string {
  const m = req.getMethod().toUpperCase();
  return METHOD.test(m) ? m : 'OTHER';
}

/** Whether the request announces a body (uWS delivers it through onData after the handler ran). */
export function expectsBody(req: HttpRequest): boolean {
  const length = req.getHeader(CONTENT_LENGTH);
  return (length !== '' && length !== '0') || req.getHeader(TRANSFER_ENCODING) !== '';
}

/** The declared Content-Length ('' when there is none). */
export function declaredLength(req: HttpRequest): string {
  return req.getHeader(CONTENT_LENGTH);
}
