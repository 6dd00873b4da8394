"""Typed reads of the plugin's configuration (all values arrive as text).

``config.float("budget_ms", 50.0)`` answers the default when the key is unset
and raises ``ValueError`` naming the key when the text is not a number, so a
mistyped setting is not silently ignored.
"""

import builtins

from . import host


def get(key: str, default: str | None = None) -> str | None:
    """The raw text for ``key``, else ``default``."""
    value = host.config(key)
    return default if value is None else value


def _parse(key, default, parse, what):
    value = host.config(key)
    if value is None:
        return default
    try:
        return parse(value.strip())
    except ValueError:
        raise ValueError(f"plugin setting `{key}` = {value!r} is not {what}") from None


def _boolean(text: str) -> builtins.bool:
    if text not in ("true", "false"):
        raise ValueError(text)
    return text == "true"


def int(key: str, default: builtins.int) -> builtins.int:  # noqa: A001 (reads as config.int)
    """``key`` as an integer, else ``default``."""
    return _parse(key, default, builtins.int, "an integer")


def float(key: str, default: builtins.float) -> builtins.float:  # noqa: A001
    """``key`` as a number, else ``default``."""
    return _parse(key, default, builtins.float, "a number")


def bool(key: str, default: builtins.bool) -> builtins.bool:  # noqa: A001
    """``key`` as ``true`` / ``false``, else ``default``."""
    return _parse(key, default, _boolean, "true or false")
