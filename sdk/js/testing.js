// The native test harness: test a plugin with `node --test`, no WebAssembly
// and no host. `configure({ budget_ms: '80' })` sets what `config` answers;
// `logs` holds every `log` call; `invoke` calls a unit the way the host
// does, so a test sees the typed error the caller would.

import { nativeConfig, nativeLogs } from './src/host.js';
import { serve } from './src/worlds.js';
import * as utf8 from './src/utf8.js';

/** Every `log` call since the last `reset`: `{ level, message, fields }`. */
export const logs = nativeLogs;

/** Replace the configuration `config` reads (values as text, as the host hands them over). */
export function configure(settings = {}) {
  nativeConfig.clear();
  for (const [k, v] of Object.entries(settings)) nativeConfig.set(k, String(v));
}

/** No configuration, no logs. */
export function reset() {
  nativeConfig.clear();
  nativeLogs.length = 0;
}

/** A call context as the host passes it (u64 fields are numbers under QuickJS). */
export function context({ attempt = 1, scopePct = null, deadlineMs = 5000 } = {}) {
  return { attempt, scopePct, deadlineMs };
}

/** Call `unit` as the host would; `request` as a Uint8Array or text. Returns
 * the answer's bytes, or throws `UnitError`. */
export function invoke(unit, request, ctx = context()) {
  const bytes = typeof request === 'string' ? utf8.encode(request) : request;
  return serve((c, r) => unit.handle(c, r), ctx, bytes);
}

/** An answer's bytes as text. */
export const text = (bytes) => utf8.decode(bytes);
