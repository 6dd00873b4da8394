// Retry timeouts and dependency failures after `delayMs`, up to `maxAttempts`.
export function decideFor(failure, delayMs, maxAttempts) {
  const handled = ['timeout', 'dependency'].includes(failure.errorClass.tag);
  if (!handled || failure.attempt > maxAttempts) return { tag: 'pass' };
  return { tag: 'retry', val: BigInt(delayMs) };
}
