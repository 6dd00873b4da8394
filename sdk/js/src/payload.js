// Request and response payloads. Units may speak JSON or MessagePack;
// `decode` accepts either (JSON is recognised by its first non-space byte)
// and `encode` answers in the encoding the request came in.
//
// Decoding refuses a payload nested deeper than a limit (DEFAULT_MAX_DEPTH,
// or the plugin's `payload_max_depth` setting) as `invalid-input` before any
// recursive parser sees it: the nesting is measured by a loop over the
// bytes. A request of 100 000 nested arrays is then the caller's mistake,
// not an exhausted wasm stack that traps and counts against the unit.

import * as config from './config.js';
import { UnitError } from './errors.js';
import * as messagepack from './messagepack.js';
import * as utf8 from './utf8.js';

/** Nesting a payload may have unless configured (as the Rust SDK). */
export const DEFAULT_MAX_DEPTH = 128;
/** The plugin setting that changes it: `[runtime.plugin_config.NAME] payload_max_depth = 64`. */
export const MAX_DEPTH_KEY = 'payload_max_depth';
export const JSON_ENCODING = 'JSON';
export const MESSAGEPACK = 'MessagePack';

const isSpace = (b) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;

/** `JSON` when the first non-space byte opens an object, array or string, else `MessagePack`. */
export function sniff(bytes) {
  for (const b of bytes) {
    if (isSpace(b)) continue;
    return b === 0x7b || b === 0x5b || b === 0x22 ? JSON_ENCODING : MESSAGEPACK;
  }
  return MESSAGEPACK;
}

/** The plugin's `payload_max_depth` setting, else DEFAULT_MAX_DEPTH. */
export function maxDepth() {
  try {
    return config.int(MAX_DEPTH_KEY, DEFAULT_MAX_DEPTH);
  } catch {
    return DEFAULT_MAX_DEPTH;
  }
}

/**
 * `{ value, encoding }` of a JSON or MessagePack request, nested at most
 * `limit` levels deep (default: `maxDepth()`). Throws
 * `UnitError('invalid-input', …)` for anything else.
 */
export function decode(bytes, limit = maxDepth()) {
  bytes = bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes);
  const encoding = sniff(bytes);
  const tooDeep = () => new UnitError('invalid-input', `${encoding} request nested deeper than ${limit} levels`);
  const invalid = (e) => new UnitError('invalid-input', `invalid ${encoding} request: ${e.message}`);
  if (encoding === MESSAGEPACK) {
    if (msgpackTooDeep(bytes, limit)) throw tooDeep();
    try {
      return { value: messagepack.unpack(bytes), encoding };
    } catch (e) {
      throw invalid(e);
    }
  }
  let text;
  try {
    text = utf8.decode(bytes);
  } catch (e) {
    throw invalid(e);
  }
  if (jsonTooDeep(text, limit)) throw tooDeep();
  try {
    return { value: JSON.parse(text), encoding };
  } catch (e) {
    throw invalid(e);
  }
}

/** `value` as compact JSON (UTF-8) or MessagePack. */
export function encode(value, encoding = JSON_ENCODING) {
  if (encoding === JSON_ENCODING) return utf8.encode(JSON.stringify(value));
  if (encoding === MESSAGEPACK) return messagepack.pack(value);
  throw new TypeError(`encoding must be '${JSON_ENCODING}' or '${MESSAGEPACK}', not ${String(encoding)}`);
}

/** Whether JSON `text` opens more than `limit` arrays or objects inside each
 * other (brackets inside strings do not count). The engine's regular
 * expressions drop escapes, strings and everything but brackets first, so
 * the loop visits only brackets. Malformed text is left to the parser. */
function jsonTooDeep(text, limit) {
  const brackets = text.replace(/\\[^]/g, '').replace(/"[^"]*"/g, '').replace(/[^[\]{}]/g, '');
  let depth = 0;
  for (let i = 0; i < brackets.length; i++) {
    const c = brackets.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (depth > 0) depth--;
  }
  return false;
}

// Bytes after a fixed-size marker.
const SKIP = {
  0xcc: 1, 0xd0: 1, 0xcd: 2, 0xd1: 2, 0xca: 4, 0xce: 4, 0xd2: 4, 0xcb: 8, 0xcf: 8, 0xd3: 8,
  0xd4: 2, 0xd5: 3, 0xd6: 5, 0xd7: 9, 0xd8: 17,
};
// bin, str, ext: [width of the length, extra bytes (an ext's type)].
const SIZED = {
  0xc4: [1, 0], 0xd9: [1, 0], 0xc5: [2, 0], 0xda: [2, 0], 0xc6: [4, 0], 0xdb: [4, 0],
  0xc7: [1, 1], 0xc8: [2, 1], 0xc9: [4, 1],
};

/** Whether the MessagePack value at the start of `bytes` holds arrays or
 * maps more than `limit` deep: a walk over the markers with a stack of how
 * many items each open container still holds. Malformed or truncated input
 * is left to the parser. */
function msgpackTooDeep(bytes, limit) {
  const be = (at, n) => {
    if (at + n > bytes.length) return null;
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + bytes[at + i];
    return v;
  };
  const open = [1];
  let at = 0;
  while (open.length > 0) {
    if (open[open.length - 1] === 0) {
      open.pop();
      continue;
    }
    open[open.length - 1]--;
    if (at >= bytes.length) return false;
    const m = bytes[at++];
    let skip = 0;
    let items = null;
    if (m <= 0x7f || m >= 0xe0 || m === 0xc0 || m === 0xc2 || m === 0xc3) {
      // a value in the marker itself
    } else if (m >= 0x80 && m <= 0x8f) items = 2 * (m & 0x0f);
    else if (m >= 0x90 && m <= 0x9f) items = m & 0x0f;
    else if (m >= 0xa0 && m <= 0xbf) skip = m & 0x1f;
    else if (m in SKIP) skip = SKIP[m];
    else if (m in SIZED) {
      const [width, extra] = SIZED[m];
      const n = be(at, width);
      if (n === null) return false;
      skip = width + extra + n;
    } else if (m >= 0xdc && m <= 0xdf) {
      const width = m === 0xdc || m === 0xde ? 2 : 4;
      const n = be(at, width);
      if (n === null) return false;
      skip = width;
      items = m >= 0xde ? 2 * n : n;
    } else return false; // 0xc1 is never used: the parser refuses it
    at += skip;
    if (at > bytes.length) return false;
    if (items !== null) {
      // `open` holds the top-level slot plus one entry per container.
      if (open.length > limit) return true;
      open.push(items);
    }
  }
  return false;
}
