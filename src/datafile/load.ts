// Reads a DATA_FILE (size-capped), hashes its bytes and validates its content: the result is either everything the
// writer needs or the reason it is refused. Nothing here touches the database.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { issueDetails } from '../shared/issues.js';
import { DATA_FILE_MAX_BYTES, dataFileSchema, type DataFileContent } from '../shared/data-file-format.js';

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

/** Longest a read of the file may take before it is given up (a stuck network mount, say). */
export const DATA_FILE_READ_TIMEOUT_MS = 5000;

/** A read that outlived its timeout and has not returned yet: no second one is started beside it. */
let stuck: Promise<unknown> | null = null;

/**
 * The file's first `limit` bytes, from a regular file only. A FIFO, socket or device could block a read (or the open)
 * forever in libuv's thread pool, and Node's exit waits for those threads: the process could then not end, even on
 * SIGTERM. O_NONBLOCK makes the open of a FIFO without a writer return at once; fstat() on what was opened refuses
 * it. Capped at `limit` bytes so a file that grows while read cannot make us read without bound.
 */
async function readAtMost(file: string, limit: number, timeoutMs = DATA_FILE_READ_TIMEOUT_MS): Promise<Buffer> {
  if (stuck) throw new Error(`a previous read of the file has not returned after more than ${timeoutMs} ms (stuck storage?)`);
  const read = readRegular(file, limit);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const p: Promise<void> = read.then(
        () => {},
        () => {},
      ).then(() => {
        if (stuck === p) stuck = null;
      });
      stuck = p;
      reject(new Error(`reading it took longer than ${timeoutMs} ms (stuck storage?)`));
    }, timeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([read, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function readRegular(file: string, limit: number): Promise<Buffer> {
  const fh = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new Error(`it is not a regular file (${kind(st)}); only a regular file is read`);
    const chunks: Buffer[] = [];
    let n = 0;
    while (n < limit) {
      // Sized from fstat() (+1 to see the end); a file growing meanwhile is read on, still within the cap.
      const buf = Buffer.allocUnsafe(Math.min(limit - n, Math.max(st.size - n + 1, 64 * 1024)));
      const { bytesRead } = await fh.read(buf, 0, buf.length, n);
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
      n += bytesRead;
    }
    return Buffer.concat(chunks, n);
  } finally {
    await fh.close();
  }
}

function kind(st: fs.Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}
