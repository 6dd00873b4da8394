"""The native test harness: test a plugin class with ``python -m unittest``,
no WebAssembly and no host.

``configure(budget_ms="80")`` sets what ``config`` answers (until the next
``configure`` or ``reset``); ``logs`` holds every ``log`` call; ``invoke``
calls a unit the way the host does, so a test sees the typed error the
caller would (``UnitError``, ``internal`` for an unexpected exception).
Detectors, strategies and improvers take the generated types: run
``componentize-py -d wit -w kaizen:plugin/WORLD bindings .`` once and build
inputs from ``wit_world.imports.types``.
"""

from . import host
from .worlds import CallContext, serve

#: Every ``log`` call since the last ``reset``: ``(level, message, fields)``.
logs = host.native_logs


def configure(**settings) -> None:
    """Replace the plugin configuration ``config`` reads (values as text,
    as the host hands them over)."""
    host.native_config.clear()
    host.native_config.update({k: str(v) for k, v in settings.items()})


def reset() -> None:
    """No configuration, no logs."""
    host.native_config.clear()
    host.native_logs.clear()


def context(attempt: int = 1, scope_pct: int | None = None, deadline_ms: int = 5_000) -> CallContext:
    return CallContext(attempt=attempt, scope_pct=scope_pct, deadline_ms=deadline_ms)


def invoke(unit, request, context: CallContext | None = None) -> bytes:
    """Call ``unit`` as the host would; ``request`` as bytes or text. Returns
    the answer's bytes or raises ``UnitError``."""
    if isinstance(request, str):
        request = request.encode()
    return serve(unit.handle, context or CallContext(), request)
