// Findings for targets whose p95 latency is over `budgetMs`.
export function slowTargets(input, budgetMs) {
  return input.targets
    .filter((t) => t.current.executions >= 20n && t.current.latency.p95Ms > budgetMs)
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
}
