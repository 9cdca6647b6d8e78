// One pass over a request's header fields, before any routing work: the framing that uWS v20.51's parser still
// lets through and shows the application (duplicate Content-Length, an empty or non-ASCII one, odd
// Transfer-Encoding) is refused here, and the connection is closed. Everything else malformed it answers itself
// (400/431/505) before a route runs; what it hides (headers after an empty name) is out of reach. Measured with
// raw sockets in test/http-parser.test.ts; see docs/reliability-and-security.md "The HTTP parser we ship".
// The head's size is uWS's job: it refuses heads over MAX_HEADER_BYTES itself (src/http/uws.ts), so a field
// total counted here could never exceed it and is no longer counted.
import type { HttpRequest } from 'uWebSockets.js';
import { AppError } from '../shared/errors.js';
import { noteField, passStart } from './head-fields.js';

// Cost: ~0.2 us per header field, nearly all of it inside uWS.js's forEach (a call into JavaScript and two strings
// per field; docs/reliability-and-security.md "The HTTP parser we ship"). The pass adds no allocation of its own: its counters live in module
// variables (req.forEach is synchronous) rather than in a closure or an object per request. It also hands every field
// to src/http/head-fields.ts, so the handler reads what it needs without a getHeader per field.
let contentLengths = 0;
let badContentLength = false;
let transferEncodings = 0;
let transferEncoding = '';

function visit(name: string, value: string): void {
  // Comparing lengths first keeps every other header to an integer compare.
  if (name.length === 14) {
    if (name === 'content-length') {
      contentLengths++;
      // uWS v20.51 answers 400 itself for `abc`, `+2`, `-2`, `2, 2`, `0x2` and over-long digit runs; an empty
      // value (uWS frames no body: the body would be parsed as the next request) and non-ASCII digits reach here.
      if (!badContentLength && !isDigits(value)) badContentLength = true;
    }
  } else if (name.length === 17 && name === 'transfer-encoding') {
    // Several fields are one comma-separated list (RFC 9110 5.3).
    transferEncoding = transferEncodings++ === 0 ? value : `${transferEncoding},${value}`;
  }
  noteField(name, value);
}

function isDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * Null when the head is acceptable; otherwise the error to refuse the request with. The connection must then be
 * closed (Exchange.refuse): the framing cannot be trusted, so neither can anything after it on the stream.
 */
export function checkHead(req: HttpRequest): AppError | null {
  contentLengths = 0;
  badContentLength = false;
  transferEncodings = 0;
  // The same pass collects the fields the handler reads (src/http/head-fields.ts).
  passStart();
  req.forEach(visit);
  // Every plain request ends here; a chunked upload takes the longer way.
  if (transferEncodings === 0 && contentLengths <= 1 && !badContentLength) return null;
  return refusal();
}

function refusal(): AppError | null {
  // Framing first: it says more about the request than its codings. uWS v20.51 still passes two Content-Length
  // fields (equal or not) and frames the body with the first.
  if (contentLengths > 1) return new AppError('bad_framing', 'more than one Content-Length header');
  if (badContentLength) return new AppError('bad_framing', 'Content-Length must be a decimal number');
  // uWS answers 400 itself for both when Transfer-Encoding has a value; an empty one reaches here.
  if (transferEncodings > 0 && contentLengths > 0) return new AppError('bad_framing', 'Transfer-Encoding and Content-Length together');
  if (transferEncodings > 0) return transferCodingError(transferEncoding);
  return null;
}

/**
 * RFC 9112 6.1/6.3: a request whose final transfer coding is not `chunked` (or that applies it twice) has no
 * determinable length: 400. A valid list with other codings before `chunked` (`gzip, chunked`) is one we do not
 * decode: 501. uWS v20.51, like 20.30, de-chunks any non-empty Transfer-Encoding and ignores the rest, so both
 * are refused.
 */
function transferCodingError(value: string): AppError | null {
  const codings = value
    .toLowerCase()
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '');
  const chunked = codings.filter((c) => c === 'chunked').length;
  if (codings.at(-1) !== 'chunked' || chunked > 1) {
    return new AppError('bad_framing', 'chunked must be the final transfer coding, applied once');
  }
  if (codings.length > 1) return new AppError('unsupported_transfer_encoding');
  return null;
}
