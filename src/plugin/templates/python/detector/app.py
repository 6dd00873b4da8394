"""Detector __NAME__: flags targets whose p95 latency is over a budget
(`budget_ms`, default 50, from the host's plugin configuration)."""

from kaizen_sdk import Detector, config
from wit_world.imports import types


class SlowP95(Detector):
    name = "__NAME__"
    version = "0.1.0"
    description = "p95 latency over a budget"

    def find(self, input: types.DetectionInput) -> list[types.Finding]:
        budget = config.float("budget_ms", 50.0)
        return [
            types.Finding(
                target=t.target, kind="__NAME__", severity=types.Severity.MEDIUM, confidence=0.8,
                summary=f"{t.target} p95 {t.current.latency.p95_ms:.1f} ms over a {budget} ms budget",
                evidence=[types.Evidence(key="p95_ms", value=str(t.current.latency.p95_ms))],
                expected_gain_pct=(1 - budget / t.current.latency.p95_ms) * 100, risk=types.Risk.LOW,
                category=types.Category.PERFORMANCE,
            )
            for t in input.targets
            if t.current.executions >= 20 and t.current.latency.p95_ms > budget
        ]


WitWorld = SlowP95  # the class componentize-py serves
