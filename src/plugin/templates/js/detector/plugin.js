import { config } from 'kaizen:plugin/host@__CONTRACT__';
import { slowTargets } from './logic.js';

export function describe() {
  return { name: '__NAME__', kind: 'detector', version: '0.1.0', description: 'p95 latency over a budget', tunables: [], capabilities: [] };
}

export function detect(input) {
  return slowTargets(input, Number(config('budget_ms') ?? 50));
}
