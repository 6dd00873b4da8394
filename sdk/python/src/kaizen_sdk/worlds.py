"""Base classes, one per world. Subclass one, set the class attributes that
describe the plugin, implement its method, and name the class ``WitWorld``
in the module componentize-py builds (``WitWorld = Greeter``): that is the
class it serves.

What they add to the generated bindings: ``describe`` from the class
attributes; exceptions turned into the contract's answers (a ``UnitError``
becomes that typed error, any other exception the ``internal`` class with
its message, its traceback printed to stderr); stdout and stderr flushed at
the end of every call so that the host logs them with the call's id.
"""

import sys
import traceback
from dataclasses import dataclass

from .errors import UnitError


@dataclass
class CallContext:
    """What a unit knows about its call (the generated ``types.CallContext``
    has the same fields; natively ``kaizen_sdk.testing`` passes this one)."""

    attempt: int = 1
    scope_pct: int | None = None
    deadline_ms: int = 5_000


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed stream must not turn an answer into a trap
            pass


def serve(handler, context, request: bytes) -> bytes:
    """Run ``handler(context, request)`` and answer bytes or raise
    ``UnitError``: another exception becomes ``internal`` with its message,
    after its traceback is printed to stderr. The native harness calls this
    too, so a test sees exactly what the host would."""
    try:
        out = handler(context, bytes(request))
        if not isinstance(out, (bytes, bytearray, memoryview)):
            raise TypeError(f"handle() must return bytes, not {type(out).__name__}")
        return bytes(out)
    except UnitError:
        raise
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        raise UnitError("internal", f"{type(e).__name__}: {e}") from e
    finally:
        _flush()


def guarded(call, *args):
    """Run an export that has no error case (``detect``, ``decide``, ...): an
    exception still traps the call, but its traceback is printed first so
    that the host's log and the trap's error carry it."""
    try:
        return call(*args)
    except Exception:
        traceback.print_exc(file=sys.stderr)
        raise
    finally:
        _flush()


class _Plugin:
    #: Slot name: lowercase letters, digits and ``-``.
    name: str = ""
    #: Semantic version, ``MAJOR.MINOR.PATCH``; a new build needs a new one.
    version: str = "0.1.0"
    #: One line for operators.
    description: str = ""
    #: Generated ``types.Tunable`` values (units only).
    tunables: tuple = ()
    #: Generated ``types.Capability_*`` values the plugin needs.
    capabilities: tuple = ()
    _kind = ""

    def describe(self):
        from wit_world.imports import types

        if not self.name:
            raise TypeError(f"{type(self).__name__} sets no `name`")
        return types.PluginInfo(
            name=self.name,
            kind=getattr(types.PluginKind, self._kind.upper()),
            version=self.version,
            description=self.description,
            tunables=list(self.tunables),
            capabilities=list(self.capabilities),
        )


class Unit(_Plugin):
    """A hosted workload: implement ``handle(context, request: bytes) -> bytes``
    and raise ``UnitError`` for a typed failure."""

    _kind = "unit"

    def handle(self, context, request: bytes) -> bytes:
        raise NotImplementedError(f"{type(self).__name__}.handle")

    def invoke(self, context, request: bytes) -> bytes:
        try:
            return serve(self.handle, context, request)
        except UnitError as e:
            from componentize_py_types import Err

            raise Err(e.to_wit()) from None


class Detector(_Plugin):
    """A detection rule: implement ``find(input) -> list[types.Finding]``."""

    _kind = "detector"

    def find(self, input) -> list:
        raise NotImplementedError(f"{type(self).__name__}.find")

    def detect(self, input) -> list:
        return guarded(self.find, input)


class Recovery(_Plugin):
    """A recovery strategy: set ``handled`` (class names, empty for every
    class) and implement ``choose(failure) -> types.RecoveryAction``."""

    _kind = "recovery"
    #: The error classes this strategy has an opinion on, by contract name.
    handled: tuple = ()

    def choose(self, failure):
        raise NotImplementedError(f"{type(self).__name__}.choose")

    def handles(self) -> list:
        from .errors import error_class_to_wit

        return [error_class_to_wit(c) for c in self.handled]

    def decide(self, failure):
        return guarded(self.choose, failure)


class Improver(_Plugin):
    """An improvement strategy (contract 0.2): implement
    ``propose(input) -> list[types.Proposal]``, best first."""

    _kind = "improver"

    def propose(self, input) -> list:
        raise NotImplementedError(f"{type(self).__name__}.propose")

    def improve(self, input) -> list:
        return guarded(self.propose, input)
