import json
import unittest

from kaizen_sdk import UnitError, payload, testing

from app import Greeter


class Test(unittest.TestCase):
    def setUp(self):
        testing.reset()

    def test_greets_by_name(self):
        self.assertEqual(json.loads(testing.invoke(Greeter(), '{"name": "Ada"}')), {"greeting": "Hello, Ada!"})
        testing.configure(greeting="Hi")
        packed = payload.encode({"name": "Ada"}, payload.MESSAGEPACK)
        self.assertEqual(payload.decode(testing.invoke(Greeter(), packed))[0], {"greeting": "Hi, Ada!"})

    def test_refuses_nameless_and_too_deep_requests(self):
        for request in ["{}", "not json", "[" * 100_000 + "]" * 100_000]:
            with self.assertRaises(UnitError) as e:
                testing.invoke(Greeter(), request)
            self.assertEqual(e.exception.error_class, "invalid-input", request[:20])


if __name__ == "__main__":
    unittest.main()
