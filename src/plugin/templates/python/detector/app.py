"""Detector __NAME__: flags targets whose p95 latency is over a budget
(`budget_ms`, default 50, from the host's plugin configuration)."""

import wit_world
from wit_world.imports import host, types


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(name="__NAME__", kind=types.PluginKind.DETECTOR, version="0.1.0",
                                description="p95 latency over a budget",
                                tunables=[], capabilities=[])

    def detect(self, input: types.DetectionInput) -> list[types.Finding]:
        budget = float(host.config("budget_ms") or 50)
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
