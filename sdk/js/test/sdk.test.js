// The package's own tests, natively: `node --test` from sdk/js.
import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';

import { Detector, Improver, Recovery, Unit, UnitError, config, log, payload, utf8 } from '../index.js';
import * as messagepack from '../src/messagepack.js';
import * as testing from '../testing.js';

const echo = new Unit({
  name: 'echo',
  handle(context, request) {
    const { value, encoding } = payload.decode(request);
    if (value === 'refuse') throw new UnitError('invalid-input', 'refused on request');
    if (value === 'crash') throw new RangeError('no such thing');
    if (value === 'throw-text') throw 'plain text';
    log.info('echoed', { encoding, attempt: context.attempt });
    return payload.encode(value, encoding);
  },
});

const rejects = (request, errorClass, part) =>
  assert.throws(
    () => testing.invoke(echo, request),
    (e) => e instanceof UnitError && e.errorClass === errorClass && e.message.includes(part),
  );

beforeEach(() => testing.reset());

test('a UnitError keeps its class and message; in the component it is the WIT record', () => {
  rejects('"refuse"', 'invalid-input', 'refused on request');
  assert.throws(() => echo.invoke(testing.context(), utf8.encode('"refuse"')), (e) =>
    assert.deepEqual(e, { errorClass: { tag: 'invalid-input' }, message: 'refused on request' }) ?? true,
  );
  assert.deepEqual(new UnitError('quota', 'x').toWit(), { errorClass: { tag: 'other', val: 'quota' }, message: 'x' });
});

test('any other exception is internal with its message', () => {
  rejects('"crash"', 'internal', 'RangeError: no such thing');
  rejects('"throw-text"', 'internal', 'plain text');
  const wrong = new Unit({ name: 'wrong', handle: () => 'text' });
  assert.throws(() => testing.invoke(wrong, 'x'), (e) => e.errorClass === 'internal' && /Uint8Array/.test(e.message));
});

test('JSON and MessagePack answer in their encoding', () => {
  assert.equal(testing.text(testing.invoke(echo, '{"a": [1, "é"]}')), '{"a":[1,"é"]}');
  const packed = messagepack.pack({ a: [1, 2.5, null, true, 'x'.repeat(40), -300, 2 ** 40] });
  assert.deepEqual(testing.invoke(echo, packed), packed);
});

test('nesting past the limit is invalid-input before parsing', () => {
  rejects('['.repeat(100_000) + ']'.repeat(100_000), 'invalid-input', 'JSON request nested deeper than 128 levels');
  const deep = Uint8Array.from([...new Array(100_000).fill(0x91), 1]);
  rejects(deep, 'invalid-input', 'MessagePack request nested deeper than 128 levels');
  // Brackets inside strings, escaped quotes included, do not count.
  const text = `["${'\\"['.repeat(500)}"]`;
  assert.deepEqual(payload.decode(utf8.encode(text)).value, ['"['.repeat(500)]);
  assert.equal(payload.decode(utf8.encode('['.repeat(128) + ']'.repeat(128))).encoding, 'JSON');
});

test('the limit is the plugin setting', () => {
  testing.configure({ payload_max_depth: 2 });
  assert.throws(() => payload.decode(utf8.encode('[[[1]]]')), /deeper than 2 levels/);
  assert.deepEqual(payload.decode(utf8.encode('[[1]]')).value, [[1]]);
});

test('malformed requests are invalid-input', () => {
  for (const bad of ['{', Uint8Array.of(0xc1), Uint8Array.of(0x92, 0x01)]) {
    assert.throws(() => payload.decode(typeof bad === 'string' ? utf8.encode(bad) : bad), (e) => e.errorClass === 'invalid-input');
  }
});

test('MessagePack round-trips', () => {
  for (const v of [null, false, 0, 127, -32, -33, 255, 65536, 2 ** 40, -(2 ** 40), 1.5, '', 'é'.repeat(40),
    Uint8Array.of(), [...Array(20).keys()], { k: { n: [] } }, 2n ** 63n, -(2n ** 63n)]) {
    assert.deepEqual(messagepack.unpack(messagepack.pack(v)), v);
  }
});

test('UTF-8 without the built-in codec matches it', async () => {
  const { TextEncoder: E, TextDecoder: D } = globalThis;
  const sample = 'aé€😀\u0000';
  const expected = new E().encode(sample);
  delete globalThis.TextEncoder;
  delete globalThis.TextDecoder;
  try {
    const own = await import(`../src/utf8.js?own=${Date.now()}`);
    assert.deepEqual(own.encode(sample), expected);
    assert.equal(own.decode(expected), sample);
    assert.throws(() => own.decode(Uint8Array.of(0xc3)), /invalid UTF-8/);
    assert.throws(() => own.decode(Uint8Array.of(0xed, 0xa0, 0x80)), /invalid UTF-8/);
  } finally {
    globalThis.TextEncoder = E;
    globalThis.TextDecoder = D;
  }
});

test('config reads typed values and names a bad one; logs keep their fields', () => {
  testing.configure({ budget_ms: '80', on: 'true', label: 'x' });
  assert.deepEqual([config.float('budget_ms', 1), config.bool('on', false), config.int('unset', 3)], [80, true, 3]);
  assert.throws(() => config.int('label', 1), /`label`/);
  testing.invoke(echo, '[1]', testing.context({ attempt: 2 }));
  assert.deepEqual(testing.logs, [{ level: 'info', message: 'echoed', fields: { encoding: 'JSON', attempt: '2' } }]);
});

test('a strategy names its classes as WIT variants', () => {
  const s = new Recovery({ name: 'r', handled: ['timeout', 'dependency'], choose: () => ({ tag: 'pass' }) });
  assert.deepEqual(s.handles(), [{ tag: 'timeout' }, { tag: 'dependency' }]);
  assert.deepEqual(s.decide({}), { tag: 'pass' });
  assert.equal(s.describe().kind, 'recovery');
});

test('an export without an error case writes the stack, then throws', () => {
  const broken = new Detector({ name: 'd', find: (input) => input.targets.map((t) => t.missing.field) });
  const written = [];
  const write = process.stderr.write;
  process.stderr.write = (text) => written.push(String(text));
  try {
    assert.throws(() => broken.detect({ targets: [{}] }), TypeError);
  } finally {
    process.stderr.write = write;
  }
  assert.match(written.join(''), /TypeError: .*\n\s+at /);
  assert.deepEqual(new Improver({ name: 'i', propose: (input) => [input] }).improve('p'), ['p']);
  assert.equal(new Improver({ name: 'i', propose: () => [] }).describe().kind, 'improver');
});
