r"""Numbers from text as Go's strconv reads them: the one owner of that grammar.

DVID parses every number in a URL, query string or setting with strconv, which takes
an optional sign (``+32`` for ParseInt, none for ParseUint) and ASCII digits, nothing
else. Python's ``int()`` and ``float()`` also take spaces, underscores and non-ASCII
digits (``' 32'``, ``'3_2'``, ``'٣٢'``), and ``re``'s ``\d`` matches those digits too,
so no other module calls them on client text.
"""

from __future__ import annotations

import math
import re

from cas_dvid.errors import InvalidInputError

I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
U64_MAX = (1 << 64) - 1

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(
    r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|infinity|nan)", re.I
)


def is_int(text: str) -> bool:
    """Whether ``text`` is ParseInt's syntax: a sign or none, then 1 to 19 ASCII digits."""
    return bool(_INT.fullmatch(text)) and len(text.lstrip("+-")) <= 19


def is_uint(text: str, digits: int = 20) -> bool:
    """Whether ``text`` is ParseUint's syntax: 1 to ``digits`` ASCII digits, no sign."""
    return text.isascii() and text.isdigit() and len(text) <= digits


def parse_int(text: str, what: str, lo: int = I64_MIN, hi: int = I64_MAX) -> int:
    """``strconv.ParseInt(text, 10, 64)`` checked against ``lo..hi``.

    Raises:
        InvalidInputError: "<what> must be an integer, got '...'" for bad syntax, or
            "... in lo..hi" for a value outside the range.

    """
    if not is_int(text):
        raise InvalidInputError(f"{what} must be an integer, got {text[:40]!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise InvalidInputError(f"{what} must be an integer in {lo}..{hi}, got {text[:40]!r}")
    return value


def parse_uint(text: str, what: str, hi: int = U64_MAX) -> int:
    """``strconv.ParseUint(text, 10, 64)`` checked against ``0..hi`` (a sign is refused)."""
    if not _INT.fullmatch(text):
        raise InvalidInputError(f"{what} must be an integer, got {text[:40]!r}")
    if not is_uint(text) or int(text) > hi:
        bits = "64-bit" if hi == U64_MAX else f"0..{hi}"
        raise InvalidInputError(f"{what} must be an unsigned {bits} integer, got {text[:40]!r}")
    return int(text)


def parse_float(text: str) -> float:
    """``strconv.ParseFloat(text, 64)`` for decimal text, with Go's error texts."""
    if not _FLOAT.fullmatch(text):
        raise InvalidInputError(f'strconv.ParseFloat: parsing "{text[:40]}": invalid syntax')
    value = float(text)
    if math.isinf(value) and "inf" not in text.lower():
        raise InvalidInputError(f'strconv.ParseFloat: parsing "{text[:40]}": value out of range')
    return value
