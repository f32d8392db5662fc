"""FilterQL (Lytics SegmentQL) for the emulator: parse, validate, evaluate against profiles, convert to JSON AST.

``parse(text)`` tokenizes and parses the statement, then compiles the condition into Python closures once,
so ``ParsedFilter.matches(profile)`` costs a few microseconds. Evaluation rules (missing fields, lists,
string numbers, dates) are documented in :mod:`airflow_provider_lytics.emulator.filterql_eval`.

Supported: ``FILTER <expr> [FROM t] [ALIAS slug] [WITH name = "...", description = "..."]`` or a bare
expression; ``*`` / ``match_all``; ``AND(...)``, ``OR(...)``, infix AND/OR, ``NOT``; ``= == != > >= < <=``;
``EXISTS``, ``[NOT] IN``, ``[NOT] CONTAINS``, ``[NOT] LIKE``, ``[NOT] INTERSECTS``, ``[NOT] BETWEEN a AND b``;
``INCLUDE slug``; ``geodistance(f, "lat,lon", km)``; ``timewindow(f, count, days)``; ``--`` comments.
"""

from __future__ import annotations

import functools
import json
import re
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_provider_lytics.emulator import filterql_parser as ast
from airflow_provider_lytics.emulator.filterql_eval import CompiledFilter, EvalContext, compile_node
from airflow_provider_lytics.emulator.filterql_lexer import KEYWORDS, FilterQLError
from airflow_provider_lytics.emulator.filterql_values import parse_date_math

__all__ = ["FilterQLError", "ParsedFilter", "format_ast", "from_ast", "parse", "parse_date_math", "validate"]

Resolver = Callable[[str], "ParsedFilter | None"]


@dataclass(frozen=True)
class ParsedFilter:
    """A parsed, compiled FilterQL statement. Build it with :func:`parse`; instances are immutable."""

    text: str
    table: str = "user"
    alias: str | None = None
    name: str | None = None
    description: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    _statement: ast.Statement | None = field(default=None, compare=False, repr=False)
    _compiled: CompiledFilter | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self._statement is None or self._compiled is None:
            raise TypeError("create ParsedFilter objects with filterql.parse(text)")

    def matches(
        self, profile: Mapping[str, Any], *, now: datetime | None = None, include: Resolver | None = None
    ) -> bool:
        """Whether ``profile`` is in the audience. ``now`` anchors date math (default: wall clock, UTC);
        ``include`` resolves INCLUDE targets (slug or id) to ParsedFilter, None meaning unknown."""
        if profile.__class__ is not dict and not isinstance(profile, Mapping):
            raise TypeError(f"profile must be a mapping of field name to value, got {type(profile).__name__}")
        return self._compiled.evaluate(profile, EvalContext(now, include))  # type: ignore[union-attr]

    def matcher(self, *, now: datetime | None = None, include: Resolver | None = None) -> Callable[[Any], bool]:
        """A one-argument predicate for scanning many profiles with one reference time and INCLUDE cache.

        Date math is anchored to a single ``now`` for the whole scan, and each INCLUDE target is resolved
        once, which is what a consistent segment scan needs and much cheaper than ``matches`` per profile.
        The predicate keeps per-scan state: use one per scan and thread, do not share it across threads.
        """
        ctx = EvalContext(now, include)
        compiled = self._compiled
        assert compiled is not None
        if not compiled.has_include:
            root = compiled.root
            return lambda profile: root(profile, ctx)
        return lambda profile: ctx.run(compiled, profile)

    def referenced_fields(self) -> set[str]:
        """Field names used by the condition (dotted map paths as written, e.g. ``scores.momentum``)."""
        return {n.name for n in _walk(self._expr) if isinstance(n, ast.Field)}

    def includes(self) -> set[str]:
        """Slugs or ids named by INCLUDE in this filter (not followed transitively)."""
        return {n.target for n in _walk(self._expr) if isinstance(n, ast.Include)}

    def to_ast(self) -> dict[str, Any]:
        """The condition as a Lytics-style JSON AST: ``{"op", "args"}`` with ``{"ident"}``/``{"val"}``/``{"seg"}``."""
        return _to_ast(self._expr)

    @property
    def is_match_all(self) -> bool:
        """True for ``FILTER *`` / ``match_all``."""
        return isinstance(self._expr, ast.MatchAll)

    @property
    def _expr(self) -> ast.Node:
        assert self._statement is not None
        return self._statement.expr


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, ast.BoolOp):
        for arg in node.args:
            yield from _walk(arg)
    elif isinstance(node, ast.Not):
        yield from _walk(node.arg)
    elif isinstance(node, ast.Func):
        yield from node.args
    elif hasattr(node, "field"):
        yield node.field


def _val(lit: ast.Literal) -> dict[str, Any]:
    return {"val": lit.value}


def _to_ast(node: ast.Node) -> dict[str, Any]:
    if isinstance(node, ast.MatchAll):
        return {"op": "*"}
    if isinstance(node, ast.Const):
        return {"val": node.value}
    if isinstance(node, ast.BoolOp):
        return {"op": node.op, "args": [_to_ast(a) for a in node.args]}
    if isinstance(node, ast.Not):
        return {"op": "not", "args": [_to_ast(node.arg)]}
    if isinstance(node, ast.Include):
        return {"op": "include", "args": [{"seg": node.target}]}
    if isinstance(node, ast.Func):
        return {
            "op": node.name,
            "args": [{"ident": a.name} if isinstance(a, ast.Field) else _val(a) for a in node.args],
        }
    ident = {"ident": node.field.name}
    if isinstance(node, ast.Exists):
        return {"op": "exists", "args": [ident]}
    if isinstance(node, ast.Compare):
        return {"op": node.op, "args": [ident, _val(node.value)]}
    if isinstance(node, ast.InList):
        return {"op": "in", "args": [ident, *map(_val, node.values)]}
    if isinstance(node, ast.Intersects):
        return {"op": "intersects", "args": [ident, *map(_val, node.values)]}
    if isinstance(node, ast.Contains):
        return {"op": "contains", "args": [ident, _val(node.value)]}
    if isinstance(node, ast.Like):
        return {"op": "like", "args": [ident, _val(node.pattern)]}
    if isinstance(node, ast.Between):
        return {"op": "between", "args": [ident, _val(node.low), _val(node.high)]}
    raise TypeError(f"unsupported FilterQL node {type(node).__name__}")


# -- JSON AST -> FilterQL text --------------------------------------------------------------------

_PLAIN_IDENT = re.compile(r"[A-Za-z_$@][A-Za-z0-9_$@-]*(?:\.[A-Za-z0-9_$@-]+)*")
_INFIX = {"=", "!=", ">", ">=", "<", "<=", "==", "contains", "like"}
_LISTS = {"in", "intersects"}


def _fmt_ident(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise FilterQLError(f"AST ident must be a non-empty string, got {name!r}")
    if _PLAIN_IDENT.fullmatch(name) and name.split(".")[0].upper() not in KEYWORDS and name != "match_all":
        return name
    return "`" + name.replace("`", "``") + "`"


def _fmt_val(node: Any) -> str:
    if not isinstance(node, Mapping) or "val" not in node:
        raise FilterQLError(f'AST value must look like {{"val": ...}}, got {node!r}')
    v = node["val"]
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    raise FilterQLError(f"AST value must be a string, number, bool or null, got {v!r}")


def _fmt_node(node: Any) -> str:
    if not isinstance(node, Mapping):
        raise FilterQLError(f"AST node must be an object, got {node!r}")
    if "op" not in node:
        if isinstance(node.get("val"), bool):
            return "true" if node["val"] else "false"
        raise FilterQLError(f'AST node needs an "op", got {node!r}')
    op = str(node["op"]).lower()
    args = node.get("args") or []
    if not isinstance(args, list):
        raise FilterQLError(f'AST "args" must be a list, got {args!r}')

    def ident(i: int = 0) -> str:
        if len(args) <= i or not isinstance(args[i], Mapping) or "ident" not in args[i]:
            raise FilterQLError(f'AST op {op!r} needs {{"ident": ...}} as argument {i + 1}')
        return _fmt_ident(args[i]["ident"])

    def need(count: int) -> None:
        if len(args) != count:
            raise FilterQLError(f"AST op {op!r} takes {count} arguments, got {len(args)}")

    if op in ("*", "match_all"):
        return "*"
    if op in ("and", "or"):
        if not args:
            raise FilterQLError(f"AST op {op!r} needs at least one argument")
        return f"{op.upper()}(" + ", ".join(_fmt_node(a) for a in args) + ")"
    if op == "not":
        need(1)
        return f"NOT ({_fmt_node(args[0])})"
    if op == "exists":
        need(1)
        return f"EXISTS {ident()}"
    if op == "include":
        need(1)
        target = args[0].get("seg", args[0].get("val")) if isinstance(args[0], Mapping) else args[0]
        if not isinstance(target, str) or not target:
            raise FilterQLError('AST op "include" needs {"seg": "<slug or id>"}')
        return f"INCLUDE {_fmt_ident(target)}" if _PLAIN_IDENT.fullmatch(target) else f"INCLUDE {json.dumps(target)}"
    if op in _INFIX:
        need(2)
        return f"{ident()} {op.upper() if op.isalpha() else op} {_fmt_val(args[1])}"
    if op in _LISTS:
        if len(args) < 2:
            raise FilterQLError(f"AST op {op!r} needs a field and at least one value")
        return f"{ident()} {op.upper()} (" + ", ".join(_fmt_val(a) for a in args[1:]) + ")"
    if op == "between":
        need(3)
        return f"{ident()} BETWEEN {_fmt_val(args[1])} AND {_fmt_val(args[2])}"
    if op in ast.FUNCTIONS:
        need(ast.FUNCTIONS[op])
        return f"{op}({ident()}, " + ", ".join(_fmt_val(a) for a in args[1:]) + ")"
    raise FilterQLError(f"unknown AST op {node['op']!r}")


def format_ast(
    tree: Mapping[str, Any],
    *,
    table: str | None = None,
    alias: str | None = None,
    name: str | None = None,
    description: str | None = None,
) -> str:
    """Render a JSON AST (as produced by ``to_ast``) back into FilterQL text with optional clauses."""
    parts = ["FILTER", _fmt_node(tree)]
    if table:
        parts += ["FROM", _fmt_ident(table)]
    if alias:
        parts += ["ALIAS", _fmt_ident(alias)]
    props = [
        f"{key} = {json.dumps(value, ensure_ascii=False)}"
        for key, value in (("name", name), ("description", description))
        if value is not None
    ]
    if props:
        parts += ["WITH", ", ".join(props)]
    return " ".join(parts)


def from_ast(tree: Mapping[str, Any], **clauses: str | None) -> ParsedFilter:
    """Build a ParsedFilter from a JSON AST (e.g. a segment created with ``ast`` instead of ``segment_ql``)."""
    return parse(format_ast(tree, **clauses))


# -- entry points ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _parse_cached(text: str) -> ParsedFilter:
    stmt = ast.parse_statement(text)
    props = {k: tuple(v) if isinstance(v, list) else v for k, v in stmt.properties.items()}
    name, description = props.get("name"), props.get("description")
    for key, value in (("name", name), ("description", description)):
        if value is not None and not isinstance(value, str):
            raise FilterQLError(f"WITH {key} must be a string, got {value!r}", hint=f'write WITH {key} = "..."')
    label = stmt.alias or "<filter>"
    return ParsedFilter(
        text=text,
        table=stmt.table,
        alias=stmt.alias,
        name=name if isinstance(name, str) else None,
        description=description if isinstance(description, str) else None,
        properties=types.MappingProxyType(props),
        _statement=stmt,
        _compiled=CompiledFilter(
            compile_node(stmt.expr), label, any(isinstance(n, ast.Include) for n in _walk(stmt.expr))
        ),
    )


def parse(text: str) -> ParsedFilter:
    """Parse and compile FilterQL ``text``; raises FilterQLError naming the line:col of any problem."""
    if not isinstance(text, str):
        raise FilterQLError(f"expected FilterQL text (str), got {type(text).__name__}")
    return _parse_cached(text)


def validate(text: str) -> None:
    """Raise FilterQLError when ``text`` is not valid FilterQL. Syntax only: field names are not checked."""
    parse(text)
