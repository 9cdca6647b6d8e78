// The header fields a request's handling reads, taken from the head check's one pass over every field
// (src/http/head-check.ts) instead of one `getHeader` each: through uWS.js a `getHeader` is a call into C++ and a new
// string (0.15-0.19 us measured in a handler, bench/ANALYSIS.md), and a write made five such calls for fields the
// pass had already been handed (a read three).
// Valid from the pass until the handler returns (the router ends it): `req.forEach` and the handler run
// synchronously, so this is module state, with nothing allocated per request. Without a pass (HEADER_CHECK=0) each
// field is read with `getHeader`, which gives the same value: the first field of that name.
import type { HttpRequest } from 'uWebSockets.js';

/** The single-valued fields kept (their first value, as `getHeader` gives it). */
export const F = { requestId: 0, contentLength: 1, transferEncoding: 2, contentType: 3, prefer: 4 } as const;
export type Field = (typeof F)[keyof typeof F];

/** Names as bytes: uWS.js copies a string argument into a temporary UTF-8 buffer on every call. */
const NAMES = ['x-request-id', 'content-length', 'transfer-encoding', 'content-type', 'prefer'].map((n) => Buffer.from(n));

let scanned = false;
/** The first value of each field in F, or undefined when the pass has not seen one. */
const first: (string | undefined)[] = [undefined, undefined, undefined, undefined, undefined];
/** Idempotency-Key: every field counts (a second one is refused, src/http/idempotency.ts), the last value kept. */
let keys = 0;
let key = '';

/** A pass over the current request's fields begins. */
export function passStart(): void {
  scanned = true;
  // Not first.fill(): a call into the runtime (~0.1 us of a request in the profile) for five stores.
  first[0] = first[1] = first[2] = first[3] = first[4] = undefined;
  keys = 0;
  key = '';
}

/** The request's handler returned: its fields are no longer the current request's. */
export function passEnd(): void {
  scanned = false;
}

function keep(i: Field, value: string): void {
  if (first[i] === undefined) first[i] = value;
}

/** One field of the pass (names arrive lower-cased from uWS). Lengths first: most fields cost one integer compare. */
export function noteField(name: string, value: string): void {
  switch (name.length) {
    case 6:
      if (name === 'prefer') keep(F.prefer, value);
      break;
    case 12:
      if (name === 'x-request-id') keep(F.requestId, value);
      else if (name === 'content-type') keep(F.contentType, value);
      break;
    case 14:
      if (name === 'content-length') keep(F.contentLength, value);
      break;
    case 15:
      if (name === 'idempotency-key') {
        keys++;
        key = value;
      }
      break;
    case 17:
      if (name === 'transfer-encoding') keep(F.transferEncoding, value);
      break;
  }
}

/** The field's first value ('' when absent), from the pass or, without one, from uWS. */
export function field(req: HttpRequest, f: Field): string {
  return scanned ? (first[f] ?? '') : req.getHeader(NAMES[f]!);
}

/**
 * How many Idempotency-Key fields the request has and the value of the last (`getHeader` would hide a second one).
 * Without a pass so far, this makes one (it then serves the other fields too, until the handler returns).
 */
export function idempotencyFields(req: HttpRequest): { count: number; value: string } {
  if (!scanned) {
    passStart();
    req.forEach(noteField);
  }
  return keys === 0 ? NO_KEY : { count: keys, value: key };
}

const NO_KEY = Object.freeze({ count: 0, value: '' });
