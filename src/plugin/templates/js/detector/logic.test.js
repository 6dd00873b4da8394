import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import * as testing from 'kaizen-sdk/testing';
import { slowP95 } from './logic.js';

const input = (p95Ms) => ({ targets: [{ target: 'api', current: { executions: 100, latency: { p95Ms } } }] });

beforeEach(() => testing.reset());

test('fires over budget only', () => {
  assert.equal(slowP95.detect(input(80)).length, 1);
  assert.equal(slowP95.detect(input(2)).length, 0);
  testing.configure({ budget_ms: 100 });
  assert.equal(slowP95.detect(input(80)).length, 0, '80 ms is within a 100 ms budget');
});
