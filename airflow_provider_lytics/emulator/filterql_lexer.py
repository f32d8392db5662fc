"""Tokenizer for FilterQL (Lytics segment query language) and the shared parse error type.

The lexer turns text into a flat token list with 1-based line/column positions so that every
parse error can point at the exact spot the author must fix.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KEYWORDS", "FilterQLError", "Token", "tokenize"]

_PREFIX = "Failed parsing segment QL: "

KEYWORDS = frozenset(
    {
        "FILTER",
        "FROM",
        "ALIAS",
        "WITH",
        "AND",
        "OR",
        "NOT",
        "EXISTS",
        "IN",
        "CONTAINS",
        "LIKE",
        "INTERSECTS",
        "BETWEEN",
        "INCLUDE",
        "TRUE",
        "FALSE",
        "NULL",
    }
)

_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-$@")
_DIGITS = frozenset("0123456789")
_OP_CHARS = frozenset("=!<>~&|^%+/?:;")
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


class FilterQLError(ValueError):
    """A FilterQL text could not be parsed or evaluated.

    ``str(e)`` always starts with ``"Failed parsing segment QL: "`` (the prefix Lytics uses), followed by
    what went wrong, where (``line:col``) and a hint on how to fix it. The parts are also kept as attributes.
    """

    def __init__(self, reason: str, *, line: int | None = None, col: int | None = None, hint: str | None = None):
        self.reason = reason[len(_PREFIX) :] if reason.startswith(_PREFIX) else reason
        self.line = line
        self.col = col
        self.hint = hint
        message = _PREFIX + self.reason
        if line is not None and col is not None:
            message += f" at {line}:{col}"
        if hint:
            message += f"; hint: {hint}"
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical token.

    ``kind`` is one of IDENT, KW, STRING, NUMBER, OP, LPAREN, RPAREN, COMMA, STAR, EOF.
    For IDENT, ``parts`` holds the dotted path segments and ``quoted`` tells whether backticks were used.
    ``nl_before`` is True when a line break separates this token from the previous one (newlines act as
    argument separators inside ``AND(...)`` / ``OR(...)``).
    """

    kind: str
    value: object
    line: int
    col: int
    nl_before: bool = False
    parts: tuple[str, ...] = ()
    quoted: bool = False
    text: str = ""


class _Lexer:
    def __init__(self, text: str) -> None:
        self.s = text
        self.n = len(text)
        self.i = 0
        self.line = 1
        self.line_start = 0
        self.tokens: list[Token] = []
        self.nl = False

    def pos(self, i: int | None = None) -> tuple[int, int]:
        """Line and column (1-based) of offset ``i`` (default: current offset)."""
        if i is None or i >= self.line_start:
            return self.line, (self.i if i is None else i) - self.line_start + 1
        line = self.s.count("\n", 0, i) + 1
        return line, i - (self.s.rfind("\n", 0, i) + 1) + 1

    def error(self, reason: str, i: int | None = None, hint: str | None = None) -> FilterQLError:
        line, col = self.pos(i)
        return FilterQLError(reason, line=line, col=col, hint=hint)

    def add(self, kind: str, value: object, start: int, **extra: object) -> None:
        line, col = self.pos(start)
        self.tokens.append(
            Token(kind, value, line, col, nl_before=self.nl, text=self.s[start : self.i], **extra)  # type: ignore[arg-type]
        )
        self.nl = False

    def run(self) -> list[Token]:
        s, n = self.s, self.n
        while self.i < n:
            c = s[self.i]
            if c == "\n":
                self.i += 1
                self.line += 1
                self.line_start = self.i
                self.nl = True
            elif c in " \t\r\f\v\ufeff":
                self.i += 1
            elif c == "-" and s.startswith("--", self.i):
                end = s.find("\n", self.i)
                self.i = n if end < 0 else end
            elif c in "\"'":
                self.string(c)
            elif c == "`" or (c in _IDENT_CHARS and c != "-" and not self.number_starts()):
                self.ident()
            elif self.number_starts():
                self.number()
            elif c == "(":
                self.single("LPAREN")
            elif c == ")":
                self.single("RPAREN")
            elif c == ",":
                self.single("COMMA")
            elif c == "*":
                self.single("STAR")
            elif c in _OP_CHARS:
                start = self.i
                while self.i < n and s[self.i] in _OP_CHARS:
                    self.i += 1
                self.add("OP", s[start : self.i], start)
            else:
                raise self.error(
                    f"unexpected character {c!r}",
                    hint="quote string values with double quotes and odd field names with backticks",
                )
        self.i = n
        self.add("EOF", None, n)
        return self.tokens

    def single(self, kind: str) -> None:
        start = self.i
        self.i += 1
        self.add(kind, self.s[start], start)

    def number_starts(self) -> bool:
        """True when a numeric literal starts here (digits, or a sign / dot followed by a digit)."""
        s, i, n = self.s, self.i, self.n
        c = s[i]
        if c in _DIGITS:
            return True
        if c in "+-":
            i += 1
            if i < n and s[i] in _DIGITS:
                return True
            return i + 1 < n and s[i] == "." and s[i + 1] in _DIGITS
        return c == "." and i + 1 < n and s[i + 1] in _DIGITS

    def number(self) -> None:
        s, n, start = self.s, self.n, self.i
        i = start
        if s[i] in "+-":
            i += 1
        while i < n and s[i] in _DIGITS:
            i += 1
        is_float = False
        if i < n and s[i] == "." and i + 1 < n and s[i + 1] in _DIGITS:
            is_float = True
            i += 1
            while i < n and s[i] in _DIGITS:
                i += 1
        if i < n and s[i] in "eE":
            j = i + 1
            if j < n and s[j] in "+-":
                j += 1
            if j < n and s[j] in _DIGITS:
                is_float = True
                i = j
                while i < n and s[i] in _DIGITS:
                    i += 1
        signed = s[start] in "+-"
        if not signed and i < n and (s[i] in _IDENT_CHARS or s[i] in ".`"):
            # Something like 123abc, 2024-01-01 or 5f3e.x: an identifier (segment ids are often hex).
            self.ident()
            return
        if i < n and (s[i] in _IDENT_CHARS or s[i] in "`"):
            self.i = i
            raise self.error(
                f"malformed number {s[start : i + 1]!r}", start, hint="separate values with commas or quote the text"
            )
        self.i = i
        text = s[start:i]
        self.add("NUMBER", float(text) if is_float else int(text), start)

    def ident(self) -> None:
        s, n, start = self.s, self.n, self.i
        parts: list[str] = []
        quoted = False
        while True:
            if self.i < n and s[self.i] == "`":
                quoted = True
                parts.append(self.backtick())
            else:
                j = self.i
                while j < n and s[j] in _IDENT_CHARS:
                    j += 1
                if j == self.i:
                    raise self.error("expected a field name after '.'", hint="write map access as field.key")
                parts.append(s[self.i : j])
                self.i = j
            if self.i < n and s[self.i] == ".":
                self.i += 1
                continue
            break
        if not quoted and len(parts) == 1 and parts[0].upper() in KEYWORDS:
            self.add("KW", parts[0].upper(), start)
        else:
            self.add("IDENT", ".".join(parts), start, parts=tuple(parts), quoted=quoted)

    def backtick(self) -> str:
        s, n, start = self.s, self.n, self.i
        i = start + 1
        out: list[str] = []
        while True:
            if i >= n:
                raise self.error("unterminated backtick field name", start, hint="close the name with a backtick (`)")
            c = s[i]
            if c == "`":
                if i + 1 < n and s[i + 1] == "`":
                    out.append("`")
                    i += 2
                    continue
                break
            if c == "\n":
                raise self.error("line break inside a backtick field name", start, hint="close the name with `")
            out.append(c)
            i += 1
        self.i = i + 1
        name = "".join(out)
        if not name:
            raise self.error("empty backtick field name", start, hint="put the field name between the backticks")
        return name

    def string(self, quote: str) -> None:
        s, n, start = self.s, self.n, self.i
        i = start + 1
        out: list[str] = []
        while True:
            if i >= n:
                raise self.error(
                    "unterminated string", start, hint=f"close the string that starts here with a matching {quote}"
                )
            c = s[i]
            if c == quote:
                break
            if c == "\\":
                if i + 1 >= n:
                    raise self.error("unterminated string", start, hint=f"close the string with {quote}")
                e = s[i + 1]
                if e in _ESCAPES:
                    out.append(_ESCAPES[e])
                    i += 2
                    continue
                if e == "u":
                    hexdigits = s[i + 2 : i + 6]
                    if len(hexdigits) == 4 and all(h in "0123456789abcdefABCDEF" for h in hexdigits):
                        out.append(chr(int(hexdigits, 16)))
                        i += 6
                        continue
                    raise self.error("invalid \\u escape", i, hint="write \\u followed by four hex digits")
                raise self.error(
                    f"unknown escape sequence \\{e}", i, hint='valid escapes are \\" \\\\ \\n \\t \\r \\/ \\uXXXX'
                )
            if c == "\n":
                self.line += 1
                self.line_start = i + 1
            out.append(c)
            i += 1
        self.i = i + 1
        self.add("STRING", "".join(out), start)


def tokenize(text: str) -> list[Token]:
    """Split FilterQL ``text`` into tokens (the last one is EOF); raises FilterQLError on bad characters."""
    return _Lexer(text).run()
