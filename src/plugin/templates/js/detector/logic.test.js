import { test } from 'node:test';
import assert from 'node:assert/strict';
import { slowTargets } from './logic.js';

const target = (p95Ms) => ({ target: 'api', current: { executions: 100n, latency: { p95Ms } } });

test('fires over budget only', () => {
  assert.equal(slowTargets({ targets: [target(80)] }, 50).length, 1);
  assert.equal(slowTargets({ targets: [target(2)] }, 50).length, 0);
});
