"""Unit __NAME__: greets by name. Request `{"name": "Ada"}` (JSON or
MessagePack), answer `{"greeting": "Hello, Ada!"}` in the same encoding.
A request without a name is refused with the `invalid-input` class: raise
`UnitError(class, message)` for a typed error; any other exception answers
`internal` with its message, its traceback in the host's log."""

from kaizen_sdk import Unit, UnitError, config, log, payload


class Greeter(Unit):
    name = "__NAME__"
    version = "0.1.0"
    description = "Greets by name"

    def handle(self, context, request: bytes) -> bytes:
        body, encoding = payload.decode(request)  # nesting past payload_max_depth: invalid-input
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise UnitError("invalid-input", 'expected {"name": "..."}')
        greeting = config.get("greeting", "Hello")
        log.debug("greeting", name=body["name"], attempt=context.attempt)
        return payload.encode({"greeting": f"{greeting}, {body['name']}!"}, encoding)


WitWorld = Greeter  # the class componentize-py serves
