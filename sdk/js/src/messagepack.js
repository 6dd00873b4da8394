// A small MessagePack codec (nil, booleans, numbers, strings, binary,
// arrays, maps) in plain JavaScript, for the QuickJS engine as for Node.
// Integers past 2^53 decode as BigInt; a BigInt encodes as a 64-bit integer.
// `unpack` recurses once per level: call it through `payload.decode`,
// which bounds the nesting first.

import * as utf8 from './utf8.js';

export class MessagePackError extends Error {}

export function pack(value) {
  const out = [];
  write(value, out);
  return Uint8Array.from(out);
}

function be(out, n, bytes) {
  for (let i = bytes - 1; i >= 0; i--) out.push(Math.floor(n / 2 ** (8 * i)) & 0xff);
}

function header(out, n, fix, fixMax, markers) {
  if (fix !== null && n <= fixMax) return out.push(fix | n);
  const widths = [1, 2, 4];
  for (let i = 0; i < 3; i++) {
    if (markers[i] !== null && n < 2 ** (8 * widths[i])) {
      out.push(markers[i]);
      return be(out, n, widths[i]);
    }
  }
  throw new MessagePackError(`${n} items or bytes is more than MessagePack holds`);
}

function writeBig(out, v) {
  if (v >= 0n && v < 2n ** 64n) {
    out.push(0xcf);
    for (let i = 7n; i >= 0n; i--) out.push(Number((v >> (8n * i)) & 0xffn));
  } else if (v < 0n && v >= -(2n ** 63n)) {
    const u = 2n ** 64n + v;
    out.push(0xd3);
    for (let i = 7n; i >= 0n; i--) out.push(Number((u >> (8n * i)) & 0xffn));
  } else {
    throw new MessagePackError(`integer ${v} does not fit in 64 bits`);
  }
}

function write(v, out) {
  if (v === null || v === undefined) out.push(0xc0);
  else if (v === true || v === false) out.push(v ? 0xc3 : 0xc2);
  else if (typeof v === 'bigint') writeBig(out, v);
  else if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) {
      if (v >= 0 && v < 0x80) out.push(v);
      else if (v < 0 && v >= -32) out.push(v & 0xff);
      else if (v >= 0) {
        const [marker, bytes] = v < 0x100 ? [0xcc, 1] : v < 0x10000 ? [0xcd, 2] : v < 2 ** 32 ? [0xce, 4] : [0xcf, 8];
        out.push(marker);
        be(out, v, bytes);
      } else if (v >= -(2 ** 31)) {
        const [marker, bytes] = v >= -0x80 ? [0xd0, 1] : v >= -0x8000 ? [0xd1, 2] : [0xd2, 4];
        out.push(marker);
        be(out, v + 2 ** (8 * bytes), bytes);
      } else writeBig(out, BigInt(v));
    } else {
      const view = new DataView(new ArrayBuffer(8));
      view.setFloat64(0, v);
      out.push(0xcb, ...new Uint8Array(view.buffer));
    }
  } else if (typeof v === 'string') {
    const data = utf8.encode(v);
    header(out, data.length, 0xa0, 31, [0xd9, 0xda, 0xdb]);
    for (const b of data) out.push(b);
  } else if (v instanceof Uint8Array) {
    header(out, v.length, null, 0, [0xc4, 0xc5, 0xc6]);
    for (const b of v) out.push(b);
  } else if (Array.isArray(v)) {
    header(out, v.length, 0x90, 15, [null, 0xdc, 0xdd]);
    for (const item of v) write(item, out);
  } else if (v instanceof Map) {
    header(out, v.size, 0x80, 15, [null, 0xde, 0xdf]);
    for (const [k, item] of v) {
      write(k, out);
      write(item, out);
    }
  } else if (typeof v === 'object') {
    const entries = Object.entries(v);
    header(out, entries.length, 0x80, 15, [null, 0xde, 0xdf]);
    for (const [k, item] of entries) {
      write(k, out);
      write(item, out);
    }
  } else {
    throw new MessagePackError(`cannot encode a ${typeof v} as MessagePack`);
  }
}

/** The one value in `bytes`; trailing bytes are an error. Maps decode to
 * plain objects (keys as text). */
export function unpack(bytes) {
  const r = new Reader(bytes);
  const value = r.value();
  if (r.at !== bytes.length) throw new MessagePackError(`${bytes.length - r.at} bytes after the value`);
  return value;
}

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.at = 0;
  }

  take(n) {
    if (this.at + n > this.bytes.length) throw new MessagePackError('truncated value');
    const at = this.at;
    this.at += n;
    return at;
  }

  uint(n) {
    const at = this.take(n);
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + this.bytes[at + i];
    return v;
  }

  int64(signed) {
    const at = this.take(8);
    const v = signed ? this.view.getBigInt64(at) : this.view.getBigUint64(at);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  str(n) {
    const at = this.take(n);
    try {
      return utf8.decode(this.bytes.subarray(at, at + n));
    } catch (e) {
      throw new MessagePackError(`string is not UTF-8: ${e.message}`);
    }
  }

  bin(n) {
    const at = this.take(n);
    return this.bytes.slice(at, at + n);
  }

  array(n) {
    const items = [];
    for (let i = 0; i < n; i++) items.push(this.value());
    return items;
  }

  map(n) {
    const result = {};
    for (let i = 0; i < n; i++) {
      const key = this.value();
      result[typeof key === 'object' && key !== null ? JSON.stringify(key) : String(key)] = this.value();
    }
    return result;
  }

  value() {
    const m = this.bytes[this.take(1)];
    if (m <= 0x7f) return m;
    if (m >= 0xe0) return m - 0x100;
    if (m >= 0x80 && m <= 0x8f) return this.map(m & 0x0f);
    if (m >= 0x90 && m <= 0x9f) return this.array(m & 0x0f);
    if (m >= 0xa0 && m <= 0xbf) return this.str(m & 0x1f);
    switch (m) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.bin(this.uint(1));
      case 0xc5: return this.bin(this.uint(2));
      case 0xc6: return this.bin(this.uint(4));
      case 0xca: return this.view.getFloat32(this.take(4));
      case 0xcb: return this.view.getFloat64(this.take(8));
      case 0xcc: return this.uint(1);
      case 0xcd: return this.uint(2);
      case 0xce: return this.uint(4);
      case 0xcf: return this.int64(false);
      case 0xd0: return this.view.getInt8(this.take(1));
      case 0xd1: return this.view.getInt16(this.take(2));
      case 0xd2: return this.view.getInt32(this.take(4));
      case 0xd3: return this.int64(true);
      case 0xd9: return this.str(this.uint(1));
      case 0xda: return this.str(this.uint(2));
      case 0xdb: return this.str(this.uint(4));
      case 0xdc: return this.array(this.uint(2));
      case 0xdd: return this.array(this.uint(4));
      case 0xde: return this.map(this.uint(2));
      case 0xdf: return this.map(this.uint(4));
      default: throw new MessagePackError(`unsupported MessagePack marker 0x${m.toString(16)}`);
    }
  }
}
