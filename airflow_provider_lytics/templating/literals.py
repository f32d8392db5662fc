"""Go literal syntax: interpreted string escapes, character constants and number constants."""

from __future__ import annotations

SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def unquote(body: str, quote: str) -> str:
    """Decode the inside of a Go ``"..."`` string (or ``'...'`` char) with Go's escape rules."""
    out: list[str] = []
    i = 0
    n = len(body)
    while i < n:
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= n:
            raise ValueError("a backslash at the end of the string escapes nothing")
        esc = body[i + 1]
        if esc in SIMPLE_ESCAPES:
            out.append(SIMPLE_ESCAPES[esc])
            i += 2
        elif esc == quote:
            out.append(esc)
            i += 2
        elif esc in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[esc]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError(f"\\{esc} needs {width} hex digits")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif esc in "01234567":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or any(c not in "01234567" for c in digits):
                raise ValueError("an octal escape needs 3 digits")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise ValueError(f"unknown escape sequence \\{esc}")
    return "".join(out)


def char_value(text: str) -> int:
    """The code point of a Go character constant such as ``'a'`` or ``'\\n'``."""
    body = unquote(text[1:-1], "'")
    if len(body) != 1:
        raise ValueError(f"malformed character constant: {text}")
    return ord(body)


def number_value(text: str) -> int | float:
    """An integer or float64 constant from Go number syntax (``0x1F``, ``1_000``, ``1e3``, ``.5``, ``0o17``)."""
    clean = text.replace("_", "")
    sign = -1 if clean.startswith("-") else 1
    body = clean.lstrip("+-")
    lower = body.lower()
    if lower.startswith("0x"):
        if "p" in lower or "." in lower:
            return sign * float.fromhex(body)
        return sign * int(body[2:], 16)
    if lower.startswith("0b"):
        return sign * int(body[2:], 2)
    if lower.startswith("0o"):
        return sign * int(body[2:], 8)
    if any(c in lower for c in ".e"):
        return sign * float(body)
    if len(body) > 1 and body.startswith("0"):
        return sign * int(body, 8)
    return sign * int(body)
