"""Unit __NAME__: greets by name. Request `{"name": "Ada"}`, answer
`{"greeting": "Hello, Ada!"}`; a request without a name is refused with the
`invalid-input` class (raise `Err(UnitError(...))` to return an error)."""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import types


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(name="__NAME__", kind=types.PluginKind.UNIT, version="0.1.0",
                                description="Greets by name",
                                tunables=[], capabilities=[])

    def invoke(self, context: types.CallContext, request: bytes) -> bytes:
        try:
            name = json.loads(request)["name"]
        except (ValueError, KeyError, TypeError) as e:
            raise Err(types.UnitError(error_class=types.ErrorClass_InvalidInput(), message=f"bad request: {e}"))
        return json.dumps({"greeting": f"Hello, {name}!"}).encode()
