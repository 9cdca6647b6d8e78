// Which request bodies are JSON by their Content-Type (docs/api.md "Request bodies").
import { AppError } from '../shared/errors.js';

// type/subtype, then parameters; `+json` structured-syntax suffixes (RFC 6839) are JSON too.
const MEDIA = /^application\/(?:json|[a-z0-9!#$&^_.-]+\+json)$/;

/**
 * Null when a body sent with this Content-Type (as uWS hands it over; '' when absent) may be read as JSON;
 * otherwise the 415 to answer. An absent Content-Type is accepted: JSON is the only format the API takes,
 * so there is nothing else to read the body as (and malformed JSON or UTF-8 is still a 400). A declared
 * type that is not JSON is refused: the client says it sent something else (curl -d sends a form type).
 */
export function contentTypeError(value: string): AppError | null {
  // What nearly every client sends, without the split and the regular expression.
  if (value === '' || value === 'application/json') return null;
  const [type = '', ...params] = value.split(';');
  if (!MEDIA.test(type.trim().toLowerCase())) return refuse(`Content-Type ${quote(type.trim())} is not JSON`);
  for (const p of params) {
    const eq = p.indexOf('=');
    const name = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase();
    if (name !== 'charset') continue;
    const charset = p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase();
    if (charset !== 'utf-8') return refuse(`charset ${quote(charset)} is not utf-8`);
  }
  return null;
}

function refuse(why: string): AppError {
  return new AppError('unsupported_media_type', `${why}: request bodies must be application/json (or +json), charset utf-8 if given`);
}

/** At most 64 characters of what the client sent, JSON-quoted (it may hold anything). */
function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}...` : s);
}
