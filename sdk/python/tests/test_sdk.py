"""The package's own tests, natively: `python -m unittest discover -s tests`
from sdk/python (with `src` on the path, or after `pip install .`)."""

import contextlib
import io
import unittest

from kaizen_sdk import Detector, Improver, Unit, UnitError, config, info, payload, testing
from kaizen_sdk import messagepack


class Echo(Unit):
    name = "echo"

    def handle(self, context, request):
        body, encoding = payload.decode(request)
        if body == "refuse":
            raise UnitError("invalid-input", "refused on request")
        if body == "crash":
            raise KeyError("no such thing")
        info("echoed", encoding=encoding, attempt=context.attempt)
        return payload.encode(body, encoding)


class Errors(unittest.TestCase):
    def setUp(self):
        testing.reset()

    def test_a_unit_error_keeps_its_class_and_message(self):
        with self.assertRaises(UnitError) as e:
            testing.invoke(Echo(), '"refuse"')
        self.assertEqual((e.exception.error_class, e.exception.message), ("invalid-input", "refused on request"))

    def test_any_other_exception_is_internal_with_its_message(self):
        with self.assertRaises(UnitError) as e:
            testing.invoke(Echo(), '"crash"')
        self.assertEqual(e.exception.error_class, "internal")
        self.assertIn("KeyError", e.exception.message)
        self.assertIn("no such thing", e.exception.message)

    def test_a_non_bytes_answer_is_internal(self):
        class Wrong(Unit):
            def handle(self, context, request):
                return "text"

        with self.assertRaises(UnitError) as e:
            testing.invoke(Wrong(), b"x")
        self.assertIn("must return bytes", e.exception.message)


class Guarded(unittest.TestCase):
    def test_an_export_without_an_error_case_prints_the_traceback_then_raises(self):
        class Broken(Detector):
            def find(self, input):
                return input["missing"]

        class Proposer(Improver):
            def propose(self, input):
                return [input]

        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), self.assertRaises(KeyError):
            Broken().detect({})
        self.assertIn("Traceback (most recent call last)", stderr.getvalue())
        self.assertIn("in find", stderr.getvalue())
        self.assertEqual(Proposer().improve("p"), ["p"])


class Payloads(unittest.TestCase):
    def setUp(self):
        testing.reset()

    def test_json_and_messagepack_answer_in_their_encoding(self):
        self.assertEqual(testing.invoke(Echo(), '{"a": [1, "é"]}'), '{"a":[1,"é"]}'.encode())
        packed = messagepack.pack({"a": [1, 2.5, None, True, b"\x00", "x" * 40]})
        self.assertEqual(testing.invoke(Echo(), packed), packed)

    def test_nesting_past_the_limit_is_invalid_input_before_parsing(self):
        for request in ["[" * 100_000 + "]" * 100_000, bytes([0x91] * 100_000 + [1])]:
            with self.assertRaises(UnitError) as e:
                testing.invoke(Echo(), request)
            self.assertEqual(e.exception.error_class, "invalid-input")
            self.assertIn("nested deeper than 128 levels", e.exception.message)
        # Brackets inside strings, escaped quotes included, do not count.
        deep_text = '["' + '\\"[' * 500 + '"]'
        self.assertEqual(payload.decode(deep_text.encode())[0], ['"[' * 500])
        self.assertEqual(payload.decode(("[" * 128 + "]" * 128).encode())[1], payload.JSON)

    def test_the_limit_is_the_plugins_setting(self):
        testing.configure(payload_max_depth="2")
        with self.assertRaises(UnitError) as e:
            payload.decode(b"[[[1]]]")
        self.assertIn("deeper than 2 levels", e.exception.message)
        self.assertEqual(payload.decode(b"[[1]]")[0], [[1]])

    def test_malformed_requests_are_invalid_input(self):
        for bad in [b"{", b"\xc1", b"\x92\x01"]:
            with self.assertRaises(UnitError) as e:
                payload.decode(bad)
            self.assertEqual(e.exception.error_class, "invalid-input", bad)

    def test_messagepack_round_trips(self):
        for v in [None, False, 0, 127, -32, -33, 255, 65536, 2**40, -(2**40), 1.5, "", "é" * 40,
                  b"", list(range(20)), {"k": {"n": []}}, {str(i): i for i in range(20)}]:
            self.assertEqual(messagepack.unpack(messagepack.pack(v)), v)


class Host(unittest.TestCase):
    def setUp(self):
        testing.reset()

    def test_config_reads_typed_values_and_names_a_bad_one(self):
        testing.configure(budget_ms="80", on="true", label="x")
        self.assertEqual((config.float("budget_ms", 1.0), config.bool("on", False)), (80.0, True))
        self.assertEqual((config.int("unset", 3), config.get("label")), (3, "x"))
        with self.assertRaises(ValueError) as e:
            config.int("label", 1)
        self.assertIn("label", str(e.exception))

    def test_logs_are_kept_with_their_fields(self):
        testing.invoke(Echo(), "[1]", testing.context(attempt=2))
        self.assertEqual(testing.logs, [("info", "echoed", {"encoding": "JSON", "attempt": "2"})])


if __name__ == "__main__":
    unittest.main()
