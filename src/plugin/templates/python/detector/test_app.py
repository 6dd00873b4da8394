import unittest

from kaizen_sdk import testing
from wit_world.imports import types  # `componentize-py -d wit -w kaizen:plugin/detector bindings .`

from app import SlowP95


def target(p95):
    latency = types.LatencyStats(p50_ms=1.0, p95_ms=p95, p99_ms=p95, mean_ms=1.0, stddev_ms=0.5)
    window = types.WindowStats(duration_secs=60.0, executions=100, failures=0, success_rate=1.0,
                               latency=latency, throughput=1.7, errors=[])
    return types.TargetStats(target="api", version="1.0.0", current=window, baseline=None)


class Test(unittest.TestCase):
    def setUp(self):
        testing.reset()

    def test_fires_over_budget_only(self):
        slow = types.DetectionInput(now_ms=0, targets=[target(80.0)], metrics=[])
        fast = types.DetectionInput(now_ms=0, targets=[target(2.0)], metrics=[])
        self.assertEqual(len(SlowP95().detect(slow)), 1)
        self.assertEqual(SlowP95().detect(fast), [])
        testing.configure(budget_ms="100")
        self.assertEqual(SlowP95().detect(slow), [], "80 ms is within a 100 ms budget")
        self.assertEqual(SlowP95().describe().kind, types.PluginKind.DETECTOR)


if __name__ == "__main__":
    unittest.main()
