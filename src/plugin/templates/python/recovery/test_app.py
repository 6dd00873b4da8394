import unittest

from wit_world.imports import host, types

host.config = lambda key: None  # natively there is no host: defaults apply
from app import WitWorld


def failure(attempt):
    return types.Failure(target="api", version="1.0.0", error_class=types.ErrorClass_Timeout(), message="slow",
                         attempt=attempt, elapsed_ms=10, remaining_ms=1000, recent=[])


class Test(unittest.TestCase):
    def test_retries_then_passes(self):
        self.assertEqual(WitWorld().decide(failure(1)), types.RecoveryAction_Retry(50))
        self.assertEqual(WitWorld().decide(failure(3)), types.RecoveryAction_Pass())
