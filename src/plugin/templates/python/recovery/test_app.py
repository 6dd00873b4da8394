import unittest

from kaizen_sdk import testing
from wit_world.imports import types  # `componentize-py -d wit -w kaizen:plugin/recovery bindings .`

from app import PatientRetry


def failure(attempt):
    return types.Failure(target="api", version="1.0.0", error_class=types.ErrorClass_Timeout(), message="slow",
                         attempt=attempt, elapsed_ms=10, remaining_ms=1000, recent=[])


class Test(unittest.TestCase):
    def setUp(self):
        testing.reset()

    def test_retries_then_passes(self):
        self.assertEqual(PatientRetry().decide(failure(1)), types.RecoveryAction_Retry(50))
        self.assertEqual(PatientRetry().decide(failure(3)), types.RecoveryAction_Pass())
        self.assertEqual(PatientRetry().handles(), [types.ErrorClass_Timeout(), types.ErrorClass_Dependency()])


if __name__ == "__main__":
    unittest.main()
