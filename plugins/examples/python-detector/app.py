"""Kaizen detector in Python, on the Python SDK (`sdk/python`): flags a
target whose error budget burns too fast — more than `max_error_rate`
(default 0.05) of its calls in the window failed, over at least
`min_executions` (default 20) calls — and says how many times faster than
allowed the budget is burning."""

from kaizen_sdk import Detector, config
from wit_world.imports import types


class ErrorBudget(Detector):
    name = "error-budget"
    version = "1.0.0"
    description = "Error budget burning faster than allowed (Python)"

    def find(self, input: types.DetectionInput) -> list[types.Finding]:
        max_rate = config.float("max_error_rate", 0.05)
        min_calls = config.int("min_executions", 20)
        findings = []
        for t in input.targets:
            w = t.current
            if w.executions < min_calls:
                continue
            rate = w.failures / w.executions
            if rate <= max_rate:
                continue
            burn = rate / max_rate if max_rate > 0 else float("inf")
            severity = types.Severity.CRITICAL if burn >= 10 else types.Severity.HIGH if burn >= 4 else types.Severity.MEDIUM
            findings.append(
                types.Finding(
                    target=t.target,
                    kind="error-budget",
                    severity=severity,
                    confidence=min(1.0, 0.5 + w.executions / 400),
                    summary=f"{t.target} {t.version} burns its error budget {burn:.1f}x too fast "
                    f"({rate:.1%} of {w.executions} calls failed, budget {max_rate:.1%})",
                    evidence=[
                        types.Evidence(key="error_rate", value=f"{rate:.4f}"),
                        types.Evidence(key="burn_rate", value=f"{burn:.2f}"),
                        types.Evidence(key="executions", value=str(w.executions)),
                    ],
                    expected_gain_pct=min(100.0, rate * 100),
                    risk=types.Risk.LOW,
                    category=types.Category.RELIABILITY,
                )
            )
        return findings


WitWorld = ErrorBudget  # the class componentize-py serves
