"""Kaizen plugins in Python, on top of the bindings componentize-py generates.

    from kaizen_sdk import Unit, UnitError, payload

    class Greeter(Unit):
        name, version, description = "greeter", "0.1.0", "Greets by name"

        def handle(self, context, request):
            body, encoding = payload.decode(request)
            if not isinstance(body, dict) or "name" not in body:
                raise UnitError("invalid-input", 'missing "name"')
            return payload.encode({"greeting": f"Hello, {body['name']}!"}, encoding)

    WitWorld = Greeter  # the class componentize-py serves

Modules: ``payload`` (JSON / MessagePack, bounded nesting), ``config``
(typed reads of the plugin's settings), ``log`` (structured lines in the
host's log), ``testing`` (the native harness).
"""

from . import config, payload
from .errors import UnitError
from .host import IN_COMPONENT
from .log import debug, error, info, trace, warn
from .worlds import CallContext, Detector, Improver, Recovery, Unit

__version__ = "0.2.0"

__all__ = [
    "CallContext", "Detector", "IN_COMPONENT", "Improver", "Recovery", "Unit", "UnitError",
    "config", "debug", "error", "info", "payload", "trace", "warn",
]
