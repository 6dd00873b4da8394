// UTF-8 without TextEncoder / TextDecoder, which the QuickJS engine of
// jco's `--backend quickjs` does not have. Under Node the built-ins are used.

const hasCodec = typeof TextEncoder === 'function' && typeof TextDecoder === 'function';
const encoder = hasCodec ? new TextEncoder() : null;
const decoder = hasCodec ? new TextDecoder('utf-8', { fatal: true }) : null;

/** `text` as UTF-8 bytes. */
export function encode(text) {
  if (encoder) return encoder.encode(text);
  // The engine's own encodeURIComponent does the UTF-8; one tight loop copies
  // the bytes (a lone surrogate throws a URIError, as it is not text).
  const binary = unescape(encodeURIComponent(text));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** UTF-8 `bytes` as text; throws `TypeError` on invalid UTF-8. */
export function decode(bytes) {
  if (decoder) return decoder.decode(bytes);
  // Bytes to a binary string in native chunks, then the engine's own
  // decodeURIComponent validates and decodes the UTF-8.
  const parts = [];
  for (let at = 0; at < bytes.length; at += 8192) {
    parts.push(String.fromCharCode.apply(null, bytes.subarray(at, at + 8192)));
  }
  try {
    return decodeURIComponent(escape(parts.join('')));
  } catch {
    throw new TypeError('invalid UTF-8');
  }
}
