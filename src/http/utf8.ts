// UTF-8 well-formedness (RFC 3629): Node's isUtf8 (simdutf) answers the common case; the byte offset of the first
// ill-formed sequence is found only for a body that fails it, so a client learns where its encoding went wrong.
import { isUtf8 } from 'node:buffer';

/** -1 when `b` is well-formed UTF-8, else the offset of the first byte of the first ill-formed sequence. */
export function invalidUtf8At(b: Uint8Array): number {
  if (isUtf8(b)) return -1;
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    // Lead byte: sequence length and the range its first continuation byte must fall in (Table 3-7 of the
    // Unicode standard), which excludes overlong forms (C0, C1, E0 80..9F, F0 80..8F), UTF-16 surrogates
    // (ED A0..BF) and code points above U+10FFFF (F4 90.., F5..FF).
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0;
      else if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      else if (c === 0xf4) hi = 0x8f;
    } else return i;
    // Past the end, a continuation byte reads as undefined: a sequence truncated by the body's end fails too.
    const first = b[i + 1];
    if (first === undefined || first < lo || first > hi) return i;
    for (let k = 2; k <= n; k++) {
      const cc = b[i + k];
      if (cc === undefined || cc < 0x80 || cc > 0xbf) return i;
    }
    i += n + 1;
  }
  // isUtf8 and this scan disagree: never expected; report the end rather than claim the body is fine.
  return b.length;
}
