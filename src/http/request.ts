// What the router reads off every request before its handler runs: the request id it answers and logs with, the
// method as logged, and whether a body follows the head.
import { randomBytes } from 'node:crypto';
import type { HttpRequest } from 'uWebSockets.js';
import { F, field } from './head-fields.js';

/**
 * A client's X-Request-Id is kept if it is 1..128 printable ASCII characters other than `"` and `\\` (so it
 * can be logged and echoed as is); otherwise one is generated.
 */
const REQUEST_ID = /^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/;

/** Generated ids: a random per-process prefix and a counter, unique without a UUID's cost per request. */
const idPrefix = randomBytes(6).toString('hex');
let idCounter = 0;

export function requestId(req: HttpRequest): string {
  const given = field(req, F.requestId);
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
  const length = field(req, F.contentLength);
  return (length !== '' && length !== '0') || field(req, F.transferEncoding) !== '';
}

/** The declared Content-Length ('' when there is none). */
export function declaredLength(req: HttpRequest): string {
  return field(req, F.contentLength);
}
