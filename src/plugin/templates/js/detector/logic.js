// Detector __NAME__: flags targets whose p95 latency is over a budget
// (`budget_ms`, default 50, from the host's plugin configuration).
// Under QuickJS a u64 (`executions`) arrives as a number.
import { Detector, config } from 'kaizen-sdk';

export const slowP95 = new Detector({
  name: '__NAME__',
  version: '0.1.0',
  description: 'p95 latency over a budget',
  find(input) {
    const budgetMs = config.float('budget_ms', 50);
    return input.targets
      .filter((t) => Number(t.current.executions) >= 20 && t.current.latency.p95Ms > budgetMs)
      .map((t) => ({
        target: t.target,
        kind: '__NAME__',
        severity: 'medium',
        confidence: 0.8,
        summary: `${t.target} p95 ${t.current.latency.p95Ms.toFixed(1)} ms over a ${budgetMs} ms budget`,
        evidence: [{ key: 'p95_ms', value: String(t.current.latency.p95Ms) }],
        expectedGainPct: (1 - budgetMs / t.current.latency.p95Ms) * 100,
        risk: 'low',
        category: 'performance',
      }));
  },
});
