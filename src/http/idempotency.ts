// Idempotency-Key on the HTTP side: the key is read while the request is valid, and the fingerprint of the
// request (method, path, parsed JSON body) is taken once the body is parsed. The writer does the rest
// (src/writer/idempotency.ts).
import { createHash } from 'node:crypto';
import type { HttpRequest } from 'uWebSockets.js';
import { AppError } from '../shared/errors.js';
import type { IdempotencyTag } from '../shared/protocol.js';
import { idempotencyFields } from './head-fields.js';

const KEY = /^[\x20-\x7e]{1,128}$/;

/** JSON with object keys sorted at every level: equal for bodies that parse to equal values. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function invalid(message: string): AppError {
  return new AppError('validation_failed', 'invalid Idempotency-Key', [{ path: 'header.Idempotency-Key', message }]);
}

/**
 * Reads Idempotency-Key (absent: undefined). Returns the function that tags the command once its body is parsed.
 * A malformed key is a 400, never a changed key: uWS hands over a byte outside ASCII inside the value as a
 * replacement character (refused here) and answers a control byte or NUL with its own 400; but it trims bytes
 * >= 0x80 at either end of a value as if they were spaces, so `zz\xe9` reaches us as `zz` (docs/api.md
 * "Idempotency-Key" says so: keys must be printable ASCII; one that is not may be shortened before we see it).
 */
export function idempotencyKey(req: HttpRequest): ((body: unknown) => IdempotencyTag) | undefined {
  // Every field, not getHeader's first one: a second Idempotency-Key must be refused, not ignored, and an empty
  // value (or one uWS trimmed to nothing, below) must be told apart from no header at all.
  const { count, value: key } = idempotencyFields(req);
  if (count === 0) return undefined;
  if (count > 1) throw invalid('must be sent once (the request has more than one Idempotency-Key header)');
  if (!KEY.test(key)) {
    throw invalid(
      key === ''
        ? 'must be 1..128 printable ASCII characters (the header is empty, or held only bytes outside ASCII)'
        : 'must be 1..128 printable ASCII characters',
    );
  }
  const target = `${req.getMethod().toUpperCase()} ${req.getUrl()}\n`;
  return (body) => ({ key, fingerprint: createHash('sha256').update(target).update(canonical(body)).digest('base64') });
}
