// LZ4 *block* decompression (the format LTX v3 pages use: github.com/lz4/lz4 doc/lz4_Block_format.md), without a
// dependency: a follower decodes a few pages per poll, and this loop is all it needs.
//
// A block is a run of sequences: a token (high nibble: literal count, low nibble: match length - 4; 15 means "more
// bytes follow", each 255 meaning "and more"), the literals, then a 2-byte little-endian offset back into the output
// and the match. The last sequence has literals only and ends the input. Every length is checked against both
// buffers before any copy, so malformed input throws instead of reading or writing out of bounds (typed arrays would
// not throw on their own: an index past the end reads undefined and a write there is dropped silently).

export class Lz4Error extends Error {
  override name = 'Lz4Error';
}

/** Decompresses the LZ4 block `src` into `dst`; returns the number of bytes written. */
export function lz4BlockDecompress(src: Uint8Array, dst: Uint8Array): number {
  const srcEnd = src.length;
  const dstEnd = dst.length;
  let s = 0;
  let d = 0;
  if (srcEnd === 0) throw new Lz4Error('lz4: empty block');
  for (;;) {
    const token = src[s++]!;

    // Literals.
    let literals = token >>> 4;
    if (literals === 15) {
      for (;;) {
        if (s >= srcEnd) throw new Lz4Error('lz4: truncated literal length');
        const b = src[s++]!;
        literals += b;
        if (b !== 255) break;
      }
    }
    if (literals > srcEnd - s) throw new Lz4Error(`lz4: ${literals} literals at ${s} run past the input (${srcEnd} bytes)`);
    if (literals > dstEnd - d) throw new Lz4Error(`lz4: output overflow (${d + literals} > ${dstEnd} bytes)`);
    if (literals < 16) {
      for (let k = 0; k < literals; k++) dst[d + k] = src[s + k]!;
    } else {
      dst.set(src.subarray(s, s + literals), d);
    }
    s += literals;
    d += literals;
    if (s === srcEnd) return d; // the last sequence: literals only

    // Match.
    if (srcEnd - s < 2) throw new Lz4Error('lz4: truncated match offset');
    const offset = src[s]! | (src[s + 1]! << 8);
    s += 2;
    if (offset === 0 || offset > d) throw new Lz4Error(`lz4: match offset ${offset} at output ${d} points outside the output`);
    let length = (token & 0x0f) + 4;
    if (length === 19) {
      for (;;) {
        if (s >= srcEnd) throw new Lz4Error('lz4: truncated match length');
        const b = src[s++]!;
        length += b;
        if (b !== 255) break;
      }
    }
    if (length > dstEnd - d) throw new Lz4Error(`lz4: output overflow (${d + length} > ${dstEnd} bytes)`);
    let from = d - offset;
    if (length <= 16) {
      // Short (most matches in a page): a loop beats a call, and reproduces an overlapping match as LZ4 means it.
      for (const end = d + length; d < end; ) dst[d++] = dst[from++]!;
    } else {
      // The match repeats the last `offset` bytes. Copy them, then the doubled run, and so on: each source range
      // is fully written before it is read, and lies a multiple of `offset` back (runs of zeros: a few calls, not
      // a few thousand iterations).
      for (let chunk = offset; length > 0; chunk *= 2) {
        const n = Math.min(chunk, length);
        dst.copyWithin(d, from, from + n);
        d += n;
        length -= n;
      }
    }
    if (s >= srcEnd) throw new Lz4Error('lz4: block ends with a match (the last sequence must be literals)');
  }
}
