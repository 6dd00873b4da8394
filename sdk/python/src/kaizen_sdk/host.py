"""The host's two imports, ``config`` and ``log``, with plain-Python stand-ins
when the code is not running inside a component (a native test).

Inside a component the calls go to the host: ``config`` reads
``[runtime.plugin_config.NAME]`` of the host's configuration, ``log`` writes a
line into the host's log tagged with the plugin, its version and the call's
id, each keyword a field of its own. Natively, ``config`` reads what
``kaizen_sdk.testing.configure`` set and ``log`` prints to stderr and keeps
the entries in ``kaizen_sdk.testing.logs``.
"""

import sys

try:  # present only inside a component built by componentize-py
    import componentize_py_runtime  # noqa: F401

    IN_COMPONENT = True
except ImportError:
    IN_COMPONENT = False

#: Natively: the configuration ``config`` answers from (set by the tests).
native_config: dict[str, str] = {}
#: Natively: every ``log`` call, as ``(level, message, {field: value})``.
native_logs: list[tuple[str, str, dict[str, str]]] = []

LEVELS = ("trace", "debug", "info", "warn", "error")


def config(key: str) -> str | None:
    """This plugin's configuration value for ``key``, or ``None`` if unset."""
    if IN_COMPONENT:
        from wit_world.imports import host

        return host.config(key)
    return native_config.get(key)


def log(level: str, message: str, **fields) -> None:
    """A structured line in the host's log: ``log("info", "cache miss", key=k)``.

    Each keyword becomes a JSON field of the line (values as text)."""
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    pairs = {str(k): str(v) for k, v in fields.items()}
    if IN_COMPONENT:
        from wit_world.imports import host

        host.log(host.LogLevel[level.upper()], message, list(pairs.items()))
        return
    native_logs.append((level, message, pairs))
    extra = "".join(f" {k}={v}" for k, v in pairs.items())
    print(f"[{level}] {message}{extra}", file=sys.stderr)
