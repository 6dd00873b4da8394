"""Test unit on the Python SDK: the request says how the call ends (see
tests/guests/README.md)."""

import sys

from kaizen_sdk import Unit, UnitError, log, payload


def turn_the_gears(why):
    jam(why)


def jam(why):
    raise RuntimeError(why)


class Speaker(Unit):
    name = "speaker-py"
    version = "1.0.0"
    description = "Ends each call as the request says (test guest)"

    def handle(self, context, request: bytes) -> bytes:
        body, encoding = payload.decode(request)
        op = body.get("op") if isinstance(body, dict) else None
        if op == "refuse":
            raise UnitError("invalid-input", body["why"])
        if op == "crash":
            turn_the_gears(body["why"])
        if op == "say":
            for i in range(body["lines"]):
                print(f"speaker-py line {i:06} ".ljust(63, "."))
            print(f"speaker-py said {body['lines']} lines", file=sys.stderr)
        if op == "log":
            log.info("order placed", order=body["order"], attempt=context.attempt)
        return payload.encode(body, encoding)


WitWorld = Speaker
