// zod issues as the `details` of a validation_failed error (requests) or of a refused DATA_FILE, bounded whatever
// the input's size: both can quote client input (unknown keys, record keys).
import type { z } from 'zod';

/** Validation errors list at most this many issues; the rest are counted in one last entry. */
export const MAX_ISSUES = 20;
/** Longest message or path in an issue. */
const MAX_ISSUE_TEXT = 200;
/** Unknown keys named in an unrecognized_keys issue (zod would name them all). */
const MAX_KEYS_NAMED = 10;

export function issueDetails(error: z.ZodError, prefix: string): { path: string; message: string }[] {
  const shown = error.issues.slice(0, MAX_ISSUES).map((i) => ({
    path: clip([prefix, ...i.path.map(String)].filter(Boolean).join('.')),
    message: i.code === 'unrecognized_keys' ? unknownKeys(i.keys) : clip(i.message),
  }));
  const rest = error.issues.length - shown.length;
  if (rest > 0) shown.push({ path: prefix, message: `${rest} more issue${rest === 1 ? '' : 's'} not listed` });
  return shown;
}

function unknownKeys(keys: readonly string[]): string {
  // At most ~10 x 45 characters, however long or many the keys.
  const named = keys.slice(0, MAX_KEYS_NAMED).map((k) => JSON.stringify(clip(k, 40)));
  const more = keys.length - named.length;
  return `unrecognized key${keys.length === 1 ? '' : 's'}: ${named.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
}

function clip(s: string, max = MAX_ISSUE_TEXT): string {
  return s.length > max ? `${s.slice(0, max)}...` : s;
}
