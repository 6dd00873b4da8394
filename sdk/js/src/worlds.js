// One constructor per world. Give it what describes the plugin and the
// function that does its work; export its methods from the component's entry
// module (`export const invoke = (c, r) => greeter.invoke(c, r)`).
//
// What they add to jco's bindings: `describe` from the options; exceptions
// turned into the contract's answers (a `UnitError` becomes that typed
// error, any other thrown value the `internal` class with its message, its
// stack written to stderr); for the other worlds an exception still traps
// the call, with its stack in the host's log first.

import { UnitError, describeThrown, errorClassToWit } from './errors.js';
import { writeErr } from './host.js';

function stackOf(e) {
  // QuickJS's `stack` is the frames only (Node's starts with the message).
  if (e instanceof Error) return `${e.name}: ${e.message}\n${(e.stack ?? '').replace(/\n+$/, '')}`;
  return `uncaught ${describeThrown(e)}`;
}

/** Call `handler(context, request)` as the host would: bytes back, or a
 * thrown `UnitError` (another exception becomes `internal` with its
 * message, its stack written to stderr). The native harness calls this
 * too, so a test sees what the caller would. */
export function serve(handler, context, request) {
  try {
    const out = handler(context, request instanceof Uint8Array ? request : Uint8Array.from(request));
    if (!(out instanceof Uint8Array)) {
      throw new TypeError(`handle() must return a Uint8Array, not ${out === null ? 'null' : typeof out}`);
    }
    return out;
  } catch (e) {
    if (e instanceof UnitError) throw e;
    writeErr(`${stackOf(e)}\n`);
    throw new UnitError('internal', describeThrown(e));
  }
}

/** Run an export without an error case: on an exception, write its stack
 * to stderr and let it trap the call. */
function guarded(fn, arg) {
  try {
    return fn(arg);
  } catch (e) {
    writeErr(`${stackOf(e)}\n`);
    throw e;
  }
}

class Plugin {
  constructor(kind, options, method) {
    const { name, version = '0.1.0', description = '', tunables = [], capabilities = [] } = options ?? {};
    if (typeof name !== 'string' || name === '') throw new TypeError(`a ${kind} needs a \`name\``);
    if (typeof options?.[method] !== 'function') throw new TypeError(`${kind} ${name} needs a \`${method}\` function`);
    this.info = { name, kind, version, description, tunables, capabilities };
    this[method] = options[method];
  }

  describe() {
    return this.info;
  }
}

/** A hosted workload: `new Unit({ name, version, description, handle(context, request) })`;
 * `handle` takes and returns a Uint8Array and throws `UnitError` for a typed failure. */
export class Unit extends Plugin {
  constructor(options) {
    super('unit', options, 'handle');
  }

  invoke(context, request) {
    try {
      return serve((c, r) => this.handle(c, r), context, request);
    } catch (e) {
      throw e.toWit(); // jco lowers a thrown record to the result's err case
    }
  }
}

/** A detection rule: `new Detector({ name, find(input) })`, `find` answering findings. */
export class Detector extends Plugin {
  constructor(options) {
    super('detector', options, 'find');
  }

  detect(input) {
    return guarded((i) => this.find(i), input);
  }
}

/** A recovery strategy: `new Recovery({ name, handled: ['timeout'], choose(failure) })`. */
export class Recovery extends Plugin {
  constructor(options) {
    super('recovery', options, 'choose');
    this.handled = options.handled ?? [];
  }

  handles() {
    return this.handled.map(errorClassToWit);
  }

  decide(failure) {
    return guarded((f) => this.choose(f), failure);
  }
}

/** An improvement strategy (contract 0.2): `new Improver({ name, propose(input) })`. */
export class Improver extends Plugin {
  constructor(options) {
    super('improver', options, 'propose');
  }

  improve(input) {
    return guarded((i) => this.propose(i), input);
  }
}
