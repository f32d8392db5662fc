"""What a Lytics endpoint is: method, path template, retry safety, argument builder and answer parser.

Each :class:`Endpoint` fixes the HTTP method, the path template, whether a repeat is harmless (``safe``) and
the parser of the answer; its builder (the function it decorates) turns the public method's arguments into
the parts that vary (path values, query, body). Read from a hook, an endpoint is a method sent through that
hook's ``request()``: plain for the sync hook, a coroutine for the async one. The endpoints themselves are in
:mod:`airflow_provider_lytics.client.catalogue`.

Pure Python, no Airflow: the scan process builds its page requests from here too.
"""

from __future__ import annotations

import functools
import inspect
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import quote

from airflow_provider_lytics.client.envelope import Envelope, entity_not_found
from airflow_provider_lytics.client.errors import LyticsNotFoundError

SCAN_PAGE_LIMIT = 100  # the documented maximum rows per scan page


def quote_path(value: str) -> str:
    """URL-encode one path segment (emails, slugs with odd characters)."""
    return quote(str(value), safe="")


@dataclass(frozen=True)
class ScanPage:
    """One page of a segment scan: member profiles, the cursor for the next page, and the size at scan start."""

    records: list[dict[str, Any]]
    next_cursor: str | None
    total: int | None


@dataclass(frozen=True)
class Request:
    """What a builder returns: the parts of one call that depend on the arguments.

    ``path_args`` fill the endpoint's path template (each value URL-encoded); ``path`` replaces the template
    for an endpoint with an alternative route (e.g. the account-wide job log); ``bulk`` overrides the
    endpoint's choice of host.
    """

    path_args: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] | None = None
    json_body: Any = None
    data: bytes | str | IO[bytes] | Iterable[bytes] | None = None
    headers: Mapping[str, str] | None = None
    path: str | None = None
    bulk: bool | None = None


@dataclass(frozen=True)
class Prepared:
    """A request ready for a hook's ``request()``: keyword arguments plus the method and path."""

    method: str
    path: str
    params: Mapping[str, Any] | None
    json_body: Any
    data: Any
    headers: Mapping[str, str] | None
    bulk: bool
    safe: bool

    def request_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``request(method, path, **kwargs)``; the API host is the default, so left out."""
        kwargs: dict[str, Any] = {"params": self.params, "json_body": self.json_body, "data": self.data,
                                  "headers": self.headers, "safe": self.safe}  # fmt: skip
        if self.bulk:
            kwargs["bulk"] = True
        return kwargs


class Endpoint:
    """One Lytics request. Read from a hook instance it is a method bound to that hook's ``request()``.

    :param build: the public method's signature and docstring (without ``self``); returns a :class:`Request`.
    :param method: HTTP method.
    :param path: path template, ``{name}`` placeholders filled from ``Request.path_args``.
    :param safe: whether repeating the request is harmless (see :mod:`airflow_provider_lytics.client.retry`).
    :param parse: turns the response envelope into the method's return value.
    :param bulk: send to the bulk host by default.
    :param none_on_404: return ``None`` instead of raising when Lytics answers 404.
    """

    def __init__(
        self,
        build: Callable[..., Request],
        *,
        method: str,
        path: str,
        safe: bool = True,
        parse: Callable[[Envelope], Any],
        bulk: bool = False,
        none_on_404: bool = False,
    ) -> None:
        self.build = build
        self.method = method
        self.path = path
        self.safe = safe
        self.parse = parse
        self.bulk = bulk
        self.none_on_404 = none_on_404
        self.name = build.__name__
        self.placeholders = frozenset(f for _, f, _, _ in string.Formatter().parse(path) if f)
        functools.update_wrapper(self, build)
        returns = inspect.signature(parse).return_annotation
        self.__signature__ = inspect.signature(build).replace(return_annotation=returns)

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<Lytics endpoint {self.name}: {self.method} {self.path}{'' if self.safe else ' (unsafe)'}>"

    def prepare(self, *args: Any, **kwargs: Any) -> Prepared:
        """The request one call sends (validates the arguments)."""
        req = self.build(*args, **kwargs)
        if req.path is not None:
            path = req.path
        else:
            missing = self.placeholders - set(req.path_args)
            if missing:
                raise TypeError(f"{self.name}: no value for path placeholder(s) {sorted(missing)}")
            path = self.path.format_map({k: quote_path(v) for k, v in req.path_args.items()})
        return Prepared(
            method=self.method,
            path=path,
            params=req.params,
            json_body=req.json_body,
            data=req.data,
            headers=req.headers,
            bulk=self.bulk if req.bulk is None else req.bulk,
            safe=self.safe,
        )

    def call(self, request: Callable[..., Envelope], *args: Any, **kwargs: Any) -> Any:
        """Send through a synchronous ``request`` and parse the answer."""
        prepared = self.prepare(*args, **kwargs)
        try:
            envelope = request(prepared.method, prepared.path, **prepared.request_kwargs())
        except LyticsNotFoundError:
            if self.none_on_404:
                return None
            raise
        return self.parse(envelope)

    async def acall(self, request: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Send through an asynchronous ``request`` and parse the answer."""
        prepared = self.prepare(*args, **kwargs)
        try:
            envelope = await request(prepared.method, prepared.path, **prepared.request_kwargs())
        except LyticsNotFoundError:
            if self.none_on_404:
                return None
            raise
        return self.parse(envelope)

    def __get__(self, hook: Any, owner: type | None = None) -> Any:
        if hook is None:
            return self
        endpoint = self
        if inspect.iscoroutinefunction(hook.request):

            async def bound_async(*args: Any, **kwargs: Any) -> Any:
                return await endpoint.acall(hook.request, *args, **kwargs)

            bound: Callable[..., Any] = bound_async
        else:

            def bound_sync(*args: Any, **kwargs: Any) -> Any:
                return endpoint.call(hook.request, *args, **kwargs)

            bound = bound_sync
        bound.__name__ = self.name
        bound.__qualname__ = f"{type(hook).__name__}.{self.name}"
        bound.__doc__ = self.__doc__
        bound.__wrapped__ = self.build  # type: ignore[attr-defined]
        bound.__signature__ = self.__signature__  # type: ignore[attr-defined]
        return bound

    def __call__(self, hook: Any, *args: Any, **kwargs: Any) -> Any:
        """``LyticsHook.get_job(hook, job_id)``: the unbound form works as for a plain method."""
        return self.__get__(hook, type(hook))(*args, **kwargs)


def endpoint(
    method: str,
    path: str,
    *,
    parse: Callable[[Envelope], Any],
    safe: bool = True,
    bulk: bool = False,
    none_on_404: bool = False,
) -> Callable[[Callable[..., Request]], Endpoint]:
    """Decorator: make a builder function an :class:`Endpoint` of the catalogue."""

    def wrap(build: Callable[..., Request]) -> Endpoint:
        return Endpoint(build, method=method, path=path, safe=safe, parse=parse, bulk=bulk, none_on_404=none_on_404)

    return wrap


# -- parsers ----------------------------------------------------------------------------------------------------
def data(env: Envelope) -> Any:
    """The envelope's ``data`` as it came."""
    return env.data


def data_list(env: Envelope) -> list[dict[str, Any]]:
    """``data``, or an empty list when Lytics sent none."""
    return env.data or []


def data_dict(env: Envelope) -> dict[str, Any]:
    """``data``, or an empty dict when Lytics sent none."""
    return env.data or {}


def nothing(env: Envelope) -> None:
    """For calls whose answer carries nothing the caller needs (deletes, validations)."""
    return None


def size(env: Envelope) -> int:
    """The ``size`` of a segment-size answer, as an int (Lytics sends it as a float)."""
    return int(float((env.data or {}).get("size") or 0))


def first_or_dict(env: Envelope) -> dict[str, Any]:
    """The first item of a list ``data`` (the LQL upsert answers a list), else ``data`` or ``{}``."""
    found = env.data
    return found[0] if isinstance(found, list) and found else found or {}


def message_count(env: Envelope) -> int:
    """How many items Lytics stored (``message_count``)."""
    return int((env.data or {}).get("message_count") or 0)


def profile(env: Envelope) -> dict[str, Any] | None:
    """The entity, or ``None`` for the entity API's 200-"Not Found" answer."""
    return None if entity_not_found(env) else env.data


def profile_and_meta(env: Envelope) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """``(entity or None, meta)``."""
    return profile(env), dict(env.meta)


def scan_page_of(env: Envelope) -> ScanPage:
    """A scan page: its rows, the cursor to the next page and the audience size."""
    records = env.data if isinstance(env.data, list) else []
    return ScanPage(records=records, next_cursor=env.next_cursor, total=env.total)


def stored_and_created(env: Envelope) -> tuple[dict[str, Any], bool]:
    """An upsert's answer: the stored object and whether it was created (HTTP 201) rather than updated."""
    return env.data or {}, env.http_status == 201


def documents(env: Envelope) -> list[dict[str, Any]]:
    """The documents of a content lookup (``data.urls``; a plain list is taken as it is)."""
    found = env.data or {}
    return list(found.get("urls") or []) if isinstance(found, Mapping) else list(found)


# -- argument helpers -----------------------------------------------------------------------------------------
def flag(value: bool) -> str:
    """A query-string boolean."""
    return "true" if value else "false"


def ids_param(ids: Iterable[str]) -> str:
    """A comma-separated id list."""
    return ",".join(str(i) for i in ids)
