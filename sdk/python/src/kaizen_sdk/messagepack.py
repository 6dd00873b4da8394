"""A small MessagePack codec (nil, booleans, integers, floats, strings,
binary, arrays, maps) in plain Python: componentize-py cannot load the
``msgpack`` package's native extension, and a unit's payloads need no more.

``unpack`` recurses once per level: call it through ``payload.decode``, which
bounds the nesting first.
"""

import struct


class MessagePackError(ValueError):
    """Not a MessagePack value this codec reads."""


def pack(value) -> bytes:
    out = bytearray()
    _pack(value, out)
    return bytes(out)


def _pack(v, out: bytearray) -> None:
    if v is None:
        out.append(0xC0)
    elif v is True or v is False:
        out.append(0xC3 if v else 0xC2)
    elif isinstance(v, int):
        if 0 <= v < 0x80 or -32 <= v < 0:
            out += struct.pack(">b" if v < 0 else ">B", v)
        elif 0 <= v < 1 << 64:
            for limit, marker, fmt in ((1 << 8, 0xCC, ">B"), (1 << 16, 0xCD, ">H"), (1 << 32, 0xCE, ">I")):
                if v < limit:
                    out.append(marker)
                    out += struct.pack(fmt, v)
                    return
            out.append(0xCF)
            out += struct.pack(">Q", v)
        elif -(1 << 63) <= v < 0:
            for limit, marker, fmt in ((1 << 7, 0xD0, ">b"), (1 << 15, 0xD1, ">h"), (1 << 31, 0xD2, ">i")):
                if v >= -limit:
                    out.append(marker)
                    out += struct.pack(fmt, v)
                    return
            out.append(0xD3)
            out += struct.pack(">q", v)
        else:
            raise MessagePackError(f"integer {v} does not fit in 64 bits")
    elif isinstance(v, float):
        out.append(0xCB)
        out += struct.pack(">d", v)
    elif isinstance(v, str):
        data = v.encode()
        _header(out, len(data), 0xA0, 31, (0xD9, 0xDA, 0xDB))
        out += data
    elif isinstance(v, (bytes, bytearray, memoryview)):
        data = bytes(v)
        _header(out, len(data), None, 0, (0xC4, 0xC5, 0xC6))
        out += data
    elif isinstance(v, (list, tuple)):
        _header(out, len(v), 0x90, 15, (None, 0xDC, 0xDD))
        for item in v:
            _pack(item, out)
    elif isinstance(v, dict):
        _header(out, len(v), 0x80, 15, (None, 0xDE, 0xDF))
        for key, item in v.items():
            _pack(key, out)
            _pack(item, out)
    else:
        raise MessagePackError(f"cannot encode {type(v).__name__} as MessagePack")


def _header(out: bytearray, n: int, fix, fix_max: int, sized) -> None:
    """A length header: the fix form when it fits, else 8, 16 or 32 bits."""
    if fix is not None and n <= fix_max:
        out.append(fix | n)
        return
    for marker, limit, fmt in zip(sized, (1 << 8, 1 << 16, 1 << 32), (">B", ">H", ">I")):
        if marker is not None and n < limit:
            out.append(marker)
            out += struct.pack(fmt, n)
            return
    raise MessagePackError(f"{n} items or bytes is more than MessagePack holds")


def unpack(data: bytes):
    """The one value in ``data``; trailing bytes are an error."""
    value, at = _unpack(memoryview(bytes(data)), 0)
    if at != len(data):
        raise MessagePackError(f"{len(data) - at} bytes after the value")
    return value


_FIXED = {
    0xCA: (">f", 4), 0xCB: (">d", 8),
    0xCC: (">B", 1), 0xCD: (">H", 2), 0xCE: (">I", 4), 0xCF: (">Q", 8),
    0xD0: (">b", 1), 0xD1: (">h", 2), 0xD2: (">i", 4), 0xD3: (">q", 8),
}


def _take(data, at: int, n: int):
    if at + n > len(data):
        raise MessagePackError("truncated value")
    return data[at:at + n], at + n


def _unpack(data, at: int):
    raw, at = _take(data, at, 1)
    m = raw[0]
    if m <= 0x7F:
        return m, at
    if m >= 0xE0:
        return m - 0x100, at
    if m == 0xC0:
        return None, at
    if m in (0xC2, 0xC3):
        return m == 0xC3, at
    if m in _FIXED:
        fmt, n = _FIXED[m]
        raw, at = _take(data, at, n)
        return struct.unpack(fmt, raw)[0], at
    if 0xA0 <= m <= 0xBF or m in (0xD9, 0xDA, 0xDB):
        n, at = (m & 0x1F, at) if m <= 0xBF else _length(data, at, m - 0xD9)
        raw, at = _take(data, at, n)
        try:
            return str(raw, "utf-8"), at
        except UnicodeDecodeError as e:
            raise MessagePackError(f"string is not UTF-8: {e}") from None
    if m in (0xC4, 0xC5, 0xC6):
        n, at = _length(data, at, m - 0xC4)
        raw, at = _take(data, at, n)
        return bytes(raw), at
    if 0x90 <= m <= 0x9F or m in (0xDC, 0xDD):
        n, at = (m & 0x0F, at) if m <= 0x9F else _length(data, at, m - 0xDC + 1)
        items = []
        for _ in range(n):
            item, at = _unpack(data, at)
            items.append(item)
        return items, at
    if 0x80 <= m <= 0x8F or m in (0xDE, 0xDF):
        n, at = (m & 0x0F, at) if m <= 0x8F else _length(data, at, m - 0xDE + 1)
        result = {}
        for _ in range(n):
            key, at = _unpack(data, at)
            value, at = _unpack(data, at)
            try:
                result[key] = value
            except TypeError:
                raise MessagePackError(f"map key of type {type(key).__name__} is not usable") from None
        return result, at
    raise MessagePackError(f"unsupported MessagePack marker 0x{m:02x}")


def _length(data, at: int, width: int):
    """A big-endian length of 1, 2 or 4 bytes (``width`` 0, 1, 2)."""
    n = (1, 2, 4)[width]
    raw, at = _take(data, at, n)
    return int.from_bytes(raw, "big"), at
