import { test } from 'node:test';
import assert from 'node:assert/strict';
import { greet } from './logic.js';

test('greets and refuses nameless requests', () => {
  assert.deepEqual(JSON.parse(greet('{"name":"Ada"}')), { greeting: 'Hello, Ada!' });
  assert.throws(() => greet('{}'), (e) => e.errorClass.tag === 'invalid-input');
});
