// Typed reads of the plugin's configuration (all values arrive as text).
// `config.float('budget_ms', 50)` answers the default when the key is unset
// and throws a TypeError naming the key when the text is not a number, so a
// mistyped setting is not silently ignored.

import { config as raw } from './host.js';

/** The raw text for `key`, else `fallback`. */
export function get(key, fallback = null) {
  return raw(key) ?? fallback;
}

function parse(key, fallback, what, ok, convert) {
  const text = raw(key);
  if (text === null) return fallback;
  const t = text.trim();
  if (!ok(t)) throw new TypeError(`plugin setting \`${key}\` = "${text}" is not ${what}`);
  return convert(t);
}

/** `key` as an integer, else `fallback`. */
export function int(key, fallback) {
  return parse(key, fallback, 'an integer', (t) => /^[+-]?\d+$/.test(t), Number);
}

/** `key` as a number, else `fallback`. */
export function float(key, fallback) {
  return parse(key, fallback, 'a number', (t) => t !== '' && Number.isFinite(Number(t)), Number);
}

/** `key` as `true` / `false`, else `fallback`. */
export function bool(key, fallback) {
  return parse(key, fallback, 'true or false', (t) => t === 'true' || t === 'false', (t) => t === 'true');
}
