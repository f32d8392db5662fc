"""Tokenizer for Go ``text/template`` source: text, actions, comments and trim markers.

The token stream follows Go's lexer closely (spaces inside actions are tokens, because ``.a.b`` and ``.a .b``
mean different things) so the parser can apply Go's rules. Typographic quotes, a common paste accident in
marketing copy, get an error that says to use straight quotes.
"""

from __future__ import annotations

from typing import NamedTuple

from airflow_provider_lytics.templating.errors import TemplateSyntaxError, location

LEFT_DELIM = "{{"
RIGHT_DELIM = "}}"
SPACES = " \t\r\n"
KEYWORDS = frozenset({"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue", "nil"})
TERMINATORS = frozenset(" \t\r\n.,|:()")
TYPOGRAPHIC_QUOTES = {
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2018": "'",
    "\u2019": "'",
    "\u00ab": '"',
    "\u00bb": '"',
}

TEXT = "text"
LEFT = "{{"
RIGHT = "}}"
SPACE = "space"
FIELD = "field"
VARIABLE = "variable"
IDENT = "identifier"
KEYWORD = "keyword"
DOT = "."
STRING = "string"
CHAR = "character constant"
NUMBER = "number"
BOOL = "bool"
PIPE = "|"
LPAREN = "("
RPAREN = ")"
DECLARE = ":="
ASSIGN = "="
COMMA = ","
EOF = "EOF"


class Token(NamedTuple):
    kind: str
    value: str
    pos: int


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


class Lexer:
    """Splits one template source into tokens; ``tokens()`` raises :class:`TemplateSyntaxError` on bad input."""

    def __init__(self, source: str, name: str = "template") -> None:
        self.src = source
        self.name = name
        self.pos = 0
        self.out: list[Token] = []
        self.paren_depth = 0

    def error(self, message: str, pos: int | None = None) -> TemplateSyntaxError:
        line, col = location(self.src, self.pos if pos is None else pos)
        return TemplateSyntaxError(message, name=self.name, line=line, column=col)

    def tokens(self) -> list[Token]:
        src = self.src
        trim_next_text = False
        while self.pos < len(src):
            start = self.pos
            left = src.find(LEFT_DELIM, start)
            end = len(src) if left < 0 else left
            text_start = start
            if trim_next_text:
                while text_start < end and src[text_start] in SPACES:
                    text_start += 1
            text_end = end
            trim_left = left >= 0 and src.startswith("-", left + 2) and left + 3 < len(src) and src[left + 3] in SPACES
            if trim_left:
                while text_end > text_start and src[text_end - 1] in SPACES:
                    text_end -= 1
            if text_end > text_start:
                self.out.append(Token(TEXT, src[text_start:text_end], text_start))
            if left < 0:
                self.pos = len(src)
                break
            self.pos = left + (4 if trim_left else 2)
            trim_next_text = self._action(left)
        self.out.append(Token(EOF, "", len(src)))
        return self.out

    # -- inside an action ---------------------------------------------------------------------------------
    def _at_right(self) -> tuple[bool, bool]:
        """(at a right delimiter, with a ``-`` trim marker): ``' -}}'`` or ``'}}'``."""
        src, pos = self.src, self.pos
        if src.startswith(RIGHT_DELIM, pos):
            return True, False
        if src.startswith(" -" + RIGHT_DELIM, pos) or (
            pos < len(src) and src[pos] in SPACES and src.startswith("-" + RIGHT_DELIM, pos + 1)
        ):
            return True, True
        return False, False

    def _action(self, left: int) -> bool:
        """Lex one ``{{ ... }}``; returns whether the action ends with a right trim marker."""
        src = self.src
        # comments: {{/* ... */}} possibly with trim markers
        if src.startswith("/*", self.pos):
            close = src.find("*/", self.pos + 2)
            if close < 0:
                raise self.error("unclosed comment: add */ before }}", left)
            self.pos = close + 2
            at_right, trim = self._at_right()
            if not at_right:
                raise self.error("comment ends before closing delimiter: put }} right after */", close)
            self.pos += (len(RIGHT_DELIM) + 2) if trim else len(RIGHT_DELIM)
            return trim
        self.out.append(Token(LEFT, LEFT_DELIM, left))
        self.paren_depth = 0
        while True:
            at_right, trim = self._at_right()
            if at_right:
                if self.paren_depth:
                    raise self.error("unclosed left paren: add ) before }}")
                if trim:
                    self.pos += 1 if src[self.pos] in SPACES else 0
                    self.pos += 1
                self.out.append(Token(RIGHT, RIGHT_DELIM, self.pos))
                self.pos += len(RIGHT_DELIM)
                return trim
            if self.pos >= len(src):
                raise self.error("unclosed action: add }} to close the {{ opened here", left)
            self._one()

    def _one(self) -> None:
        src = self.src
        start = self.pos
        ch = src[start]
        if ch in SPACES:
            end = start
            # stop before a space that starts a ' -}}' trim marker, so the action loop sees it
            while end < len(src) and src[end] in SPACES and not src.startswith("-" + RIGHT_DELIM, end + 1):
                end += 1
            self._emit(SPACE, start, max(end, start + 1))
            return
        if ch == "=":
            self._emit(ASSIGN, start, start + 1)
        elif ch == ":":
            if not src.startswith(":=", start):
                raise self.error("expected := (a colon must be followed by =)")
            self._emit(DECLARE, start, start + 2)
        elif ch == "|":
            self._emit(PIPE, start, start + 1)
        elif ch == ",":
            self._emit(COMMA, start, start + 1)
        elif ch == '"':
            self._quoted(start)
        elif ch == "`":
            close = src.find("`", start + 1)
            if close < 0:
                raise self.error("unterminated raw quoted string: add a closing `")
            self.out.append(Token(STRING, src[start + 1 : close], start))
            self.pos = close + 1
        elif ch == "'":
            self._char(start)
        elif ch == "$":
            end = start + 1
            while end < len(src) and _is_alnum(src[end]):
                end += 1
            self._emit(VARIABLE, start, end)
        elif ch == "." and not (start + 1 < len(src) and src[start + 1].isdigit()):
            end = start + 1
            while end < len(src) and _is_alnum(src[end]):
                end += 1
            if end == start + 1:
                self._emit(DOT, start, end)
            else:
                self._check_terminator(end, "field")
                self._emit(FIELD, start, end)
        elif ch in "+-." or ch.isdigit():
            self._number(start)
        elif _is_alnum(ch):
            end = start
            while end < len(src) and _is_alnum(src[end]):
                end += 1
            word = src[start:end]
            self._check_terminator(end, "identifier")
            if word in ("true", "false"):
                self._emit(BOOL, start, end)
            elif word in KEYWORDS:
                self._emit(KEYWORD, start, end)
            else:
                self._emit(IDENT, start, end)
        elif ch == "(":
            self.paren_depth += 1
            self._emit(LPAREN, start, start + 1)
        elif ch == ")":
            self.paren_depth -= 1
            if self.paren_depth < 0:
                raise self.error("unexpected right paren ')': it has no matching '('")
            self._emit(RPAREN, start, start + 1)
        elif ch in TYPOGRAPHIC_QUOTES:
            raise self.error(
                f"typographic quote {ch} is not allowed in an action: use straight quotes "
                f"{TYPOGRAPHIC_QUOTES[ch]} instead (word processors often replace them)"
            )
        else:
            raise self.error(f"unrecognized character in action: U+{ord(ch):04X} {ch!r}")

    def _emit(self, kind: str, start: int, end: int) -> None:
        self.out.append(Token(kind, self.src[start:end], start))
        self.pos = end

    def _check_terminator(self, end: int, what: str) -> None:
        src = self.src
        if end >= len(src) or src[end] in TERMINATORS or src.startswith(RIGHT_DELIM, end):
            return
        ch = src[end]
        if ch in TYPOGRAPHIC_QUOTES:
            self.pos = end
            raise self.error(
                f"typographic quote {ch} is not allowed in an action: use straight quotes "
                f"{TYPOGRAPHIC_QUOTES[ch]} instead (word processors often replace them)"
            )
        raise self.error(f"bad character {ch!r} after {what} {src[self.pos : end]!r}", end)

    def _quoted(self, start: int) -> None:
        src = self.src
        i = start + 1
        while True:
            if i >= len(src) or src[i] == "\n":
                raise self.error('unterminated quoted string: add the closing straight quote "', start)
            if src[i] == "\\":
                i += 2
                continue
            if src[i] == '"':
                break
            i += 1
        from airflow_provider_lytics.templating.literals import unquote

        try:
            value = unquote(src[start + 1 : i], '"')
        except ValueError as err:
            raise self.error(f"bad quoted string: {err}", start) from None
        self.out.append(Token(STRING, value, start))
        self.pos = i + 1

    def _char(self, start: int) -> None:
        src = self.src
        i = start + 1
        while True:
            if i >= len(src) or src[i] == "\n":
                raise self.error("unterminated character constant", start)
            if src[i] == "\\":
                i += 2
                continue
            if src[i] == "'":
                break
            i += 1
        self.out.append(Token(CHAR, src[start : i + 1], start))
        self.pos = i + 1

    def _number(self, start: int) -> None:
        src = self.src
        end = start
        if src[end] in "+-":
            end += 1
        hexa = src.startswith(("0x", "0X"), end)
        exponents = "pP" if hexa else "eE"
        while end < len(src):
            ch = src[end]
            if _is_alnum(ch) or ch == "." or (ch in "+-" and src[end - 1] in exponents):
                end += 1
            else:
                break
        text = src[start:end]
        at_end = end >= len(src) or src[end] in TERMINATORS or src.startswith(RIGHT_DELIM, end)
        if text in ("", "+", "-") or not at_end:
            raise self.error(f"bad number syntax: {src[start : end + 1]!r}")
        self._emit(NUMBER, start, end)
