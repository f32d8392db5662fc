"""Compile a FilterQL syntax tree into nested Python closures for fast per-profile evaluation.

Semantics (shared by every operator):

* A field is *missing* when absent, ``None``, ``""``, ``[]`` or ``{}``. Missing fields never satisfy a
  comparison, and that includes ``!=``: ``f != "x"`` means "f has a value and it is not x". Use
  ``NOT f = "x"`` to also match profiles without ``f``. ``f = null`` is ``NOT EXISTS f``; ``f != null`` is
  ``EXISTS f``.
* Multi-value (list) fields match when any element matches (``!=``: when no element equals the value).
* Values are type tolerant: ``"83"`` equals ``83``; numeric strings order numerically; date literals
  (RFC3339/ISO, MM/DD/YYYY, ``"now-30d"`` date math) compare against ISO strings, datetimes and epoch
  seconds or milliseconds (numbers or numeric strings, told apart by magnitude).
* ``=``/``CONTAINS`` are case-sensitive; ``LIKE`` is case-insensitive with ``*`` (or ``%``) as wildcard.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from airflow_provider_lytics.emulator import filterql_parser as ast
from airflow_provider_lytics.emulator.clock import current_datetime
from airflow_provider_lytics.emulator.filterql_lexer import FilterQLError
from airflow_provider_lytics.emulator.filterql_values import (
    _NUM_RE,
    as_number,
    compile_date_math,
    epoch_to_seconds,
    is_date_math,
    looks_like_date,
    parse_datetime,
    to_timestamp,
)

__all__ = ["CompiledFilter", "EvalContext", "compile_node"]

UTC = timezone.utc
MAX_INCLUDE_DEPTH = 64
Pred = Callable[[Any, "EvalContext"], bool]
NodeFn = Callable[[Mapping[str, Any], "EvalContext"], bool]
_ORDER_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_FALSY_PRESENT = frozenset({int, float, bool})
_SEQUENCES = frozenset({list, tuple, set, frozenset})


class CompiledFilter:
    """The executable form of a filter: its root closure, a display name for INCLUDE errors and whether
    it uses INCLUDE at all (filters without INCLUDE skip the cycle bookkeeping)."""

    __slots__ = ("has_include", "name", "root")

    def __init__(self, root: NodeFn, name: str, has_include: bool) -> None:
        self.root = root
        self.name = name
        self.has_include = has_include

    def evaluate(self, profile: Mapping[str, Any], ctx: EvalContext) -> bool:
        """Evaluate for one profile, tracking the INCLUDE stack only when this filter can include others."""
        if self.has_include:
            return ctx.run(self, profile)
        return self.root(profile, ctx)


class EvalContext:
    """Per-``matches()`` state: the reference time, the INCLUDE resolver and the INCLUDE stack."""

    __slots__ = ("_now", "active", "include", "resolved", "stack")

    def __init__(self, now: datetime | None, include: Callable[[str], Any] | None) -> None:
        if now is not None and now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        self._now = now
        self.include = include
        # INCLUDE bookkeeping is allocated on first use: most filters never need it.
        self.resolved: dict[str, CompiledFilter] | None = None
        self.active: set[int] | None = None
        self.stack: list[str] = []

    @property
    def now(self) -> datetime:
        """The reference time; the clock (UTC) is read once per evaluation when none was given."""
        if self._now is None:
            self._now = current_datetime()  # the serving emulator's clock (the wall clock outside a request)
        return self._now

    def run(self, compiled: CompiledFilter, profile: Mapping[str, Any]) -> bool:
        key = id(compiled)
        if self.active is None:
            self.active = set()
        if key in self.active:
            chain = " -> ".join([*self.stack, compiled.name])
            raise FilterQLError(
                f"INCLUDE cycle detected: {chain}", hint="a segment must not include itself, directly or indirectly"
            )
        if len(self.stack) >= MAX_INCLUDE_DEPTH:
            raise FilterQLError(f"INCLUDE nesting deeper than {MAX_INCLUDE_DEPTH} segments: {' -> '.join(self.stack)}")
        self.active.add(key)
        self.stack.append(compiled.name)
        try:
            return compiled.root(profile, self)
        finally:
            self.stack.pop()
            self.active.discard(key)

    def run_include(self, target: str, profile: Mapping[str, Any], line: int, col: int) -> bool:
        if self.resolved is None:
            self.resolved = {}
        compiled = self.resolved.get(target)
        if compiled is None:
            found = self.include(target) if self.include is not None else None
            if found is None:
                why = "" if self.include is not None else " (no segment resolver was given)"
                raise FilterQLError(
                    f"INCLUDE of unknown segment {target!r}{why}",
                    line=line,
                    col=col,
                    hint="INCLUDE needs the slug or id of an existing segment",
                )
            compiled = getattr(found, "_compiled", None)
            if not isinstance(compiled, CompiledFilter):
                raise FilterQLError(
                    f"segment resolver returned {type(found).__name__} for {target!r}, expected a ParsedFilter"
                )
            self.resolved[target] = compiled
        return self.run(compiled, profile)


# -- field access ----------------------------------------------------------------------------------


def make_getter(parts: tuple[str, ...]) -> Callable[[Mapping[str, Any]], Any]:
    """Build a value reader for a field path; dotted names try the flat key first, then nested maps."""
    if len(parts) == 1 and "." not in parts[0]:
        key = parts[0]
        return lambda p: p.get(key)
    flat = ".".join(parts)
    candidates: list[tuple[str, ...]] = []
    for path in (parts, tuple(flat.split(".", 1)), tuple(flat.split("."))):
        if len(path) > 1 and path not in candidates:
            candidates.append(path)

    def get(p: Mapping[str, Any]) -> Any:
        v = p.get(flat)
        if v is not None:
            return v
        for path in candidates:
            cur: Any = p
            for k in path:
                if not isinstance(cur, Mapping):
                    cur = None
                    break
                cur = cur.get(k)
                if cur is None:
                    break
            if cur is not None:
                return cur
        return None

    return get


def _missing(v: Any) -> bool:
    return v is None or (not v and v.__class__ not in _FALSY_PRESENT)


def _any(get: Callable[[Mapping[str, Any]], Any], pred: Pred) -> NodeFn:
    """Node that reads a field and applies ``pred`` to it, or to each element of a multi-value field."""

    def node(p: Mapping[str, Any], ctx: EvalContext) -> bool:
        v = get(p)
        if not v and (v is None or v.__class__ not in _FALSY_PRESENT):
            return False
        if v.__class__ in _SEQUENCES:
            for x in v:  # noqa: SIM110 - explicit loop is measurably faster than any() on the hot path
                if pred(x, ctx):
                    return True
            return False
        return pred(v, ctx)

    return node


# -- literal classification ------------------------------------------------------------------------


def _literal_text(lit: ast.Literal) -> str:
    if lit.kind == "bool":
        return "true" if lit.value else "false"
    if lit.kind == "number" and isinstance(lit.value, float) and lit.value.is_integer():
        return str(int(lit.value))
    return str(lit.value)


def _time_literal(lit: ast.Literal) -> Callable[[EvalContext], float] | None:
    """For date literals return ctx -> POSIX seconds (date math re-resolved per reference time); else None."""
    if lit.kind != "string":
        return None
    text = lit.value.strip()
    if is_date_math(text):
        try:
            fn = compile_date_math(text)
        except FilterQLError as exc:
            raise FilterQLError(exc.reason, line=lit.line, col=lit.col, hint=exc.hint) from None
        memo: list[tuple[Any, float]] = [(None, 0.0)]

        def resolve(ctx: EvalContext) -> float:
            now = ctx.now
            cached = memo[0]
            if cached[0] is now:
                return cached[1]
            value = fn(now)
            memo[0] = (now, value)
            return value

        return resolve
    if looks_like_date(text):
        dt = parse_datetime(text)
        if dt is None:
            raise FilterQLError(
                f"invalid date {lit.value!r}",
                line=lit.line,
                col=lit.col,
                hint='use RFC3339, e.g. "2024-05-01T12:00:00Z"',
            )
        ts = dt.timestamp()
        return lambda ctx: ts
    return None


# -- scalar predicates -----------------------------------------------------------------------------


def _eq_pred(lit: ast.Literal) -> Pred:
    """Type-tolerant scalar equality against one literal."""
    if lit.kind == "bool":
        want = bool(lit.value)
        text = "true" if want else "false"

        def eq_bool(x: Any, ctx: EvalContext) -> bool:
            c = x.__class__
            if c is bool:
                return x is want
            return c is str and x.lower() == text

        return eq_bool
    timefn = _time_literal(lit)
    if timefn is not None:
        raw = lit.value

        def eq_time(x: Any, ctx: EvalContext) -> bool:
            if x == raw:
                return True
            t = to_timestamp(x)
            return t is not None and t == timefn(ctx)

        return eq_time
    num = as_number(lit.value)
    text = _literal_text(lit)
    if num is not None:

        def eq_num(x: Any, ctx: EvalContext) -> bool:
            c = x.__class__
            if c is int or c is float:
                return x == num
            if c is str:
                return x == text or (_NUM_RE.fullmatch(x) is not None and float(x) == num)
            return False

        return eq_num

    lowered = text.lower()

    def eq_str(x: Any, ctx: EvalContext) -> bool:
        c = x.__class__
        if c is str:
            return x == text
        if c is bool:
            return lowered == ("true" if x else "false")
        return False

    return eq_str


def _order_pred(op: str, lit: ast.Literal) -> Pred:
    """Scalar ``> >= < <=`` against a number, date, date-math or string literal."""
    cmp = _ORDER_OPS[op]
    if lit.kind in ("bool", "null"):
        raise FilterQLError(
            f"operator {op} cannot compare with {_literal_text(lit) if lit.kind == 'bool' else 'null'}",
            line=lit.line,
            col=lit.col,
            hint="order comparisons need a number, a date or a string",
        )
    timefn = _time_literal(lit)
    if timefn is not None:

        def order_time(x: Any, ctx: EvalContext) -> bool:
            t = to_timestamp(x)
            return t is not None and cmp(t, timefn(ctx))

        return order_time
    num = as_number(lit.value)
    if num is not None:
        as_epoch = epoch_to_seconds(num)

        def order_num(x: Any, ctx: EvalContext) -> bool:
            c = x.__class__
            if c is int or c is float:
                return cmp(x, num)
            if c is str:
                if _NUM_RE.fullmatch(x):
                    return cmp(float(x), num)
                dt = parse_datetime(x)
                return dt is not None and cmp(dt.timestamp(), as_epoch)
            if isinstance(x, datetime):
                t = to_timestamp(x)
                return t is not None and cmp(t, as_epoch)
            return False

        return order_num
    text = str(lit.value)

    def order_str(x: Any, ctx: EvalContext) -> bool:
        return x.__class__ is str and cmp(x, text)

    return order_str


def _member_pred(values: tuple[ast.Literal, ...], what: str) -> Pred:
    """Scalar membership in a literal set (IN / INTERSECTS), type tolerant like ``=``."""
    strings: set[str] = set()
    numbers: set[float] = set()
    bools: set[bool] = set()
    for lit in values:
        if lit.kind == "null":
            raise FilterQLError(
                f"null is not allowed in a {what} list", line=lit.line, col=lit.col, hint="use NOT EXISTS field"
            )
        if lit.kind == "bool":
            bools.add(bool(lit.value))
            strings.add(_literal_text(lit))
            continue
        strings.add(lit.value if lit.kind == "string" else _literal_text(lit))
        num = as_number(lit.value)
        if num is not None:
            numbers.add(float(num))
        elif lit.kind == "string" and lit.value.lower() in ("true", "false"):
            bools.add(lit.value.lower() == "true")

    def member(x: Any, ctx: EvalContext) -> bool:
        c = x.__class__
        if c is str:
            return x in strings or (bool(numbers) and _NUM_RE.fullmatch(x) is not None and float(x) in numbers)
        if c is int or c is float:
            return x in numbers
        if c is bool:
            return x in bools
        return False

    return member


def _like_matcher(pattern: str) -> Callable[[str], bool]:
    """Case-insensitive whole-string wildcard matcher; ``*`` and ``%`` match any run of characters."""
    pat = pattern.lower().replace("%", "*")
    core = pat.strip("*")
    if "*" not in core:
        if pat == core:
            return lambda s: s == core
        if not core:
            return lambda s: True
        starts, ends = pat.startswith("*"), pat.endswith("*")
        if starts and ends:
            return lambda s: core in s
        if ends:
            return lambda s: s.startswith(core)
        return lambda s: s.endswith(core)
    return _glob_matcher(pat.split("*"))


def _glob_matcher(pieces: list[str]) -> Callable[[str], bool]:
    """Whole-string match of ``pieces[0] * pieces[1] * ... * pieces[-1]`` without backtracking.

    The first piece is a prefix, the last a suffix, and each middle piece is taken at its leftmost place after
    the previous one: leftmost is always right for ``*``-only patterns (any later match leaves less room), so the
    cost is one left-to-right pass (``str.find`` per piece), not the exponential backtracking of a regex.
    """
    head, tail = pieces[0], pieces[-1]
    middle = [p for p in pieces[1:-1] if p]
    least = len(head) + len(tail)

    def match(s: str) -> bool:
        if len(s) < least or not s.startswith(head) or not s.endswith(tail):
            return False
        pos, end = len(head), len(s) - len(tail)
        for piece in middle:
            found = s.find(piece, pos, end)
            if found < 0:
                return False
            pos = found + len(piece)
        return True

    return match


def _like_pred(lit: ast.Literal) -> Pred:
    match = _like_matcher(str(lit.value))

    def like(x: Any, ctx: EvalContext) -> bool:
        c = x.__class__
        if c is str:
            return match(x.lower())
        if c is bool:
            return match("true" if x else "false")
        if c is int or c is float:
            return match(str(x).lower())
        return False

    return like


# -- node compilers --------------------------------------------------------------------------------


def _compare(node: ast.Compare) -> NodeFn:
    get = make_getter(node.field.parts)
    lit = node.value
    if lit.kind == "null":
        if node.op not in ("=", "!="):
            raise FilterQLError(
                f"operator {node.op} cannot compare with null", line=lit.line, col=lit.col, hint="use EXISTS"
            )
        want_present = node.op == "!="
        return lambda p, ctx: _missing(get(p)) is not want_present
    if node.op == "=":
        return _any(get, _eq_pred(lit))
    if node.op == "!=":
        eq = _eq_pred(lit)
        has_equal = _any(get, eq)

        def not_equal(p: Mapping[str, Any], ctx: EvalContext) -> bool:
            return not _missing(get(p)) and not has_equal(p, ctx)

        return not_equal
    return _any(get, _order_pred(node.op, lit))


def _between(node: ast.Between) -> NodeFn:
    low = _order_pred(">=", node.low)
    high = _order_pred("<=", node.high)
    return _any(make_getter(node.field.parts), lambda x, ctx: low(x, ctx) and high(x, ctx))


def _contains(node: ast.Contains) -> NodeFn:
    get = make_getter(node.field.parts)
    lit = node.value
    if lit.kind == "null":
        raise FilterQLError("CONTAINS cannot look for null", line=lit.line, col=lit.col, hint="use EXISTS")
    text = lit.value if lit.kind == "string" else _literal_text(lit)
    eq = _eq_pred(lit)

    def contains(p: Mapping[str, Any], ctx: EvalContext) -> bool:
        v = get(p)
        c = v.__class__
        if c is str:
            return text in v
        if c in _SEQUENCES:
            for x in v:  # noqa: SIM110 - explicit loop is measurably faster than any() on the hot path
                if eq(x, ctx):
                    return True
            return False
        if isinstance(v, Mapping):
            return text in v
        return v is not None and eq(v, ctx)

    return contains


def _parse_point(value: Any) -> tuple[float, float] | None:
    """A (lat, lon) pair from "lat,lon", {"lat":..,"lon":..} or [lat, lon]; None when not a point."""
    try:
        if isinstance(value, str):
            lat_text, sep, lon_text = value.partition(",")
            return (float(lat_text), float(lon_text)) if sep else None
        if isinstance(value, Mapping):
            lat = value.get("lat", value.get("latitude"))
            lon = value.get("lon", value.get("lng", value.get("longitude")))
            return None if lat is None or lon is None else (float(lat), float(lon))
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(as_number(v) is not None for v in value):
            return float(value[0]), float(value[1])
    except (TypeError, ValueError):
        return None
    return None


def _haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(h)))


def _function(node: ast.Func) -> NodeFn:
    fld = node.args[0]
    assert isinstance(fld, ast.Field)
    get = make_getter(fld.parts)
    lits = [a for a in node.args[1:] if isinstance(a, ast.Literal)]
    if node.name == "geodistance":
        centre = _parse_point(lits[0].value)
        if centre is None or not (-90 <= centre[0] <= 90 and -180 <= centre[1] <= 180):
            raise FilterQLError(
                f"invalid geodistance centre {lits[0].value!r}", line=node.line, col=node.col, hint='use "lat,lon"'
            )
        radius = float(lits[1].value)

        def near(p: Mapping[str, Any], ctx: EvalContext) -> bool:
            v = get(p)
            point = _parse_point(v)
            if point is not None:
                return _haversine_km(point, centre) <= radius
            if v.__class__ in _SEQUENCES:
                return any((q := _parse_point(x)) is not None and _haversine_km(q, centre) <= radius for x in v)
            return False

        return near
    # timewindow(field, count, days): at least `count` timestamps of the field fall within the last `days` days.
    count, window = float(lits[0].value), float(lits[1].value) * 86400.0

    def in_window(p: Mapping[str, Any], ctx: EvalContext) -> bool:
        v = get(p)
        if _missing(v):
            return False
        items = v.values() if isinstance(v, Mapping) else v if v.__class__ in _SEQUENCES else (v,)
        now = ctx.now.timestamp()
        hits = 0
        for x in items:
            t = to_timestamp(x)
            if t is not None and now - window <= t <= now:
                hits += 1
        return hits >= count

    return in_window


def _bool(node: ast.BoolOp) -> NodeFn:
    fns = [compile_node(a) for a in node.args]
    if node.op == "and":
        if len(fns) == 2:
            a, b = fns
            return lambda p, ctx: a(p, ctx) and b(p, ctx)
        return lambda p, ctx: all(f(p, ctx) for f in fns)
    if len(fns) == 2:
        a, b = fns
        return lambda p, ctx: a(p, ctx) or b(p, ctx)
    return lambda p, ctx: any(f(p, ctx) for f in fns)


def compile_node(node: ast.Node) -> NodeFn:
    """Compile one syntax-tree node (and its children) into a ``(profile, ctx) -> bool`` closure."""
    if isinstance(node, ast.Compare):
        return _compare(node)
    if isinstance(node, ast.BoolOp):
        return _bool(node)
    if isinstance(node, ast.Not):
        inner = compile_node(node.arg)
        return lambda p, ctx: not inner(p, ctx)
    if isinstance(node, ast.Exists):
        get = make_getter(node.field.parts)
        return lambda p, ctx: not _missing(get(p))
    if isinstance(node, (ast.InList, ast.Intersects)):
        what = "IN" if isinstance(node, ast.InList) else "INTERSECTS"
        return _any(make_getter(node.field.parts), _member_pred(node.values, what))
    if isinstance(node, ast.Contains):
        return _contains(node)
    if isinstance(node, ast.Like):
        return _any(make_getter(node.field.parts), _like_pred(node.pattern))
    if isinstance(node, ast.Between):
        return _between(node)
    if isinstance(node, ast.Include):
        target, line, col = node.target, node.line, node.col
        return lambda p, ctx: ctx.run_include(target, p, line, col)
    if isinstance(node, ast.Func):
        return _function(node)
    if isinstance(node, ast.MatchAll):
        return lambda p, ctx: True
    if isinstance(node, ast.Const):
        value = node.value
        return lambda p, ctx: value
    raise TypeError(f"unsupported FilterQL node {type(node).__name__}")
