import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { UnitError, payload } from 'kaizen-sdk';
import * as testing from 'kaizen-sdk/testing';
import { greeter } from './logic.js';

beforeEach(() => testing.reset());

test('greets by name', () => {
  assert.deepEqual(JSON.parse(testing.text(testing.invoke(greeter, '{"name":"Ada"}'))), { greeting: 'Hello, Ada!' });
  testing.configure({ greeting: 'Hi' });
  const packed = payload.encode({ name: 'Ada' }, payload.MESSAGEPACK);
  assert.deepEqual(payload.decode(testing.invoke(greeter, packed)).value, { greeting: 'Hi, Ada!' });
});

test('refuses nameless and too deep requests', () => {
  for (const request of ['{}', 'not json', '['.repeat(100_000) + ']'.repeat(100_000)]) {
    assert.throws(() => testing.invoke(greeter, request), (e) => e instanceof UnitError && e.errorClass === 'invalid-input');
  }
});
