import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import * as testing from 'kaizen-sdk/testing';
import { patientRetry } from './logic.js';

beforeEach(() => testing.reset());

test('retries then passes', () => {
  assert.deepEqual(patientRetry.decide({ errorClass: { tag: 'timeout' }, attempt: 1 }), { tag: 'retry', val: 50 });
  assert.deepEqual(patientRetry.decide({ errorClass: { tag: 'timeout' }, attempt: 3 }), { tag: 'pass' });
  assert.deepEqual(patientRetry.handles(), [{ tag: 'timeout' }, { tag: 'dependency' }]);
});
