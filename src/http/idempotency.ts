// Idempotency-Key on the HTTP side: the key is read while the request is valid, and the fingerprint of the
// request (method, path, parsed JSON body) is taken once the body is parsed. The writer does the rest
// (src/writer/idempotency.ts).
import { createHash } from 'node:crypto';
import type { HttpRequest } from 'uWebSockets.js';
import { AppError } from '../errors.js';
import type { IdempotencyTag } from '../protocol.js';

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

/**
 * Reads Idempotency-Key (absent: undefined). Returns the function that tags the command once its body is parsed.
 * A malformed key is a 400.
 */
export function idempotencyKey(req: HttpRequest): ((body: unknown) => IdempotencyTag) | undefined {
  const key = req.getHeader('idempotency-key');
  if (key === '') return undefined;
  if (!KEY.test(key)) {
    throw new AppError('validation_failed', 'invalid Idempotency-Key', [
      { path: 'header.Idempotency-Key', message: 'must be 1..128 printable ASCII characters' },
    ]);
  }
  const target = `${req.getMethod().toUpperCase()} ${req.getUrl()}\n`;
  return (body) => ({ key, fingerprint: createHash('sha256').update(target).update(canonical(body)).digest('base64') });
}
