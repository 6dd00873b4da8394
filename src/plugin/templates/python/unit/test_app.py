import json
import unittest

from componentize_py_types import Err
from wit_world.imports import types

from app import WitWorld

CTX = types.CallContext(attempt=1, scope_pct=None, deadline_ms=1000)


class Test(unittest.TestCase):
    def test_greets_and_refuses_nameless_requests(self):
        out = WitWorld().invoke(CTX, json.dumps({"name": "Ada"}).encode())
        self.assertEqual(json.loads(out), {"greeting": "Hello, Ada!"})
        with self.assertRaises(Err) as e:
            WitWorld().invoke(CTX, b"{}")
        self.assertIsInstance(e.exception.value.error_class, types.ErrorClass_InvalidInput)
