// Request bodies: read whole up to a cap (413 past it, the rest discarded while the connection lingers), and parsed
// as JSON from well-formed UTF-8 only.
import type { HttpRequest } from 'uWebSockets.js';
import { AppError } from '../shared/errors.js';
import type { Exchange } from './exchange.js';
import { declaredLength } from './request.js';
import { invalidUtf8At } from './utf8.js';

/**
 * Reads the whole body (at most `max` bytes) and hands it to `cb` as bytes (decoded by parseJson, which refuses
 * malformed UTF-8). The buffer may be uWS's own, valid only while `cb` runs: `cb` must not keep it.
 * Past the cap it answers 413 at once, then reads and drops the rest of the body before it closes (linger.ts).
 */
export function readBody(ex: Exchange, req: HttpRequest, max: number, cb: (body: Buffer) => void): void {
  const declared = declaredLength(req);
  if (declared !== '' && Number(declared) > max) {
    ex.error(tooLarge(max));
    return;
  }
  ex.goAsync();
  let chunks: Buffer[] | null = null;
  let size = 0;
  // Once the exchange is answered (413 here, or a timeout) the rest of the body no longer comes here.
  ex.onBody((ab, isLast) => {
    size += ab.byteLength;
    if (size > max) {
      ex.error(tooLarge(max));
      return;
    }
    if (isLast && chunks === null) {
      // Single chunk: decode straight from uWS's buffer, valid only during this callback.
      cb(Buffer.from(ab));
      return;
    }
    (chunks ??= []).push(Buffer.from(new Uint8Array(ab)));
    if (isLast) cb(Buffer.concat(chunks, size));
  });
}

function tooLarge(max: number): AppError {
  return new AppError('payload_too_large', `request body exceeds ${max} bytes`);
}

/**
 * Parses a JSON body; an empty body is `empty` when given, else invalid. The bytes must be well-formed UTF-8:
 * decoding them as is would store U+FFFD in place of what the client sent (a Latin-1 byte, a CESU-8 surrogate,
 * an overlong form), so they are refused with the offset of the first bad byte.
 */
export function parseJson(bytes: Buffer, empty?: unknown): unknown {
  if (bytes.length === 0 && empty !== undefined) return empty;
  const bad = invalidUtf8At(bytes);
  if (bad >= 0) throw new AppError('invalid_json', `request body is not valid UTF-8 (byte offset ${bad})`);
  const text = bytes.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError('invalid_json', text.length === 0 ? 'request body is empty; a JSON object is required' : undefined);
  }
}
