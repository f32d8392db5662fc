"""A documented subset of LQL (Lytics Query Language): parse a query and project stream rows onto profile fields.

Supported (anything else is refused with an :class:`LQLError` naming the construct)::

    SELECT <expr> [AS <field>] [IF <cond>] [KIND <type>] [MERGEOP <op>] [SHORTDESC "..."] [LONGDESC "..."], ...
    FROM <stream> [INTO user] [BY <field> [OR <field> ...]] [WHERE <cond>] [ALIAS <name>]

Expressions: identifiers (``a``, ``a.b``, backticks), string/number/bool literals, parentheses, comparisons
(``= == != > >= < <=``), ``AND``/``OR``/``NOT`` and the row functions in :data:`ROW_FUNCTIONS`. A top-level
aggregate (``count sum min max set valuect oldest latest``) sets the merge operator of its field. Comments start
with ``--`` or ``//``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_lytics.emulator.values import parse_time_ms, rfc3339

#: Merge operators a field may use, and what each keeps.
MERGE_OPS = ("latest", "oldest", "sum", "count", "min", "max", "set", "valuect")
#: KIND values understood (the value is coerced to the type before merging).
KINDS = ("string", "int", "number", "bool", "date", "[]string", "map[string]int")
_AGGREGATES = {"count": "count", "sum": "sum", "min": "min", "max": "max", "set": "set", "valuect": "valuect",
               "oldest": "oldest", "latest": "latest"}  # fmt: skip
_DEFAULT_KIND = {"count": "int", "sum": "number", "min": "number", "max": "number", "set": "[]string",
                 "valuect": "map[string]int"}  # fmt: skip
_KEYWORDS = {"SELECT", "FROM", "INTO", "BY", "WHERE", "ALIAS", "AS", "IF", "KIND", "MERGEOP", "SHORTDESC",
             "LONGDESC", "AND", "OR", "NOT", "TRUE", "FALSE", "NULL"}  # fmt: skip
_UNSUPPORTED = {"GROUP", "ORDER", "LIMIT", "JOIN", "HAVING", "UNION", "INSERT", "UPDATE", "DELETE", "UPSERT"}
_TOKEN = re.compile(
    r"""(?P<ws>\s+|--[^\n]*|//[^\n]*)
      |(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      |(?P<num>-?\d+(?:\.\d+)?)
      |(?P<bq>`[^`]+`)
      |(?P<kindtype>\[\]string|map\[string\](?:int|number|string))
      |(?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
      |(?P<op>==|!=|>=|<=|=|>|<|\(|\)|,|\*|;)""",
    re.VERBOSE,
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class LQLError(ValueError):
    """The LQL text cannot be used; the message says where and what to change."""


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise LQLError(f"unexpected character {text[pos]!r} at {_where(text, pos)}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("eof", "", len(text)))
    return tokens


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    return f"line {line}, column {pos - (text.rfind(chr(10), 0, pos) + 1) + 1}"


# -- expressions ------------------------------------------------------------------------------------------------
Row = Mapping[str, Any]
_MISSING = object()


def _either(a: Callable[[Row], Any], b: Callable[[Row], Any]) -> Callable[[Row], bool]:
    return lambda r: bool(a(r)) or bool(b(r))


def _both(a: Callable[[Row], Any], b: Callable[[Row], Any]) -> Callable[[Row], bool]:
    return lambda r: bool(a(r)) and bool(b(r))


def _negated(f: Callable[[Row], Any]) -> Callable[[Row], bool]:
    return lambda r: not f(r)


def _compared(a: Callable[[Row], Any], b: Callable[[Row], Any], op: str) -> Callable[[Row], Any]:
    return lambda r: _compare(a(r), b(r), op)


@dataclass(frozen=True)
class Expr:
    """One compiled expression: ``fn(row)`` returns the value or ``None`` when it has none."""

    fn: Callable[[Row], Any]
    text: str
    ident: str | None = None  # the bare identifier, when the expression is one


def _lookup(row: Row, name: str) -> Any:
    if name in row:
        return row[name]
    value: Any = row
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != []


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _to_int(value: Any) -> int | None:
    num = _number(value)
    return int(num) if num is not None else None


def _to_date(value: Any, *_: Any) -> str | None:
    if not _present(value):
        return None
    ms = parse_time_ms(value)
    return rfc3339(ms) if ms is not None else None


def _email(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    return text if _EMAIL.match(text) else None


def _str_fn(op: Callable[[str], str]) -> Callable[[Any], Any]:
    return lambda v: op(str(v)) if _present(v) else None


def _compare(a: Any, b: Any, op: str) -> bool:
    if a is None or b is None:
        return op == "!=" and (a is None) != (b is None)
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        a, b = na, nb
    else:
        a, b = str(a), str(b)
    return {"=": a == b, "==": a == b, "!=": a != b, ">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]


#: Row functions: name -> (minimum args, maximum args, implementation on evaluated args).
ROW_FUNCTIONS: dict[str, tuple[int, int, Callable[..., Any]]] = {
    "email": (1, 1, _email),
    "tolower": (1, 1, _str_fn(str.lower)),
    "toupper": (1, 1, _str_fn(str.upper)),
    "trim": (1, 1, _str_fn(str.strip)),
    "toint": (1, 1, _to_int),
    "tonumber": (1, 1, _number),
    "todate": (1, 2, _to_date),
    "exists": (1, 1, _present),
    "eq": (2, 2, lambda a, b: _compare(a, b, "==")),
    "contains": (2, 2, lambda a, b: _present(a) and str(b) in (a if isinstance(a, list) else str(a))),
    "oneof": (1, 16, lambda *vs: next((v for v in vs if _present(v)), None)),
    "split": (2, 2, lambda v, sep: [p.strip() for p in str(v).split(str(sep)) if p.strip()] if _present(v) else None),
}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # -- token helpers --
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def upper(self) -> str:
        return self.tok.text.upper() if self.tok.kind == "ident" else ""

    def take(self) -> Token:
        tok = self.tok
        self.i += 1
        return tok

    def accept(self, word: str) -> bool:
        if self.upper() == word or (self.tok.kind == "op" and self.tok.text == word):
            self.i += 1
            return True
        return False

    def expect(self, word: str, what: str) -> None:
        if not self.accept(word):
            raise self.error(f"expected {what}")

    def error(self, message: str) -> LQLError:
        found = repr(self.tok.text) if self.tok.kind != "eof" else "the end of the query"
        return LQLError(f"{message} at {_where(self.text, self.tok.pos)} (found {found})")

    def name(self, what: str) -> str:
        tok = self.tok
        if tok.kind == "bq":
            self.i += 1
            return tok.text[1:-1]
        if tok.kind == "ident" and tok.text.upper() not in _KEYWORDS:
            self.i += 1
            return tok.text
        if tok.kind == "str":
            self.i += 1
            return _unquote(tok.text)
        raise self.error(f"expected {what}")

    # -- expressions --
    def expr(self) -> Expr:
        left = self.and_expr()
        while self.accept("OR"):
            right = self.and_expr()
            left = Expr(_either(left.fn, right.fn), f"{left.text} OR {right.text}")
        return left

    def and_expr(self) -> Expr:
        left = self.not_expr()
        while self.accept("AND"):
            right = self.not_expr()
            left = Expr(_both(left.fn, right.fn), f"{left.text} AND {right.text}")
        return left

    def not_expr(self) -> Expr:
        if self.accept("NOT"):
            inner = self.not_expr()
            return Expr(_negated(inner.fn), f"NOT {inner.text}")
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.primary()
        if self.tok.kind == "op" and self.tok.text in ("=", "==", "!=", ">", ">=", "<", "<="):
            op = self.take().text
            right = self.primary()
            return Expr(_compared(left.fn, right.fn, op), f"{left.text} {op} {right.text}")
        return left

    def primary(self) -> Expr:
        tok = self.tok
        if tok.kind == "str":
            self.i += 1
            value = _unquote(tok.text)
            return Expr(lambda r: value, tok.text)
        if tok.kind == "num":
            self.i += 1
            number = float(tok.text) if "." in tok.text else int(tok.text)
            return Expr(lambda r: number, tok.text)
        if self.accept("("):
            inner = self.expr()
            self.expect(")", "')' to close the parenthesis")
            return inner
        if self.upper() in ("TRUE", "FALSE"):
            self.i += 1
            flag = tok.text.upper() == "TRUE"
            return Expr(lambda r: flag, tok.text)
        if tok.kind == "ident" and self.tokens[self.i + 1].text == "(":
            return self.call()
        if tok.kind == "op" and tok.text == "*":
            self.i += 1
            return Expr(lambda r: True, "*")
        name = self.name("a field name, a literal or a function call")
        return Expr(lambda r: _lookup(r, name), name, ident=name)

    def call(self) -> Expr:
        name_tok = self.take()
        name = name_tok.text.lower()
        self.expect("(", "'('")
        args: list[Expr] = []
        if not self.accept(")"):
            while True:
                args.append(self.expr())
                if self.accept(")"):
                    break
                self.expect(",", "',' or ')' in the argument list")
        text = f"{name}({', '.join(a.text for a in args)})"
        if name in _AGGREGATES:
            raise LQLError(f"{name}() at {_where(self.text, name_tok.pos)} is an aggregate: use it only as a whole "
                           "SELECT expression, e.g. 'count(order_id) AS orders'")  # fmt: skip
        spec = ROW_FUNCTIONS.get(name)
        if spec is None:
            known = ", ".join(sorted({*ROW_FUNCTIONS, *_AGGREGATES}))
            raise LQLError(f"function {name}() at {_where(self.text, name_tok.pos)} is not supported by the "
                           f"emulator's LQL subset; supported functions: {known}")  # fmt: skip
        low, high, impl = spec
        if not low <= len(args) <= high:
            want = str(low) if low == high else f"{low} to {high}"
            raise LQLError(f"{name}() takes {want} argument(s), got {len(args)} at {_where(self.text, name_tok.pos)}")
        fns = [a.fn for a in args]
        return Expr(lambda r: impl(*(f(r) for f in fns)), text)


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


# -- queries ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """One SELECT item: the profile field ``name`` it writes, how the value is made, kept and typed."""

    name: str
    expr: Expr
    mergeop: str = "latest"
    kind: str = "string"
    guard: Expr | None = None
    shortdesc: str = ""
    longdesc: str = ""
    counts_rows: bool = False  # count(*): counts every row the query accepts

    def value(self, row: Row) -> Any:
        """The value this column takes from ``row`` (``None`` when it sets nothing)."""
        if self.guard is not None and not self.guard.fn(row):
            return None
        raw = True if self.counts_rows else self.expr.fn(row)
        if not _present(raw):
            return None
        if self.mergeop == "count":
            return 1
        if self.mergeop == "valuect":
            return {str(raw): 1}
        return coerce(raw, self.kind)


def coerce(value: Any, kind: str) -> Any:
    """``value`` as ``kind`` (``None`` when it cannot be: the field is then not set by this row)."""
    if kind == "int":
        return _to_int(value)
    if kind == "number":
        num = _number(value)
        return int(num) if num is not None and num.is_integer() else num
    if kind == "bool":
        text = str(value).strip().lower()
        return True if text in ("true", "1", "yes", "t") else False if text in ("false", "0", "no", "f") else None
    if kind == "date":
        return _to_date(value)
    if kind == "[]string":
        items = value if isinstance(value, list) else [value]
        return [str(v) for v in items if _present(v)] or None
    if isinstance(value, (list, dict)):
        return value
    return value if isinstance(value, str) else str(value) if not isinstance(value, float) else f"{value:g}"


@dataclass(frozen=True)
class Query:
    """A parsed LQL query: ``columns`` project rows of ``stream`` (those ``where`` accepts) onto ``table``."""

    text: str
    stream: str
    alias: str | None
    table: str = "user"
    by: tuple[str, ...] = ()
    columns: tuple[Column, ...] = field(default_factory=tuple)
    where: Expr | None = None

    def project(self, row: Row) -> dict[str, Any] | None:
        """``{field: value}`` this row contributes (``None`` when ``WHERE`` drops the row)."""
        if self.where is not None and not self.where.fn(row):
            return None
        out: dict[str, Any] = {}
        for column in self.columns:
            value = column.value(row)
            if value is not None:
                out[column.name] = value
        return out

    def ops(self) -> dict[str, str]:
        return {c.name: c.mergeop for c in self.columns}

    def fields_doc(self) -> dict[str, dict[str, Any]]:
        """The ``fields`` map of the Lytics query object."""
        return {
            c.name: {"as": c.name, "is_by": c.name in self.by, "type": c.kind, "mergeop": c.mergeop,
                     "shortdesc": c.shortdesc, "longdesc": c.longdesc, "identities": [c.expr.ident or c.expr.text],
                     "froms": [self.stream]}
            for c in self.columns
        }  # fmt: skip


def parse_query(text: str) -> Query:
    """Parse LQL text into a :class:`Query`; raises :class:`LQLError` saying what to fix."""
    if not isinstance(text, str) or not text.strip():
        raise LQLError("the query is empty: send LQL text such as 'SELECT email AS email FROM web INTO user BY email'")
    p = _Parser(text)
    for tok in p.tokens:
        if tok.kind == "ident" and tok.text.upper() in _UNSUPPORTED:
            raise LQLError(f"{tok.text.upper()} at {_where(text, tok.pos)} is not part of LQL's SELECT ... FROM "
                           "... INTO ... BY form (or of the emulator's subset)")  # fmt: skip
    p.expect("SELECT", "SELECT at the start of the query")
    columns = [_column(p)]
    while p.accept(","):
        if p.upper() == "FROM":
            break  # a trailing comma before FROM is tolerated, as Lytics does
        columns.append(_column(p))
    p.expect("FROM", "',' or FROM after the SELECT list")
    stream = p.name("a stream name after FROM")
    table, where, alias = "user", None, None
    by: tuple[str, ...] = ()
    seen: set[str] = set()
    while p.tok.kind != "eof" and not p.accept(";"):
        word = p.upper()
        if word in seen:
            raise p.error(f"{word} appears twice")
        seen.add(word)
        p.i += 1
        if word == "INTO":
            table = p.name("a table name after INTO").lower()
            if table != "user":
                raise LQLError(f"INTO {table}: the emulator's queries write the 'user' table only")
        elif word == "BY":
            names = [p.name("a field name after BY")]
            while p.accept("OR") or p.accept(","):
                names.append(p.name("a field name after OR"))
            by = tuple(names)
        elif word == "WHERE":
            where = p.expr()
        elif word == "ALIAS":
            alias = p.name("a query name after ALIAS")
        else:
            p.i -= 1
            raise p.error("expected INTO, BY, WHERE or ALIAS")
    if p.tok.kind != "eof":
        raise p.error("unexpected text after the end of the query")
    names = [c.name for c in columns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise LQLError(f"fields selected more than once: {', '.join(repeated)} (give each a distinct AS name)")
    missing = [b for b in by if b not in names]
    if missing:
        raise LQLError(f"BY names {', '.join(missing)}, which the SELECT list does not produce; select them with AS")
    if not by:
        raise LQLError("the query needs BY <identity field> (e.g. 'INTO user BY email') so rows can find profiles")
    return Query(text=text, stream=stream, alias=alias, table=table, by=by, columns=tuple(columns), where=where)


def _column(p: _Parser) -> Column:
    start = p.tok
    agg = None
    counts_rows = False
    if start.kind == "ident" and start.text.lower() in _AGGREGATES and p.tokens[p.i + 1].text == "(":
        agg = _AGGREGATES[start.text.lower()]
        p.i += 2
        if agg == "count" and p.tok.text == "*":
            p.i += 1
            expr, counts_rows = Expr(lambda r: True, "*"), True
        else:
            expr = p.expr()
        p.expect(")", f"')' to close {agg}(")
    else:
        expr = p.expr()
    name = expr.ident
    mergeop = agg or "latest"
    kind = _DEFAULT_KIND.get(mergeop, "string")
    guard, shortdesc, longdesc = None, "", ""
    while True:
        word = p.upper()
        if word == "AS":
            p.i += 1
            name = p.name("a field name after AS")
        elif word == "IF":
            p.i += 1
            guard = p.expr()
        elif word == "KIND":
            p.i += 1
            tok = p.take()
            kind = tok.text if tok.kind == "kindtype" else tok.text.lower()
            if kind not in KINDS:
                raise LQLError(f"KIND {tok.text} at {_where(p.text, tok.pos)} is not supported; use one of "
                               f"{', '.join(KINDS)}")  # fmt: skip
        elif word == "MERGEOP":
            p.i += 1
            tok = p.take()
            mergeop = tok.text.lower()
            if mergeop not in MERGE_OPS:
                raise LQLError(f"MERGEOP {tok.text} at {_where(p.text, tok.pos)} is not supported; use one of "
                               f"{', '.join(MERGE_OPS)}")  # fmt: skip
        elif word in ("SHORTDESC", "LONGDESC"):
            p.i += 1
            if p.tok.kind != "str":
                raise p.error(f"expected a quoted string after {word}")
            value = _unquote(p.take().text)
            shortdesc, longdesc = (value, longdesc) if word == "SHORTDESC" else (shortdesc, value)
        else:
            break
    if name is None:
        raise LQLError(f"the expression {expr.text!r} at {_where(p.text, start.pos)} needs AS <field name>")
    if mergeop == "set" and kind == "string":
        kind = "[]string"
    if mergeop in ("sum", "min", "max") and kind not in ("int", "number"):
        kind = "number"
    return Column(name, expr, mergeop, kind, guard, shortdesc, longdesc, counts_rows)


def merge_value(op: str, old: Any, new: Any, newer: bool) -> Any:
    """The field value after merging ``new`` into ``old`` with ``op`` (``newer``: the row is not older)."""
    if old is None:
        return new
    if op == "latest":
        return new if newer else old
    if op == "oldest":
        return old if newer else new
    if op in ("sum", "count"):
        total = round((_number(old) or 0) + (_number(new) or 0), 9)  # no binary-float tails such as .4100000000001
        return int(total) if total.is_integer() else total
    if op in ("min", "max"):
        a, b = _number(old), _number(new)
        if a is None or b is None:
            return new if a is None else old
        if op == "min":
            return old if a <= b else new  # the first of equals, as min() keeps it
        return old if a >= b else new
    if op == "set":
        merged = list(old) if isinstance(old, list) else [old]
        for item in new if isinstance(new, list) else [new]:
            if item not in merged:
                merged.append(item)
        return merged
    if op == "valuect":
        counts = dict(old) if isinstance(old, dict) else {}
        for key, count in new.items():
            counts[key] = counts.get(key, 0) + count
        return counts
    raise LQLError(f"unknown merge operator {op!r}")
