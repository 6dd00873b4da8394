import unittest

from wit_world.imports import host, types

host.config = lambda key: None  # natively there is no host: defaults apply
from app import WitWorld


def target(p95):
    latency = types.LatencyStats(p50_ms=1.0, p95_ms=p95, p99_ms=p95, mean_ms=1.0, stddev_ms=0.5)
    window = types.WindowStats(duration_secs=60.0, executions=100, failures=0, success_rate=1.0,
                               latency=latency, throughput=1.7, errors=[])
    return types.TargetStats(target="api", version="1.0.0", current=window, baseline=None)


class Test(unittest.TestCase):
    def test_fires_over_budget_only(self):
        slow = types.DetectionInput(now_ms=0, targets=[target(80.0)], metrics=[])
        fast = types.DetectionInput(now_ms=0, targets=[target(2.0)], metrics=[])
        self.assertEqual(len(WitWorld().detect(slow)), 1)
        self.assertEqual(WitWorld().detect(fast), [])
        self.assertEqual(WitWorld().describe().kind, types.PluginKind.DETECTOR)
