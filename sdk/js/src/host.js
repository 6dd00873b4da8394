// The host's two imports, `config` and `log`, and the guest's stdout and
// stderr, with plain stand-ins when the code is not running inside a
// component (a test under `node --test`).
//
// `kaizen-sdk/component` (imported by the component's entry module) connects
// the real ones: `config` reads `[runtime.plugin_config.NAME]` of the host's
// configuration, `log` writes a line into the host's log tagged with the
// plugin, its version and the call's id, each field a JSON field of its own,
// and stdout / stderr are WASI streams the host logs line by line with the
// call's id. Natively `config` reads what `testing.configure` set, `log`
// keeps its entries in `testing.logs`, and output goes to the process's.

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];

let connected = null;

/** Natively: the configuration `config` answers from. */
export const nativeConfig = new Map();
/** Natively: every `log` call, as `{ level, message, fields }`. */
export const nativeLogs = [];

/** Use the host's imports: `{ config, log, stdout, stderr }` (the last two
 * write text). Called by `kaizen-sdk/component`. */
export function connect(host) {
  connected = host;
}

/** Whether the code runs inside a component connected to a host. */
export function inComponent() {
  return connected !== null;
}

/** This plugin's configuration value for `key`, or `null` if unset. */
export function config(key) {
  if (connected) return connected.config(key) ?? null;
  return nativeConfig.has(key) ? nativeConfig.get(key) : null;
}

/** A structured line in the host's log: `log('info', 'cache miss', { key })`. */
export function log(level, message, fields = {}) {
  if (!LEVELS.includes(level)) throw new TypeError(`log level must be one of ${LEVELS.join(', ')}, not ${level}`);
  const pairs = Object.entries(fields).map(([k, v]) => [String(k), String(v)]);
  if (connected) return connected.log(level, String(message), pairs);
  nativeLogs.push({ level, message: String(message), fields: Object.fromEntries(pairs) });
  writeErr(`[${level}] ${message}${pairs.map(([k, v]) => ` ${k}=${v}`).join('')}\n`);
}

/** Text to the guest's stdout (the host's log, with the call's id). */
export function writeOut(text) {
  if (connected) return connected.stdout(text);
  globalThis.process?.stdout?.write(text);
}

/** Text to the guest's stderr (the host's log, with the call's id). */
export function writeErr(text) {
  if (connected) return connected.stderr(text);
  globalThis.process?.stderr?.write(text);
}
