// Path parameters as the client meant them: percent-decoded once, like query parameters (URLSearchParams), so
// `/products/%31` is product 1 and `/counters/a%2Eb` is counter `a.b`.
import type { HttpRequest } from 'uWebSockets.js';
import { AppError } from '../shared/errors.js';

function refuse(where: string, message: string): AppError {
  return new AppError('validation_failed', `invalid ${where}`, [{ path: where, message }]);
}

/** Parameter `i` of the route pattern, decoded; a malformed escape or an encoded `/` is a 400. */
export function pathParam(req: HttpRequest, i: number, where: string): string {
  const raw = req.getParameter(i) ?? '';
  if (!raw.includes('%')) return raw;
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw refuse(where, 'has a malformed percent-escape (% must be followed by two hex digits of UTF-8)');
  }
  // A `/` here was sent as %2F: decoding once would make it a path separator the route never saw.
  if (decoded.includes('/')) throw refuse(where, 'must not contain an encoded "/" (%2F)');
  return decoded;
}
