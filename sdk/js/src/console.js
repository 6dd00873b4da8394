// A `console` for the QuickJS engine, which has none: `log`, `info` and
// `debug` write to stdout, `warn` and `error` to stderr; the host logs both
// line by line with the call's id (bounded per call).

import { writeErr, writeOut } from './host.js';

/** One argument as console.log shows it: text as is, an Error with its stack. */
export function format(value) {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return value.stack ? `${value.name}: ${value.message}\n${value.stack}` : String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return String(value);
  try {
    return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? `${v}n` : v));
  } catch {
    return String(value);
  }
}

const line = (args) => `${args.map(format).join(' ')}\n`;

export const console = {
  log: (...args) => writeOut(line(args)),
  info: (...args) => writeOut(line(args)),
  debug: (...args) => writeOut(line(args)),
  warn: (...args) => writeErr(line(args)),
  error: (...args) => writeErr(line(args)),
};
