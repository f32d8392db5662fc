"""How Go sees template data: the missing value, truthiness, type names and ``fmt``'s ``%v`` printing.

Profiles are JSON-shaped: mappings are Go ``map[string]interface {}``, lists ``[]interface {}``, ``int`` is
Go ``int``, ``float`` is ``float64``, ``None`` is a nil interface. ``MISSING`` is Go's invalid value (a key
absent from a map), which prints as ``<no value>``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any


class _Missing:
    """Go's invalid ``reflect.Value``: what ``.key`` yields when the key is absent."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()
NO_VALUE = "<no value>"
NIL = "<nil>"


def is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def go_type(value: Any) -> str:
    """The Go type name a value would have after JSON decoding (used in error messages and ``%T``)."""
    if value is None or value is MISSING:
        return NIL
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if is_list(value):
        return "[]interface {}"
    return type(value).__name__


def truth(value: Any) -> bool:
    """Go's ``if`` truth: false, 0, nil, and empty strings, lists and maps are false; anything else is true."""
    if value is None or value is MISSING:
        return False
    if isinstance(value, (bool, int, float, str, Mapping, list, tuple)):
        return bool(value)
    return True


def shortest_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of ``abs(value)`` and the decimal point position (Go's ``digs``)."""
    _sign, digits, exponent = Decimal(repr(abs(value))).as_tuple()
    text = "".join(map(str, digits)).rstrip("0")
    if not text:
        return "0", 1
    return text, len(digits) + int(exponent)


def format_float_shortest(value: float, verb: str = "g") -> str:
    """Go's ``strconv.FormatFloat(v, verb, -1, 64)`` for verb ``g``, ``e`` or ``f`` (what ``%v`` prints)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    neg = math.copysign(1.0, value) < 0
    digits, dp = shortest_digits(value)
    if value == 0:
        digits, dp = "0", 1
    exp = dp - 1
    if verb == "g":  # shortest %g switches to exponent form from 1e+06 and below 1e-04
        verb = "e" if exp < -4 or exp >= 6 else "f"
    if verb == "e":
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        body = f"{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    else:
        if dp <= 0:
            body = "0." + "0" * (-dp) + digits
        elif dp >= len(digits):
            body = digits + "0" * (dp - len(digits))
        else:
            body = digits[:dp] + "." + digits[dp:]
    return ("-" if neg else "") + body


def format_value(value: Any, top: bool = True) -> str:
    """``fmt.Sprint``-style ``%v`` text of a value; ``top`` renders nil/missing as ``<no value>`` like Go's exec."""
    if isinstance(value, str):
        return value
    if value is MISSING or value is None:
        return NO_VALUE if top else NIL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float_shortest(value)
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{format_value(k, False)}:{format_value(value[k], False)}"
                                 for k in sorted_keys(value)) + "]"  # fmt: skip
    if is_list(value):
        return "[" + " ".join(format_value(v, False) for v in value) + "]"
    if isinstance(value, Decimal):
        return format_float_shortest(float(value))
    return str(value)


def _key_order(key: Any) -> tuple:
    if isinstance(key, bool):
        return (0, key)
    if isinstance(key, (int, float)):
        return (1, key)
    return (2, str(key))


def sorted_keys(mapping: Mapping) -> list:
    """Map keys in Go's printing and ``range`` order (``fmtsort``): numbers numerically, strings bytewise."""
    keys = list(mapping.keys())
    try:
        if all(isinstance(k, str) for k in keys):
            return sorted(keys, key=lambda k: k.encode("utf-8", "surrogatepass"))
        return sorted(keys, key=_key_order)
    except TypeError:
        return keys
