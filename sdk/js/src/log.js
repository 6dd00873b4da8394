// Structured lines in the host's log, tagged with the plugin, its version and
// the call's id; each field is a JSON field of the line:
// `log.info('cache miss', { key })`. Natively they go to stderr and to
// `testing.logs`. (`console.log` works too: see `console.js`.)

import { log } from './host.js';

export const trace = (message, fields) => log('trace', message, fields);
export const debug = (message, fields) => log('debug', message, fields);
export const info = (message, fields) => log('info', message, fields);
export const warn = (message, fields) => log('warn', message, fields);
export const error = (message, fields) => log('error', message, fields);
