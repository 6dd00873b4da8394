// UTF-8 without TextEncoder / TextDecoder, which the QuickJS engine of
// jco's `--backend quickjs` does not have. Under Node the built-ins are used.

const hasCodec = typeof TextEncoder === 'function' && typeof TextDecoder === 'function';
const encoder = hasCodec ? new TextEncoder() : null;
const decoder = hasCodec ? new TextDecoder('utf-8', { fatal: true }) : null;

/** `text` as UTF-8 bytes. */
export function encode(text) {
  if (encoder) return encoder.encode(text);
  const out = [];
  for (const ch of text) {
    const c = ch.codePointAt(0);
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return Uint8Array.from(out);
}

/** UTF-8 `bytes` as text; throws `TypeError` on invalid UTF-8. */
export function decode(bytes) {
  if (decoder) return decoder.decode(bytes);
  const parts = [];
  let points = [];
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i];
    const n = b < 0x80 ? 1 : b >= 0xf0 && b < 0xf8 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 ? 2 : 0;
    if (n === 0 || i + n > bytes.length) throw new TypeError(`invalid UTF-8 at byte ${i}`);
    let c = n === 1 ? b : b & (0xff >> (n + 1));
    for (let k = 1; k < n; k++) {
      const next = bytes[i + k];
      if ((next & 0xc0) !== 0x80) throw new TypeError(`invalid UTF-8 at byte ${i + k}`);
      c = (c << 6) | (next & 63);
    }
    if ((n === 3 && c < 0x800) || (n === 4 && (c < 0x10000 || c > 0x10ffff)) || (c >= 0xd800 && c < 0xe000)) {
      throw new TypeError(`invalid UTF-8 at byte ${i}`);
    }
    points.push(c);
    if (points.length === 4096) {
      parts.push(String.fromCodePoint(...points));
      points = [];
    }
    i += n;
  }
  parts.push(String.fromCodePoint(...points));
  return parts.join('');
}
