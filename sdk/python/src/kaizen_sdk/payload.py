"""Request and response payloads. Units may speak JSON or MessagePack;
``decode`` accepts either (JSON is recognised by its first non-space byte)
and ``encode`` answers in the encoding the request came in.

Decoding refuses a payload nested deeper than a limit (``DEFAULT_MAX_DEPTH``,
or the plugin's ``payload_max_depth`` setting) as ``invalid-input`` before
any recursive parser sees it: the nesting is measured by a loop over the
bytes. A request of 100 000 nested arrays is then the caller's mistake, not
an exhausted wasm stack that traps and counts against the unit.
"""

import json
import re

from . import config, messagepack
from .errors import UnitError

#: Nesting a payload may have unless configured (as the Rust SDK).
DEFAULT_MAX_DEPTH = 128
#: The plugin setting that changes it: ``[runtime.plugin_config.NAME] payload_max_depth = 64``.
MAX_DEPTH_KEY = "payload_max_depth"

JSON = "JSON"
MESSAGEPACK = "MessagePack"


def sniff(data: bytes) -> str:
    """``JSON`` when the first non-space byte opens a JSON value a unit
    takes (object, array, string), else ``MessagePack``."""
    stripped = bytes(data).lstrip()
    return JSON if stripped[:1] in (b"{", b"[", b'"') else MESSAGEPACK


def max_depth() -> int:
    """The plugin's ``payload_max_depth`` setting, else ``DEFAULT_MAX_DEPTH``."""
    try:
        return config.int(MAX_DEPTH_KEY, DEFAULT_MAX_DEPTH)
    except ValueError:
        return DEFAULT_MAX_DEPTH


def decode(data: bytes, limit: int | None = None):
    """``(value, encoding)`` of a JSON or MessagePack request, nested at most
    ``limit`` levels deep (default: ``max_depth()``). Raises
    ``UnitError("invalid-input", …)`` for anything else."""
    data = bytes(data)
    limit = max_depth() if limit is None else limit
    encoding = sniff(data)
    deep = _json_too_deep(data, limit) if encoding == JSON else _msgpack_too_deep(data, limit)
    if deep:
        raise UnitError("invalid-input", f"{encoding} request nested deeper than {limit} levels")
    try:
        if encoding == JSON:
            return json.loads(data), encoding
        return messagepack.unpack(data), encoding
    except (ValueError, RecursionError) as e:
        raise UnitError("invalid-input", f"invalid {encoding} request: {e}") from None


def encode(value, encoding: str = JSON) -> bytes:
    """``value`` as compact JSON (UTF-8) or MessagePack."""
    if encoding == JSON:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    if encoding == MESSAGEPACK:
        return messagepack.pack(value)
    raise ValueError(f"encoding must be {JSON!r} or {MESSAGEPACK!r}, not {encoding!r}")


_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _json_too_deep(data: bytes, limit: int) -> bool:
    """Whether JSON ``data`` opens more than ``limit`` arrays or objects inside
    each other (brackets inside strings do not count). Escapes, then strings,
    then everything but brackets are dropped by native code first, so the
    loop visits only brackets. Malformed text is left to the parser."""
    brackets = _STRING.sub(b"", _ESCAPE.sub(b"", data)).translate(None, _NOT_BRACKETS)
    depth = 0
    for b in brackets:
        if b in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif depth:
            depth -= 1
    return False


def _msgpack_too_deep(data: bytes, limit: int) -> bool:
    """Whether the MessagePack value at the start of ``data`` holds arrays or
    maps more than ``limit`` deep: a walk over the markers with a stack of how
    many items each open container still holds. Malformed or truncated input
    is left to the parser."""

    def be(at: int, n: int):
        return int.from_bytes(data[at:at + n], "big") if at + n <= len(data) else None

    open_, at = [1], 0
    while open_:
        if open_[-1] == 0:
            open_.pop()
            continue
        open_[-1] -= 1
        if at >= len(data):
            return False
        m = data[at]
        at += 1
        skip, items = 0, None
        if m <= 0x7F or m >= 0xE0 or m in (0xC0, 0xC2, 0xC3):
            pass
        elif 0x80 <= m <= 0x8F:
            items = 2 * (m & 0x0F)
        elif 0x90 <= m <= 0x9F:
            items = m & 0x0F
        elif 0xA0 <= m <= 0xBF:
            skip = m & 0x1F
        elif m in _SKIP:
            skip = _SKIP[m]
        elif m in _SIZED:  # bin, str, ext: a length (and an ext's type byte), then data
            width, extra = _SIZED[m]
            n = be(at, width)
            if n is None:
                return False
            skip = width + extra + n
        elif m in (0xDC, 0xDD, 0xDE, 0xDF):
            width = 2 if m in (0xDC, 0xDE) else 4
            n = be(at, width)
            if n is None:
                return False
            skip, items = width, n * (2 if m >= 0xDE else 1)
        else:
            return False  # 0xc1 is never used: the parser refuses it
        at += skip
        if at > len(data):
            return False
        if items is not None:
            # `open_` holds the top-level slot plus one entry per container.
            if len(open_) > limit:
                return True
            open_.append(items)
    return False


_SKIP = {0xCC: 1, 0xD0: 1, 0xCD: 2, 0xD1: 2, 0xCA: 4, 0xCE: 4, 0xD2: 4, 0xCB: 8, 0xCF: 8, 0xD3: 8,
         0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17}
_SIZED = {0xC4: (1, 0), 0xD9: (1, 0), 0xC5: (2, 0), 0xDA: (2, 0), 0xC6: (4, 0), 0xDB: (4, 0),
          0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1)}
