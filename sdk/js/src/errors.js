// A unit's typed failure, as a JavaScript exception.
//
// `throw new UnitError('invalid-input', 'missing "name"')` anywhere below a
// unit's `handle` answers the call with that class and message (HTTP 422 for
// `invalid-input`, which does not count against the unit). Any other thrown
// value becomes the `internal` class with its message, and its stack goes to
// stderr, which the host logs with the call's id.

/** The contract's classes without a payload, by their WIT names. */
const SIMPLE = new Set(['timeout', 'memory', 'invalid-input', 'dependency', 'internal', 'circuit-open']);

export class UnitError extends Error {
  /**
   * @param {string} errorClass the class's contract name (`invalid-input`,
   *   `dependency`, `internal`, ...); another name is sent as `other(name)`.
   * @param {string} message
   */
  constructor(errorClass, message) {
    if (typeof errorClass !== 'string' || errorClass === '') {
      throw new TypeError(`errorClass must be a class name such as 'invalid-input', not ${String(errorClass)}`);
    }
    super(message);
    this.name = 'UnitError';
    this.errorClass = errorClass;
  }

  toString() {
    return `${this.errorClass}: ${this.message}`;
  }

  /** This error as the WIT `unit-error` record jco lowers from a throw. */
  toWit() {
    return { errorClass: errorClassToWit(this.errorClass), message: this.message };
  }
}

/** The WIT `error-class` variant for a class name. */
export function errorClassToWit(name) {
  if (SIMPLE.has(name)) return { tag: name };
  if (name === 'trap') return { tag: 'trap', val: 'raised by the unit' };
  return { tag: 'other', val: name };
}

/** A thrown value's message: an Error's `message`, else its text. */
export function describeThrown(e) {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  try {
    return typeof e === 'string' ? e : JSON.stringify(e);
  } catch {
    return String(e);
  }
}
