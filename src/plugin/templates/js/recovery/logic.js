// Recovery strategy __NAME__: retries timeouts and dependency failures after
// `delay_ms` (default 50), up to `max_attempts` (default 2), then passes.
// Under QuickJS a u64 (the retry's delay) is a number.
import { Recovery, config } from 'kaizen-sdk';

export const patientRetry = new Recovery({
  name: '__NAME__',
  version: '0.1.0',
  description: 'Retry after a fixed delay',
  handled: ['timeout', 'dependency'],
  choose(failure) {
    if (failure.attempt > config.int('max_attempts', 2)) return { tag: 'pass' };
    return { tag: 'retry', val: config.int('delay_ms', 50) };
  },
});
