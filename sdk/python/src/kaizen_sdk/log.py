"""Structured lines in the host's log, tagged with the plugin, its version
and the call's id; each keyword is a JSON field of the line:
``log.info("cache miss", key=key)``. Natively they go to stderr and to
``kaizen_sdk.testing.logs``. (``print`` works too: the host logs a guest's
stdout and stderr line by line, bounded per call.)"""

from .host import log as _log


def trace(message: str, **fields) -> None:
    _log("trace", message, **fields)


def debug(message: str, **fields) -> None:
    _log("debug", message, **fields)


def info(message: str, **fields) -> None:
    _log("info", message, **fields)


def warn(message: str, **fields) -> None:
    _log("warn", message, **fields)


def error(message: str, **fields) -> None:
    _log("error", message, **fields)
