"""Go's ``fmt.Sprintf``/``Sprint``/``Sprintln`` for JSON-shaped values, including Go's in-band error notes.

Supported: flags ``+ - # 0 space``, width and precision (also ``*``), verbs ``v s q d b o O x X c U e E f
F g G t T %``. Like Go, a verb that does not fit the argument prints ``%!d(string=hi)`` instead of failing,
a missing argument prints ``%!s(MISSING)`` and spare arguments are listed as ``%!(EXTRA ...)``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_lytics.templating.errors import ValueTooLarge
from airflow_provider_lytics.templating.values import (
    MISSING,
    NIL,
    format_float_shortest,
    format_value,
    go_type,
    is_list,
    sorted_keys,
)

#: Go's fmt refuses widths and precisions above this (``tooLarge``): ``%!(BADWIDTH)``, ``%!(BADPREC)`` or, for
#: digits in the format itself, ``%!(NOVERB)`` (the rest of the format is consumed).
GO_TOO_LARGE = 1_000_000
#: Longest string ``sprintf`` builds (characters); longer raises :class:`ValueTooLarge`.
MAX_SPRINTF_CHARS = 10_000_000

QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


@dataclass
class Spec:
    plus: bool = False
    minus: bool = False
    sharp: bool = False
    space: bool = False
    zero: bool = False
    width: int | None = None
    prec: int | None = None


def go_quote(text: str, ascii_only: bool = False) -> str:
    """``strconv.Quote``: a double-quoted Go string literal."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch.isprintable() and (not ascii_only or ord(ch) < 0x80):
            out.append(ch)
        elif ch in QUOTE_ESCAPES:
            out.append(QUOTE_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def _pad(text: str, spec: Spec, zero_ok: bool = True) -> str:
    if spec.width is None or len(text) >= spec.width:
        return text
    fill = spec.width - len(text)
    if spec.minus:
        return text + " " * fill
    if spec.zero and zero_ok:
        return "0" * fill + text
    return " " * fill + text


def _sign(negative: bool, spec: Spec) -> str:
    return "-" if negative else "+" if spec.plus else " " if spec.space else ""


def _pad_number(sign: str, body: str, spec: Spec) -> str:
    if spec.width is not None and spec.zero and not spec.minus and len(sign) + len(body) < spec.width:
        body = "0" * (spec.width - len(sign) - len(body)) + body
    return _pad(sign + body, spec, zero_ok=False)


def _bad(verb: str, arg: Any, spec: Spec | None = None) -> str:
    """Go's note for a verb that does not fit: the operand printed with ``%v`` and the same flags."""
    if arg is None or arg is MISSING:
        return f"%!{verb}({NIL})"
    return f"%!{verb}({go_type(arg)}={print_arg(arg, 'v', spec or Spec(), 1)})"


def _binary_float(value: float) -> str:
    """``%b`` on a float: decimalless mantissa and binary exponent, as ``strconv.FormatFloat(v, 'b', ...)``."""
    bits = struct.unpack(">Q", struct.pack(">d", value))[0]
    negative = bits >> 63
    exp = (bits >> 52) & 0x7FF
    mant = bits & ((1 << 52) - 1)
    if exp == 0:
        exp += 1
    else:
        mant |= 1 << 52
    return f"{'-' if negative else ''}{mant}p{exp - 1023 - 52:+d}"


def _hex_float(value: float, upper: bool, spec: Spec) -> str:
    """``%x`` on a float: Go's hexadecimal mantissa and a two-digit binary exponent."""
    if math.isnan(value) or math.isinf(value):
        return fmt_float(value, "g", spec)
    text = value.hex()
    negative = text.startswith("-")
    mantissa, exponent = text.lstrip("-")[2:].split("p")
    if spec.prec is not None and "." in mantissa:
        whole, frac = mantissa.split(".")
        scaled = round(int(whole + frac, 16) / 16 ** (len(frac) - spec.prec))
        digits = format(scaled, "x").rjust(spec.prec + 1, "0")
        mantissa = digits[: -spec.prec] + ("." + digits[-spec.prec :] if spec.prec else "")
    elif "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    if spec.sharp and spec.prec is None:  # '#' keeps at least four hex digits after the point
        whole, _, frac = mantissa.partition(".")
        mantissa = f"{whole}.{frac.ljust(4, '0')}"
    exp = int(exponent)
    body = f"0x{mantissa}p{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if upper:
        body = body.upper()
    return _pad_number(_sign(negative, spec), body, spec)


def fmt_int(value: int, verb: str, spec: Spec) -> str:
    valid_rune = 0 <= value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF
    char = chr(value) if valid_rune else "\ufffd"
    if verb == "c":
        return _pad(char, spec)
    if verb == "q":
        return _pad("'" + go_quote(char)[1:-1].replace('\\"', '"').replace("'", "\\'") + "'", spec)
    if verb == "U":
        text = f"U+{value if value >= 0 else value + 2**64:04X}"
        if spec.sharp and valid_rune and char.isprintable():
            text += f" '{char}'"
        return _pad(text, spec)
    base = {"d": 10, "v": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}[verb]
    digits = {2: "b", 8: "o", 10: "d", 16: "x"}[base]
    body = format(abs(value), digits)
    if verb == "X":
        body = body.upper()
    if spec.prec is not None:
        body = "" if spec.prec == 0 and value == 0 else body.rjust(spec.prec, "0")
    prefix = ""
    if verb == "O":
        prefix = "0o"
    elif spec.sharp:
        prefix = {"b": "0b", "o": "0", "x": "0x", "X": "0X"}.get(verb, "")
        if verb == "o" and body.startswith("0"):
            prefix = ""
    if spec.prec is not None:
        spec = Spec(spec.plus, spec.minus, spec.sharp, spec.space, False, spec.width, spec.prec)
    return _pad_number(_sign(value < 0, spec) + prefix, body, spec)


def fmt_float(value: float, verb: str, spec: Spec) -> str:
    if verb in ("v", "g", "G") and spec.prec is None:
        text = format_float_shortest(value, "g")
        if verb == "G":
            text = text.upper().replace("INF", "Inf").replace("NAN", "NaN")
    else:
        pyverb = {"v": "g", "F": "f"}.get(verb, verb)
        prec = spec.prec if spec.prec is not None else 6
        text = format(value, f"{'#' if spec.sharp else ''}.{prec}{pyverb}")
        text = text.replace("inf", "Inf").replace("INF", "Inf").replace("nan", "NaN").replace("NAN", "NaN")
        if text == "Inf":
            text = "+Inf"
    if text in ("NaN", "+Inf", "-Inf"):  # never zero-padded
        return _pad(text, Spec(minus=spec.minus, width=spec.width))
    negative = text.startswith("-")
    return _pad_number(_sign(negative, spec), text.lstrip("-"), spec)


def fmt_str(value: str, verb: str, spec: Spec) -> str:
    if verb in ("s", "v"):
        return _pad(value if spec.prec is None else value[: spec.prec], spec)
    if verb == "q":
        if spec.prec is not None:
            value = value[: spec.prec]
        if spec.sharp and "`" not in value and all(c.isprintable() or c == "\t" for c in value):
            return _pad(f"`{value}`", spec)
        return _pad(go_quote(value, ascii_only=spec.plus), spec)
    data = value.encode()
    if spec.prec is not None:
        data = data[: spec.prec]
    text = data.hex()
    if spec.space:
        text = " ".join(f"{'0x' if spec.sharp else ''}{b:02x}" for b in data)
    elif spec.sharp and data:
        text = "0x" + text
    return _pad(text.upper() if verb == "X" else text, spec)


def print_arg(arg: Any, verb: str, spec: Spec, depth: int = 0) -> str:
    """One operand formatted with one verb, Go style."""
    if verb == "T":
        return _pad(go_type(arg), spec)
    if arg is None or arg is MISSING:
        return _pad(NIL, spec) if verb == "v" or depth else _bad(verb, arg)
    if isinstance(arg, bool):
        return _pad("true" if arg else "false", spec) if verb in ("t", "v") else _bad(verb, arg, spec)
    if isinstance(arg, int):
        return fmt_int(arg, verb, spec) if verb in "bcdoOqxXUv" else _bad(verb, arg, spec)
    if isinstance(arg, float):
        if verb in "xX":
            return _hex_float(arg, verb == "X", spec)
        if verb == "b":
            return _pad(_binary_float(arg), spec)
        return fmt_float(arg, verb, spec) if verb in "veEfFgG" else _bad(verb, arg, spec)
    if isinstance(arg, str):
        return fmt_str(arg, verb, spec) if verb in "vsqxX" else _bad(verb, arg, spec)
    if isinstance(arg, Mapping):
        if spec.sharp and verb == "v":
            return go_syntax(arg)
        inner = " ".join(f"{print_arg(k, verb, spec, depth + 1)}:{print_arg(arg[k], verb, spec, depth + 1)}"
                         for k in sorted_keys(arg))  # fmt: skip
        return f"map[{inner}]"
    if is_list(arg):
        if spec.sharp and verb == "v":
            return go_syntax(arg)
        return "[" + " ".join(print_arg(v, verb, spec, depth + 1) for v in arg) + "]"
    return _pad(str(arg), spec) if verb in ("v", "s") else _bad(verb, arg)


def go_syntax(value: Any) -> str:
    """``%#v``: the value as a Go literal."""
    if value is None or value is MISSING:
        return NIL
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float_shortest(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Mapping):
        return (
            "map[string]interface {}{"
            + ", ".join(f"{go_quote(str(k))}:{go_syntax(value[k])}" for k in sorted_keys(value))
            + "}"
        )
    if is_list(value):
        return "[]interface {}{" + ", ".join(go_syntax(v) for v in value) + "}"
    return go_quote(str(value))


def _int_arg(args: list[Any] | tuple[Any, ...], argi: int) -> int | None:
    if argi < len(args) and isinstance(args[argi], int) and not isinstance(args[argi], bool):
        value = args[argi]
        return value if -GO_TOO_LARGE <= value <= GO_TOO_LARGE else None  # Go: "Arg too large"
    return None


class _Cursor:
    """Walks one format string, tracking the next argument like Go's ``pp`` (including ``[n]`` indexes)."""

    def __init__(self, fmt: str, nargs: int) -> None:
        self.fmt = fmt
        self.i = 0
        self.argi = 0
        self.nargs = nargs
        self.reordered = False
        self.good_index = True

    def arg_index(self) -> None:
        """Consume an explicit ``[n]`` argument index if present."""
        fmt, i = self.fmt, self.i
        if i >= len(fmt) or fmt[i] != "[":
            return
        self.reordered = True
        close = fmt.find("]", i)
        digits = fmt[i + 1 : close] if close > 0 else ""
        if close < 0 or not digits.isdigit() or not 1 <= int(digits) <= self.nargs:
            self.good_index = False
            self.i = close + 1 if close > 0 else len(fmt)
            return
        self.argi = int(digits) - 1
        self.i = close + 1

    def number(self) -> int | None:
        """Digits at the cursor, like Go's ``parsenum``: a number that grows past :data:`GO_TOO_LARGE` while
        being read consumes the rest of the format (Go then prints ``%!(NOVERB)``)."""
        fmt, n = self.fmt, len(self.fmt)
        num, start = 0, self.i
        while self.i < n and "0" <= fmt[self.i] <= "9":
            if num > GO_TOO_LARGE:
                self.i = n
                return None
            num = num * 10 + ord(fmt[self.i]) - 48
            self.i += 1
        return num if self.i > start else None


def sprintf(fmt: str, args: list[Any] | tuple[Any, ...], limit: int = MAX_SPRINTF_CHARS) -> str:
    """Go's ``fmt.Sprintf``; raises :class:`ValueTooLarge` instead of building more than ``limit`` characters."""
    out: list[str] = []
    cur = _Cursor(fmt, len(args))
    n = len(fmt)
    size = counted = 0
    while cur.i < n:
        for part in out[counted:]:
            size += len(part)
        counted = len(out)
        if size > limit:
            raise ValueTooLarge(f"printf would build more than {limit} characters")

        pct = fmt.find("%", cur.i)
        if pct < 0:
            out.append(fmt[cur.i :])
            break
        out.append(fmt[cur.i : pct])
        cur.i = pct + 1
        cur.good_index = True
        spec = Spec()
        while cur.i < n and fmt[cur.i] in "+-# 0":
            flag = fmt[cur.i]
            spec.plus |= flag == "+"
            spec.minus |= flag == "-"
            spec.sharp |= flag == "#"
            spec.space |= flag == " "
            spec.zero |= flag == "0"
            cur.i += 1
        cur.arg_index()
        if cur.i < n and fmt[cur.i] == "*":
            cur.i += 1
            width = _int_arg(args, cur.argi)
            cur.argi += 1
            if width is None:
                out.append("%!(BADWIDTH)")
            else:
                spec.width = abs(width)
                spec.minus |= width < 0
            cur.arg_index()
        else:
            spec.width = cur.number()
        if cur.i < n and fmt[cur.i] == ".":
            cur.i += 1
            cur.arg_index()
            if cur.i < n and fmt[cur.i] == "*":
                cur.i += 1
                prec = _int_arg(args, cur.argi)
                cur.argi += 1
                if prec is None or prec < 0:
                    out.append("%!(BADPREC)")
                else:
                    spec.prec = prec
                cur.arg_index()
            else:
                spec.prec = cur.number() or 0
        else:
            cur.arg_index()
        if cur.i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[cur.i]
        cur.i += 1
        if verb == "%":
            out.append("%")
        elif not cur.good_index:
            out.append(f"%!{verb}(BADINDEX)")
        elif cur.argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            arg = args[cur.argi]
            cur.argi += 1
            if verb == "v" and spec.sharp:
                out.append(go_syntax(arg))
            elif verb not in "vsqdboOxXcUeEfFgGtT":
                out.append(_bad(verb, arg, spec))
            else:
                out.append(print_arg(arg, verb, spec))
    if sum(len(part) for part in out) > limit:
        raise ValueTooLarge(f"printf would build more than {limit} characters")
    if not cur.reordered and cur.argi < len(args):
        extra = ", ".join(NIL if a is None or a is MISSING else f"{go_type(a)}={format_value(a, False)}"
                          for a in args[cur.argi :])  # fmt: skip
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def sprint(args: list[Any] | tuple[Any, ...]) -> str:
    """Go's ``fmt.Sprint``: a space between operands when neither side is a string."""
    out: list[str] = []
    prev_string = True
    for idx, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if idx > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(format_value(arg, top=False))
        prev_string = is_string
    return "".join(out)


def sprintln(args: list[Any] | tuple[Any, ...]) -> str:
    """Go's ``fmt.Sprintln``: spaces between all operands and a trailing newline."""
    return " ".join(format_value(a, top=False) for a in args) + "\n"
