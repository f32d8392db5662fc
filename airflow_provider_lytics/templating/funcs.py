"""The function library: Go's built-ins plus the sprig helpers Lytics users write (``default``, ``upper``...).

Each function declares Go-like parameter types so arguments are checked the way Go's ``text/template`` checks
them: a missing field passed where a string is needed fails with "invalid value; expected string".
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from airflow_provider_lytics.templating.errors import ValueTooLarge
from airflow_provider_lytics.templating.printf import MAX_SPRINTF_CHARS, sprint, sprintf, sprintln
from airflow_provider_lytics.templating.values import MISSING, format_value, go_type, is_list, truth

# parameter kinds: "value" = Go reflect.Value (builtins see MISSING), "any" = interface{} (MISSING -> None),
# "string", "int", "bool"
ANY = "any"
VALUE = "value"
STRING = "string"
INT = "int"


class FuncError(Exception):
    """A function refused its arguments; the executor adds the function name and the position."""


@dataclass(frozen=True)
class Func:
    fn: Callable[..., Any]
    params: tuple[str, ...]
    variadic: str | None = None
    returns_error: bool = False


def coerce(value: Any, kind: str) -> Any:
    """Go's ``validateType``: convert or reject an argument for a parameter of ``kind``."""
    if kind == VALUE:
        return MISSING if value is None else value
    if kind == ANY:
        return None if value is MISSING else value
    if value is MISSING or value is None:
        raise FuncError(f"invalid value; expected {kind}")
    if kind == STRING and isinstance(value, str):
        return value
    if kind == INT and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    raise FuncError(f"wrong type for value; expected {kind}; got {go_type(value)}")


# -- comparison (Go's eq/ne/lt/le/gt/ge) ------------------------------------------------------------------
def _kind(value: Any) -> str:
    if value is MISSING or value is None:
        return "invalid"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "other"


def _describe(value: Any) -> str:
    return f"{go_type(value)} {format_value(value, False)!s}"


def go_eq(arg1: Any, *others: Any) -> bool:
    if not others:
        raise FuncError("missing argument for comparison: eq needs at least two values")
    k1 = _kind(arg1)
    for arg in others:
        k2 = _kind(arg)
        if k1 != k2:
            if k1 != "invalid" and k2 != "invalid":
                raise FuncError(
                    f"incompatible types for comparison: {_describe(arg1)} and {_describe(arg)}"
                    + (" (write the number with a decimal point, e.g. 5.0, to compare with a decimal field)"
                       if {k1, k2} == {"int", "float"} else "")
                )  # fmt: skip
            continue
        if k1 == "other":
            raise FuncError(f"non-comparable types: {go_type(arg1)} and {go_type(arg)}")
        if k1 == "invalid" or arg1 == arg:
            return True
    return False


def go_ne(arg1: Any, arg2: Any) -> bool:
    return not go_eq(arg1, arg2)


def go_lt(arg1: Any, arg2: Any) -> bool:
    k1, k2 = _kind(arg1), _kind(arg2)
    for k in (k1, k2):
        if k in ("invalid", "other"):
            raise FuncError("invalid type for comparison" + (": the value is missing" if k == "invalid" else ""))
    if k1 != k2:
        hint = " (write 5.0 rather than 5 to compare with a decimal field)" if {k1, k2} == {"int", "float"} else ""
        raise FuncError(f"incompatible types for comparison: {_describe(arg1)} and {_describe(arg2)}{hint}")
    if k1 == "bool":
        raise FuncError("invalid type for comparison: booleans cannot be ordered")
    if k1 == "string":
        return arg1.encode("utf-8", "surrogatepass") < arg2.encode("utf-8", "surrogatepass")
    return arg1 < arg2


def go_le(arg1: Any, arg2: Any) -> bool:
    return go_lt(arg1, arg2) or go_eq(arg1, arg2)


def go_gt(arg1: Any, arg2: Any) -> bool:
    return not go_le(arg1, arg2)


def go_ge(arg1: Any, arg2: Any) -> bool:
    return not go_lt(arg1, arg2)


# -- collections ------------------------------------------------------------------------------------------
def go_len(item: Any) -> int:
    if item is MISSING or item is None:
        raise FuncError("len of nil pointer: the value is missing")
    if isinstance(item, str):
        return len(item.encode("utf-8", "surrogatepass"))
    if isinstance(item, Mapping) or is_list(item):
        return len(item)
    raise FuncError(f"len of type {go_type(item)}")


def _index_arg(index: Any, cap: int) -> int:
    if index is MISSING or index is None:
        raise FuncError("cannot index slice/array with nil")
    if not isinstance(index, int) or isinstance(index, bool):
        raise FuncError(f"cannot index slice/array with type {go_type(index)}")
    if index < 0 or index > cap:
        raise FuncError(f"index out of range: {index}")
    return index


def go_index(item: Any, *indexes: Any) -> Any:
    if item is MISSING or item is None:
        raise FuncError("index of untyped nil: the value is missing")
    for index in indexes:
        if item is None or item is MISSING:
            raise FuncError("index of nil pointer")
        if isinstance(item, str):
            data = item.encode("utf-8", "surrogatepass")
            x = _index_arg(index, len(data))
            if x == len(data):
                raise FuncError(f"index out of range: {x}")
            item = data[x]
        elif is_list(item):
            x = _index_arg(index, len(item))
            if x == len(item):
                raise FuncError(f"index out of range: {x}")
            item = item[x]
        elif isinstance(item, Mapping):
            if index is MISSING or index is None:
                raise FuncError("value is nil; should be of type string")
            if not isinstance(index, str):
                raise FuncError(f"value has type {go_type(index)}; should be string")
            item = item.get(index, None)
        else:
            raise FuncError(f"can't index item of type {go_type(item)}")
    return item


def go_slice(item: Any, *indexes: Any) -> Any:
    if item is MISSING or item is None:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise FuncError("cannot 3-index slice a string")
        data = item.encode("utf-8", "surrogatepass")
    elif is_list(item):
        data = item
    else:
        raise FuncError(f"can't slice item of type {go_type(item)}")
    idx = [0, len(data)]
    for i, index in enumerate(indexes):
        x = _index_arg(index, len(data))
        if i < 2:
            idx[i] = x
        elif x < idx[1]:
            raise FuncError(f"invalid slice index: {idx[1]} > {x}")
    if idx[0] > idx[1]:
        raise FuncError(f"invalid slice index: {idx[0]} > {idx[1]}")
    part = data[idx[0] : idx[1]]
    return part.decode("utf-8", "replace") if isinstance(part, bytes) else list(part)


def go_not(arg: Any) -> bool:
    return not truth(arg)


# -- escaping ---------------------------------------------------------------------------------------------
def _eval_args(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(tuple("<no value>" if a is MISSING or a is None else a for a in args))


HTML_ESCAPES = {'"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\x00": "\ufffd"}
_HTML_RE = re.compile("[\"'&<>\x00]")
JS_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}


def go_html(*args: Any) -> str:
    return _HTML_RE.sub(lambda m: HTML_ESCAPES[m.group()], _eval_args(args))


def go_js(*args: Any) -> str:
    out = []
    for ch in _eval_args(args):
        if ch in JS_ESCAPES:
            out.append(JS_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u00{ord(ch):02X}")
        elif ord(ch) >= 0x80 and not ch.isprintable():
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def go_urlquery(*args: Any) -> str:
    return quote_plus(_eval_args(args), safe="-_.~")


def go_print(*args: Any) -> str:
    return sprint(args)


def go_printf(fmt: str, *args: Any) -> str:
    return sprintf(fmt, args)


def go_println(*args: Any) -> str:
    return sprintln(args)


# -- sprig helpers ----------------------------------------------------------------------------------------
def sprig_empty(value: Any) -> bool:
    if value is None or value is MISSING:
        return True
    if isinstance(value, (str, list, tuple, Mapping, bool, int, float)):
        return not value
    return False


def sprig_default(default: Any, *given: Any) -> Any:
    if not given or sprig_empty(given[0]):
        return default
    return given[0]


def sprig_coalesce(*values: Any) -> Any:
    for value in values:
        if not sprig_empty(value):
            return value
    return None


def _rune_map(ch: str, mapped: str) -> str:
    """Go maps case rune by rune (``unicode.ToUpper``): no multi-character results such as ß -> SS."""
    return mapped if len(mapped) == 1 else {"\u0130": "i"}.get(ch, ch)


def go_upper(text: str) -> str:
    return "".join(_rune_map(c, c.upper()) for c in text)


def go_lower(text: str) -> str:
    return "".join(_rune_map(c, c.lower()) for c in text)


def _title(text: str) -> str:
    out = []
    prev = " "
    for ch in text:
        out.append(_rune_map(ch, ch.title()) if _is_separator(prev) else ch)
        prev = ch
    return "".join(out)


def _is_separator(ch: str) -> bool:
    if ord(ch) < 0x80:
        return not (ch.isalnum() or ch == "_")
    if ch.isalpha() or ch.isdigit():
        return False
    return ch.isspace()


def _go_space(ch: str) -> bool:
    return ch in "\t\n\v\f\r \x85\xa0" or unicodedata.category(ch) == "Zs" or ch in "\u2028\u2029"


def sprig_trim(text: str) -> str:
    start, end = 0, len(text)
    while start < end and _go_space(text[start]):
        start += 1
    while end > start and _go_space(text[end - 1]):
        end -= 1
    return text[start:end]


def _strval(value: Any) -> str:
    return value if isinstance(value, str) else format_value(value, top=False)


def sprig_join(sep: str, value: Any) -> str:
    if value is None:
        return ""
    if is_list(value):
        return sep.join(_strval(v) for v in value if v is not None)
    return _strval(value)


def go_json(value: Any) -> str:
    """``encoding/json.Marshal``: sorted keys, HTML-safe escapes, Go's float formatting; "" if unencodable."""
    try:
        return "".join(_json_parts(value))
    except (ValueError, TypeError):
        return ""


def _json_float(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        raise ValueError("unsupported float")
    from airflow_provider_lytics.templating.values import format_float_shortest

    if value != 0 and (abs(value) < 1e-6 or abs(value) >= 1e21):
        text = format_float_shortest(value, "e")
        return re.sub(r"e([+-])0(\d)$", r"e\1\2", text)
    return format_float_shortest(value, "f")


def _json_string(text: str) -> str:
    body = json.dumps(text, ensure_ascii=False)
    return (body.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\\u007f", "\x7f"))  # fmt: skip


def _json_parts(value: Any):
    if value is None or value is MISSING:
        yield "null"
    elif isinstance(value, bool):
        yield "true" if value else "false"
    elif isinstance(value, int):
        yield str(value)
    elif isinstance(value, float):
        yield _json_float(value)
    elif isinstance(value, str):
        yield _json_string(value)
    elif isinstance(value, Mapping):
        yield "{"
        for i, key in enumerate(sorted(value, key=lambda k: str(k).encode())):
            if i:
                yield ","
            yield _json_string(str(key))
            yield ":"
            yield from _json_parts(value[key])
        yield "}"
    elif is_list(value):
        yield "["
        for i, item in enumerate(value):
            if i:
                yield ","
            yield from _json_parts(item)
        yield "]"
    else:
        raise TypeError(f"cannot encode {type(value).__name__}")


def _trim_suffix(suffix: str, text: str) -> str:
    return text[: -len(suffix)] if suffix and text.endswith(suffix) else text


def _strings(fn: Callable[..., Any], n: int) -> Func:
    return Func(fn, (STRING,) * n)


def _replace(old: str, new: str, src: str) -> str:
    """sprig ``replace``; refuses (before building it) a result longer than the printf limit."""
    count = len(src) + 1 if not old else src.count(old)
    if len(src) + count * (len(new) - len(old)) > MAX_SPRINTF_CHARS:
        raise ValueTooLarge(f"the result would be longer than {MAX_SPRINTF_CHARS} characters")
    return src.replace(old, new)


BUILTINS: dict[str, Func] = {
    "and": Func(lambda *a: a, (VALUE,), VALUE),  # evaluated lazily by the executor
    "or": Func(lambda *a: a, (VALUE,), VALUE),
    "not": Func(go_not, (VALUE,)),
    "eq": Func(go_eq, (VALUE,), VALUE),
    "ne": Func(go_ne, (VALUE, VALUE)),
    "lt": Func(go_lt, (VALUE, VALUE)),
    "le": Func(go_le, (VALUE, VALUE)),
    "gt": Func(go_gt, (VALUE, VALUE)),
    "ge": Func(go_ge, (VALUE, VALUE)),
    "len": Func(go_len, (VALUE,)),
    "index": Func(go_index, (VALUE,), VALUE),
    "slice": Func(go_slice, (VALUE,), VALUE),
    "print": Func(go_print, (), ANY),
    "printf": Func(go_printf, (STRING,), ANY),
    "println": Func(go_println, (), ANY),
    "html": Func(go_html, (), ANY),
    "js": Func(go_js, (), ANY),
    "urlquery": Func(go_urlquery, (), ANY),
}

SPRIG: dict[str, Func] = {
    "default": Func(sprig_default, (ANY,), ANY),
    "empty": Func(sprig_empty, (ANY,)),
    "coalesce": Func(sprig_coalesce, (), ANY),
    "upper": _strings(go_upper, 1),
    "lower": _strings(go_lower, 1),
    "title": _strings(_title, 1),
    "trim": _strings(sprig_trim, 1),
    "replace": _strings(_replace, 3),
    "contains": _strings(lambda substr, text: substr in text, 2),
    "hasPrefix": _strings(lambda prefix, text: text.startswith(prefix), 2),
    "hasSuffix": _strings(lambda suffix, text: text.endswith(suffix), 2),
    "join": Func(sprig_join, (STRING, ANY)),
    "toJson": Func(go_json, (ANY,)),
    "trimPrefix": _strings(lambda prefix, text: text[len(prefix) :] if text.startswith(prefix) else text, 2),
    "trimSuffix": _strings(_trim_suffix, 2),
    "quote": Func(lambda *a: " ".join(sprintf("%q", [_strval(v)]) for v in a if v is not None), (), ANY),
}

FUNCS: dict[str, Func] = {**BUILTINS, **SPRIG}
