"""Query-parameter parsing shared by the data-plane routes (Lytics list, boolean and integer conventions)."""

from __future__ import annotations

from starlette.requests import Request

_TRUE = {"true", "1", "yes", "t", "on"}
_FALSE = {"false", "0", "no", "f", "off"}


class ParamError(ValueError):
    """A query parameter has a value the API cannot use; the message says what to send instead."""


def list_param(request: Request, name: str) -> list[str]:
    """A list parameter in any documented syntax: ``a``, ``a,b``, ``[a,b]``, ``x=a&x=b``, ``x[]=a&x[]=b``."""
    out: list[str] = []
    for raw in [*request.query_params.getlist(name), *request.query_params.getlist(f"{name}[]")]:
        text = raw.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        out.extend(part.strip().strip("\"'") for part in text.split(",") if part.strip().strip("\"'"))
    return out


def bool_param(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ParamError(f"query parameter {name!r} must be true or false, not {raw!r}")


def int_param(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ParamError(f"query parameter {name!r} must be an integer, not {raw!r}") from None


def account_of(request: Request) -> object | None:
    """The account the auth middleware attached to the request (``None`` when running without it)."""
    return getattr(request.state, "account", None)
