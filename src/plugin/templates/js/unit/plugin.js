import { greet } from './logic.js';

// QuickJS has no TextEncoder / TextDecoder: UTF-8 through URI escapes.
const utf8Decode = (bytes) => decodeURIComponent(escape(String.fromCharCode(...bytes)));
const utf8Encode = (text) => Uint8Array.from(unescape(encodeURIComponent(text)), (c) => c.charCodeAt(0));

export function describe() {
  return { name: '__NAME__', kind: 'unit', version: '0.1.0', description: 'Greets by name', tunables: [], capabilities: [] };
}

export function invoke(context, request) {
  return utf8Encode(greet(utf8Decode(request)));
}
