import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideFor } from './logic.js';

test('retries then passes', () => {
  assert.deepEqual(decideFor({ errorClass: { tag: 'timeout' }, attempt: 1 }, 50, 2), { tag: 'retry', val: 50n });
  assert.deepEqual(decideFor({ errorClass: { tag: 'timeout' }, attempt: 3 }, 50, 2), { tag: 'pass' });
});
