"""Recursive-descent parser for FilterQL: tokens in, a small immutable syntax tree out.

Grammar (keywords are case-insensitive)::

    statement := [FILTER] body {FROM ident | ALIAS slug | WITH prop {, prop}} EOF
    body      := '*' | match_all | or_expr
    or_expr   := and_expr {OR and_expr}
    and_expr  := unary {AND unary}
    unary     := NOT unary | primary
    primary   := '(' or_expr ')' | AND '(' args ')' | OR '(' args ')' | EXISTS field | INCLUDE slug
               | func '(' ... ')' | TRUE | FALSE | '*' | field tail | literal cmp field
    tail      := cmp literal | [NOT] IN list | [NOT] INTERSECTS list | [NOT] CONTAINS literal
               | [NOT] LIKE string | [NOT] BETWEEN literal AND literal
    args      := or_expr {(',' | newline) or_expr} [',']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_provider_lytics.emulator.filterql_lexer import FilterQLError, Token, tokenize

__all__ = [
    "Between",
    "BoolOp",
    "Compare",
    "Const",
    "Contains",
    "Exists",
    "Field",
    "Func",
    "InList",
    "Include",
    "Intersects",
    "Like",
    "Literal",
    "MatchAll",
    "Not",
    "Statement",
    "parse_statement",
]

COMPARE_OPS = ("=", "==", "!=", ">", ">=", "<", "<=")
_FLIP = {"=": "=", "!=": "!=", ">": "<", ">=": "<=", "<": ">", "<=": ">="}
FUNCTIONS = {"geodistance": 3, "timewindow": 3}
_TAIL_HINT = "expected one of = == != > >= < <= IN, NOT IN, CONTAINS, LIKE, INTERSECTS, BETWEEN"


@dataclass(frozen=True, slots=True)
class Field:
    """A field reference; ``parts`` are the dotted path segments, ``name`` joins them with '.'."""

    parts: tuple[str, ...]
    name: str
    line: int = 0
    col: int = 0


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal value; ``kind`` is string, number, bool or null."""

    value: Any
    kind: str
    line: int = 0
    col: int = 0


@dataclass(frozen=True, slots=True)
class MatchAll:
    """``*`` / ``match_all``: every profile matches."""


@dataclass(frozen=True, slots=True)
class Const:
    """A bare ``true`` / ``false`` used as a condition."""

    value: bool


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and" | "or"
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    arg: Node


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # one of = != > >= < <=
    field: Field
    value: Literal


@dataclass(frozen=True, slots=True)
class Exists:
    field: Field


@dataclass(frozen=True, slots=True)
class InList:
    field: Field
    values: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class Intersects:
    field: Field
    values: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class Contains:
    field: Field
    value: Literal


@dataclass(frozen=True, slots=True)
class Like:
    field: Field
    pattern: Literal


@dataclass(frozen=True, slots=True)
class Between:
    field: Field
    low: Literal
    high: Literal


@dataclass(frozen=True, slots=True)
class Include:
    target: str
    line: int = 0
    col: int = 0


@dataclass(frozen=True, slots=True)
class Func:
    name: str  # lower-case function name
    args: tuple[Field | Literal, ...]
    line: int = 0
    col: int = 0


Node = (
    MatchAll
    | Const
    | BoolOp
    | Not
    | Compare
    | Exists
    | InList
    | Intersects
    | Contains
    | Like
    | Between
    | Include
    | Func
)


@dataclass(frozen=True)
class Statement:
    """A parsed FILTER statement: the condition plus its FROM / ALIAS / WITH clauses."""

    expr: Node
    table: str = "user"
    alias: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


def _describe(tok: Token) -> str:
    if tok.kind == "EOF":
        return "end of input"
    if tok.kind == "STRING":
        return f"string {tok.text}"
    return repr(tok.text or str(tok.value))


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.toks = tokens
        self.i = 0

    # -- helpers -------------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def advance(self) -> Token:
        t = self.toks[self.i]
        if t.kind != "EOF":
            self.i += 1
        return t

    def is_kw(self, *words: str, tok: Token | None = None) -> bool:
        t = tok or self.tok
        return t.kind == "KW" and t.value in words

    def error(self, reason: str, tok: Token | None = None, hint: str | None = None) -> FilterQLError:
        t = tok or self.tok
        return FilterQLError(reason, line=t.line, col=t.col, hint=hint)

    def expect(self, kind: str, what: str, hint: str | None = None) -> Token:
        if self.tok.kind != kind:
            raise self.error(f"expected {what} but found {_describe(self.tok)}", hint=hint)
        return self.advance()

    # -- statement -----------------------------------------------------------------------------
    def statement(self) -> Statement:
        if self.tok.kind == "EOF":
            raise self.error("empty filter", hint='write an expression such as FILTER email = "a@b.com", or FILTER *')
        if self.is_kw("FILTER"):
            self.advance()
            if self.tok.kind == "EOF":
                raise self.error("FILTER has no condition", hint="add an expression after FILTER, or * to match all")
        if self.tok.kind == "STAR" or (
            self.tok.kind == "IDENT" and self.tok.value == "match_all" and not self.tok.quoted
        ):
            self.advance()
            expr: Node = MatchAll()
        else:
            expr = self.or_expr()
        table, alias, props = "user", None, {}
        seen: set[str] = set()
        while self.tok.kind != "EOF":
            t = self.tok
            if not self.is_kw("FROM", "ALIAS", "WITH"):
                if t.kind == "RPAREN":
                    raise self.error("unbalanced parentheses: ')' has no matching '('", hint="remove the extra ')'")
                raise self.error(
                    f"unexpected {_describe(t)} after the end of the condition",
                    hint="join conditions with AND/OR or AND(...), or continue with FROM, ALIAS, WITH",
                )
            if t.value in seen:
                raise self.error(f"duplicate {t.value} clause", hint=f"give {t.value} only once")
            seen.add(str(t.value))
            self.advance()
            if t.value == "FROM":
                table = self.name_token("table name after FROM")
            elif t.value == "ALIAS":
                alias = self.name_token("segment slug after ALIAS")
            else:
                props = self.with_props()
        return Statement(expr, table, alias, props)

    def name_token(self, what: str) -> str:
        t = self.tok
        if t.kind in ("IDENT", "STRING") and t.value:
            self.advance()
            return str(t.value)
        raise self.error(f"expected a {what} but found {_describe(t)}")

    def with_props(self) -> dict[str, Any]:
        props: dict[str, Any] = {}
        while True:
            key_tok = self.tok
            if key_tok.kind not in ("IDENT", "KW"):
                raise self.error(
                    f"expected a property name after WITH but found {_describe(key_tok)}",
                    hint='write WITH name = "My segment", description = "..."',
                )
            self.advance()
            key = str(key_tok.text).lower()
            if key in props:
                raise self.error(f"duplicate WITH property {key!r}", key_tok)
            if not (self.tok.kind == "OP" and self.tok.value in ("=", "==")):
                raise self.error(f"expected '=' after WITH property {key!r} but found {_describe(self.tok)}")
            self.advance()
            if self.tok.kind == "LPAREN":
                props[key] = [lit.value for lit in self.literal_list(f"WITH {key}")]
            else:
                props[key] = self.literal(f"a value for WITH property {key!r}").value
            if self.tok.kind != "COMMA":
                return props
            self.advance()

    # -- expressions ---------------------------------------------------------------------------
    def ends_argument(self, arg_mode: bool) -> bool:
        """In an AND(...)/OR(...) list, a new line starting with AND( / OR( begins the next argument."""
        return arg_mode and self.tok.nl_before and self.peek().kind == "LPAREN"

    def or_expr(self, arg_mode: bool = False) -> Node:
        args = [self.and_expr(arg_mode)]
        while self.is_kw("OR") and not self.ends_argument(arg_mode):
            self.advance()
            args.append(self.and_expr(arg_mode))
        return args[0] if len(args) == 1 else BoolOp("or", tuple(args))

    def and_expr(self, arg_mode: bool = False) -> Node:
        args = [self.unary()]
        while self.is_kw("AND") and not self.ends_argument(arg_mode):
            self.advance()
            args.append(self.unary())
        return args[0] if len(args) == 1 else BoolOp("and", tuple(args))

    def unary(self) -> Node:
        if self.is_kw("NOT"):
            self.advance()
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Node:
        t = self.tok
        k = t.kind
        if k == "LPAREN":
            self.advance()
            inner = self.or_expr()
            self.close_paren(t, "(")
            return inner
        if k == "KW":
            if t.value in ("AND", "OR") and self.peek().kind == "LPAREN":
                self.advance()
                return BoolOp(str(t.value).lower(), self.args(self.advance(), str(t.value)))
            if t.value == "EXISTS":
                self.advance()
                return Exists(self.field("a field name after EXISTS"))
            if t.value == "INCLUDE":
                self.advance()
                tt = self.tok
                if tt.kind in ("IDENT", "STRING", "NUMBER") and str(tt.value):
                    self.advance()
                    return Include(tt.text if tt.kind == "NUMBER" else str(tt.value), tt.line, tt.col)
                raise self.error(f"expected a segment slug or id after INCLUDE but found {_describe(tt)}")
            if t.value in ("TRUE", "FALSE"):
                self.advance()
                return Const(t.value == "TRUE")
        if k == "STAR":
            self.advance()
            return MatchAll()
        if k == "IDENT":
            if not t.quoted and len(t.parts) == 1 and self.peek().kind == "LPAREN":
                return self.function()
            if t.value == "match_all" and not t.quoted:
                self.advance()
                return MatchAll()
            return self.tail(self.field("a field name"))
        if k in ("STRING", "NUMBER"):
            # Reversed form: "Yoda" = name
            lit = self.literal("a value")
            op_tok = self.tok
            if op_tok.kind == "OP" and op_tok.value in COMPARE_OPS:
                self.advance()
                fld = self.field(f"a field name after {lit.value!r} {op_tok.value}")
                op = "=" if op_tok.value == "==" else str(op_tok.value)
                return Compare(_FLIP[op], fld, lit)
            raise self.error(f"expected a comparison operator after value but found {_describe(op_tok)}")
        if k == "RPAREN":
            raise self.error("unbalanced parentheses: ')' has no matching '(' or an argument is missing")
        if k == "EOF":
            raise self.error(
                "unexpected end of input: a condition is missing",
                hint="check for unclosed parentheses or a trailing AND/OR/NOT",
            )
        if k == "OP":
            raise self.error(f"unexpected operator {t.value!r}: a field name must come first")
        if k == "KW":
            raise self.error(
                f"expected a condition but found keyword {t.text!r}",
                hint="put backticks around field names that are keywords, e.g. `from` = 1",
            )
        raise self.error(
            f"expected a condition but found {_describe(t)}",
            hint='conditions look like field = "value", EXISTS field, AND(...), OR(...), NOT ...',
        )

    def close_paren(self, opener: Token, what: str) -> None:
        if self.tok.kind != "RPAREN":
            raise self.error(
                f"unbalanced parentheses: expected ')' to close {what} opened at {opener.line}:{opener.col} "
                f"but found {_describe(self.tok)}",
                hint="add the missing ')' or separate arguments with commas",
            )
        self.advance()

    def args(self, opener: Token, name: str) -> tuple[Node, ...]:
        out: list[Node] = []
        while True:
            if self.tok.kind == "RPAREN":
                if not out:
                    raise self.error(f"{name}() needs at least one condition")
                self.advance()
                return tuple(out)
            out.append(self.or_expr(arg_mode=True))
            if self.tok.kind == "COMMA":
                self.advance()
            elif self.tok.kind != "RPAREN" and not self.tok.nl_before:
                if self.tok.kind == "EOF":
                    self.close_paren(opener, f"{name}(")
                if self.tok.kind in ("OP", "IDENT", "KW"):
                    raise self.error(
                        f"expected ',' or ')' in {name}(...) but found {_describe(self.tok)}",
                        hint=f"unknown operator? {_TAIL_HINT}",
                    )
                raise self.error(f"expected ',' or ')' in {name}(...) but found {_describe(self.tok)}")

    def field(self, what: str) -> Field:
        t = self.tok
        if t.kind != "IDENT":
            hint = "put backticks around field names that are keywords, e.g. `from`" if t.kind == "KW" else None
            raise self.error(f"expected {what} but found {_describe(t)}", hint=hint)
        self.advance()
        return Field(t.parts, str(t.value), t.line, t.col)

    def literal(self, what: str) -> Literal:
        t = self.tok
        if t.kind == "STRING":
            self.advance()
            return Literal(t.value, "string", t.line, t.col)
        if t.kind == "NUMBER":
            self.advance()
            return Literal(t.value, "number", t.line, t.col)
        if self.is_kw("TRUE", "FALSE"):
            self.advance()
            return Literal(t.value == "TRUE", "bool", t.line, t.col)
        if self.is_kw("NULL"):
            self.advance()
            return Literal(None, "null", t.line, t.col)
        hint = None
        if t.kind == "IDENT":
            hint = 'quote string values and date math, e.g. "now-30d"; comparing two fields is not supported'
        raise self.error(f"expected {what} but found {_describe(t)}", hint=hint)

    def literal_list(self, what: str) -> tuple[Literal, ...]:
        opener = self.tok
        if opener.kind != "LPAREN":
            return (self.literal(f"a value or a (list) after {what}"),)
        self.advance()
        values: list[Literal] = []
        while self.tok.kind != "RPAREN":
            if self.tok.kind == "EOF":
                self.close_paren(opener, f"the {what} list")
            values.append(self.literal(f"a value in the {what} list"))
            if self.tok.kind == "COMMA":
                self.advance()
            elif self.tok.kind != "RPAREN" and not self.tok.nl_before:
                self.close_paren(opener, f"the {what} list")
        self.advance()
        if not values:
            raise self.error(f"empty {what} list", opener, hint='give at least one value, e.g. ("a", "b")')
        return tuple(values)

    def tail(self, fld: Field) -> Node:
        t = self.tok
        if t.kind == "OP":
            if t.value not in COMPARE_OPS:
                raise self.error(f"unknown operator {t.value!r} after field {fld.name!r}", hint=_TAIL_HINT)
            self.advance()
            op = "=" if t.value == "==" else str(t.value)
            return Compare(op, fld, self.literal(f"a value after {fld.name} {t.value}"))
        negate = False
        if self.is_kw("NOT"):
            negate = True
            self.advance()
            t = self.tok
        node = self.word_op(fld, t, negate)
        return Not(node) if negate else node

    def word_op(self, fld: Field, t: Token, negate: bool) -> Node:
        word = t.value if t.kind == "KW" else None
        label = ("NOT " if negate else "") + str(word)
        if word == "IN":
            self.advance()
            if self.tok.kind != "LPAREN":
                raise self.error(f"expected '(' after {label}", hint='write field IN ("a", "b")')
            return InList(fld, self.literal_list(label))
        if word == "INTERSECTS":
            self.advance()
            return Intersects(fld, self.literal_list(label))
        if word == "CONTAINS":
            self.advance()
            return Contains(fld, self.literal(f"a value after {label}"))
        if word == "LIKE":
            self.advance()
            pat = self.literal(f"a pattern string after {label}")
            if pat.kind != "string":
                raise FilterQLError(
                    f"{label} needs a quoted pattern", line=pat.line, col=pat.col, hint='write field LIKE "abc*"'
                )
            return Like(fld, pat)
        if word == "BETWEEN":
            self.advance()
            low = self.literal(f"a lower bound after {label}")
            if not self.is_kw("AND"):
                raise self.error(
                    f"expected AND in {label} but found {_describe(self.tok)}", hint="write field BETWEEN low AND high"
                )
            self.advance()
            return Between(fld, low, self.literal(f"an upper bound after {label} ... AND"))
        where = "after NOT" if negate else "after field"
        raise self.error(f"unknown operator {_describe(t)} {where} {fld.name!r}", t, hint=_TAIL_HINT)

    def function(self) -> Node:
        name_tok = self.advance()
        name = str(name_tok.value).lower()
        if name not in FUNCTIONS:
            raise self.error(
                f"unknown function {name_tok.value!r}",
                name_tok,
                hint="supported functions: " + ", ".join(sorted(FUNCTIONS)),
            )
        opener = self.advance()
        args: list[Field | Literal] = [self.field(f"a field name as the first argument of {name}()")]
        while self.tok.kind == "COMMA":
            self.advance()
            args.append(self.literal(f"a value argument of {name}()"))
        self.close_paren(opener, f"{name}(")
        if len(args) != FUNCTIONS[name]:
            raise self.error(
                f"{name}() takes {FUNCTIONS[name]} arguments, got {len(args)}",
                name_tok,
                hint='geodistance(field, "lat,lon", km); timewindow(field, count, days)',
            )
        kinds = tuple(a.kind for a in args[1:] if isinstance(a, Literal))
        wanted = ("string", "number") if name == "geodistance" else ("number", "number")
        if kinds != wanted:
            raise self.error(
                f"wrong argument types for {name}()",
                name_tok,
                hint='geodistance(field, "lat,lon", km); timewindow(field, count, days)',
            )
        return Func(name, tuple(args), name_tok.line, name_tok.col)


def parse_statement(text: str) -> Statement:
    """Parse FilterQL ``text`` into a Statement; raises FilterQLError naming the position of the problem."""
    if not isinstance(text, str):
        raise FilterQLError(f"expected FilterQL text (str), got {type(text).__name__}")
    parser = _Parser(tokenize(text))
    return parser.statement()
