import { config } from 'kaizen:plugin/host@__CONTRACT__';
import { decideFor } from './logic.js';

export function describe() {
  return { name: '__NAME__', kind: 'recovery', version: '0.1.0', description: 'Retry after a fixed delay', tunables: [], capabilities: [] };
}

export function handles() {
  return [{ tag: 'timeout' }, { tag: 'dependency' }];
}

export function decide(failure) {
  return decideFor(failure, Number(config('delay_ms') ?? 50), Number(config('max_attempts') ?? 2));
}
