// Reads a DATA_FILE (size-capped), hashes its bytes and validates its content: the result is either everything the
// writer needs or the reason it is refused. Nothing here touches the database.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { issueDetails } from '../schemas.js';
import { DATA_FILE_MAX_BYTES, dataFileSchema, type DataFileContent } from './schema.js';

export type Loaded =
  | { ok: DataFileContent }
  /** `hash` is absent when the bytes could not be read; `issues` lists what failed validation. */
  | { invalid: string; hash?: string; issues?: { path: string; message: string }[] };

const utf8 = new TextDecoder('utf-8', { fatal: true });

export async function loadDataFile(file: string, maxBytes = DATA_FILE_MAX_BYTES): Promise<Loaded> {
  let bytes: Buffer;
  try {
    bytes = await readAtMost(file, maxBytes + 1);
  } catch (err) {
    return { invalid: `cannot read the file: ${(err as Error).message}` };
  }
  if (bytes.length > maxBytes) return { invalid: `the file is larger than ${maxBytes} bytes` };
  const hash = createHash('sha256').update(bytes).digest('hex');
  let value: unknown;
  try {
    // The decoder drops a leading BOM and refuses malformed UTF-8 rather than storing U+FFFD.
    value = JSON.parse(utf8.decode(bytes));
  } catch (err) {
    // V8 quotes the text around the error, which for a small file is all of it: keep the reason, drop the quote.
    const reason = (err as Error).message.replace(/, (\.\.\.)?".*"(\.\.\.)? is not valid JSON$/s, '');
    return { invalid: `not valid JSON: ${reason}`, hash };
  }
  const r = dataFileSchema.safeParse(value);
  // "__proto__" is a valid counter name, but zod's record would leave it out silently: refuse it instead.
  const counters = (value as { counters?: unknown } | null)?.counters;
  const proto =
    typeof counters === 'object' && counters !== null && Object.hasOwn(counters, '__proto__')
      ? [{ path: 'counters.__proto__', message: 'this counter name cannot be set from a data file' }]
      : [];
  if (!r.success || proto.length > 0) {
    return { invalid: 'the content does not match the data file format', hash, issues: [...proto, ...(r.error ? issueDetails(r.error, '') : [])] };
  }
  return { ok: { hash, counters: Object.entries(r.data.counters ?? {}), products: r.data.products ?? [] } };
}

/** The file's first `limit` bytes: a file that grows after stat() cannot make us read without bound. */
async function readAtMost(file: string, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of fs.createReadStream(file, { start: 0, end: limit - 1 }) as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    n += chunk.length;
  }
  return Buffer.concat(chunks, n);
}
