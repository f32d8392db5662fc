"""HTTP enrichers: an Airflow ``http`` connection plus a request template and a response mapping.

:class:`HttpCaller` owns the transport (one ``requests`` session per worker thread, auth, timeouts) and turns
answers into outcomes: 2xx is data, ``not_found_statuses`` is "not found", 408/425/429/5xx and network errors
are :class:`TransientEnrichmentError` (retried by the runner, ``Retry-After`` honoured), other 4xx are
:class:`PermanentEnrichmentError`. Reasons name the URL without its query string and never carry credentials.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_lytics.client.retry import parse_retry_after
from airflow_provider_lytics.enrichment.base import (
    Enricher,
    EnrichmentConfigError,
    EnrichmentResult,
    Identifiers,
    PermanentEnrichmentError,
    TransientEnrichmentError,
)
from airflow_provider_lytics.enrichment.mapping import extract_path, select_fields
from airflow_provider_lytics.enrichment.request_template import (
    DERIVED,
    placeholders,
    render_text,
    render_value,
    template_values,
)
from airflow_provider_lytics.hooks.base import mask

if TYPE_CHECKING:
    import requests

    from airflow_provider_lytics.io.webhook import WebhookSettings

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
METHODS = ("GET", "POST", "PUT", "PATCH")


class HttpCaller:
    """Sends requests to one third-party base URL taken from an Airflow ``http`` connection.

    Auth: a connection login gives HTTP basic auth; a password without login is sent as
    ``<token_header>: <token_prefix><password>`` (``Authorization: Bearer ...`` by default). Connection extras
    become headers (``timeout`` and ``verify`` configure the request instead).
    """

    def __init__(
        self,
        http_conn_id: str,
        *,
        token_header: str = "Authorization",
        token_prefix: str = "Bearer ",
        not_found_statuses: Sequence[int] = (404,),
        pending_statuses: Sequence[int] = (202,),
        timeout: float | None = None,
    ) -> None:
        self.http_conn_id = http_conn_id
        self.token_header = token_header
        self.token_prefix = token_prefix
        self.not_found_statuses = frozenset(not_found_statuses)
        self.pending_statuses = frozenset(pending_statuses)
        self.timeout = timeout
        self._settings: WebhookSettings | None = None
        self._token: str | None = None
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """Copies (Airflow copies operators) share no sessions, lock or thread-local state with the original."""
        state = self.__dict__.copy()
        state.update(_local=None, _sessions=[], _lock=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()
        self._lock = threading.Lock()

    def open(self) -> None:
        """Read the connection once (and register its secrets with Airflow's masker)."""
        if self._settings is not None:
            return
        from airflow.providers.common.compat.sdk import BaseHook

        from airflow_provider_lytics.io.webhook import SENSITIVE_HEADERS, settings_from_connection

        conn = BaseHook.get_connection(self.http_conn_id)
        settings = settings_from_connection(conn)
        if conn.password:
            mask(conn.password)
        for name, value in settings.headers.items():
            if name.lower() in SENSITIVE_HEADERS:
                mask(value)
        self._token = conn.password if (conn.password and not conn.login) else None
        self._settings = settings

    @property
    def settings(self) -> WebhookSettings:
        if self._settings is None:
            self.open()
        return self._settings  # type: ignore[return-value]

    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = requests.Session()
            session.headers.update({"Accept": "application/json", **self.settings.headers})
            if self.settings.auth:
                session.auth = self.settings.auth
            elif self._token:
                session.headers[self.token_header] = f"{self.token_prefix}{self._token}"
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    def url(self, path: str) -> str:
        base = self.settings.url.rstrip("/")
        return base + ("/" + path.lstrip("/") if path else "")

    def call(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json_body: Any = None
    ) -> Any | None:
        """One request; the parsed JSON body, ``None`` for a not-found status, or a raised enrichment error."""
        import requests

        url = self.url(path)
        where = f"{method} {_safe(url)}"
        try:
            response = self.session().request(
                method, url, params=params, json=json_body,
                timeout=self.timeout or self.settings.timeout, verify=self.settings.verify,
            )  # fmt: skip
        except requests.Timeout:
            raise TransientEnrichmentError(f"{where} timed out") from None
        except requests.RequestException as err:
            raise TransientEnrichmentError(f"{where} failed: {type(err).__name__}") from None
        status = response.status_code
        if status in self.not_found_statuses:
            return None
        if status in self.pending_statuses:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise TransientEnrichmentError(f"{where}: HTTP {status}, lookup queued", retry_after=retry_after,
                                           status=status)  # fmt: skip
        if 200 <= status < 300:
            try:
                return response.json() if response.content else {}
            except ValueError:
                raise PermanentEnrichmentError(
                    f"{where}: HTTP {status} but the body is not JSON: {_excerpt(response.text)}", status=status
                ) from None
        reason = f"{where}: HTTP {status} {_excerpt(response.text)}".rstrip()
        if status in TRANSIENT_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise TransientEnrichmentError(reason, retry_after=retry_after, status=status)
        if status in (401, 403):
            reason += " (check the credentials of connection " + repr(self.http_conn_id) + ")"
        raise PermanentEnrichmentError(reason, status=status)


class HttpEnricher(Enricher):
    """Call any JSON API from a request template, per user or in batches.

    :param http_conn_id: Airflow ``http`` connection with the API base URL and credentials.
    :param method: GET, POST, PUT or PATCH.
    :param endpoint: path template, e.g. ``"/v2/people/find"`` or ``"/users/{user_id}"`` (values URL-encoded).
    :param params: query-string template, e.g. ``{"email": "{email}"}``.
    :param body: JSON body template for one user, e.g. ``{"email": "{email}", "include": ["company"]}``.
    :param batch_size: users per request. Above 1, ``body`` is rendered per user and sent as a list, or as
        ``{batch_key: [...]}``; results come from the list at ``results_path``, matched to users by the value at
        ``match_path`` (compared with identifier ``match_field``) or else by position.
    :param response_path: dotted path to the data for one user inside the (per-user or per-item) response.
    :param fields: output field names mapped to dotted paths in that data; ``None`` keeps everything, flattened.
    :param error_path: in batch mode, a per-item path whose truthy value marks that user as failed.
    :param not_found_statuses: HTTP statuses meaning "no such user" (per-user mode).
    """

    def __init__(
        self,
        http_conn_id: str,
        *,
        name: str = "http",
        method: str = "GET",
        endpoint: str = "",
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        batch_size: int = 1,
        batch_key: str | None = None,
        results_path: str | None = None,
        match_path: str | None = None,
        match_field: str | None = None,
        response_path: str | None = None,
        fields: Mapping[str, str] | None = None,
        error_path: str | None = None,
        not_found_statuses: Sequence[int] = (404,),
        token_header: str = "Authorization",
        token_prefix: str = "Bearer ",
        timeout: float | None = None,
    ) -> None:
        method = method.upper()
        if method not in METHODS:
            raise EnrichmentConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if batch_size < 1:
            raise EnrichmentConfigError(f"batch_size must be at least 1, got {batch_size}")
        if batch_size > 1 and method == "GET":
            raise EnrichmentConfigError("batch_size > 1 sends users in a request body: use method POST (or PUT)")
        if batch_size > 1 and body is None:
            raise EnrichmentConfigError("batch mode needs body: the JSON template of one user's item")
        if batch_size > 1 and bool(match_path) != bool(match_field):
            raise EnrichmentConfigError("set both match_path and match_field (or neither, to match by position)")
        if batch_size > 1 and "{" in endpoint:
            raise EnrichmentConfigError("in batch mode the endpoint cannot hold per-user placeholders")
        self.name = name
        self.method = method
        self.endpoint = endpoint
        self.params = dict(params or {})
        self.body = body
        self.batch_size = batch_size
        self.batch_key = batch_key
        self.results_path = results_path
        self.match_path = match_path
        self.match_field = match_field
        self.response_path = response_path
        self.fields = dict(fields) if fields is not None else None
        self.error_path = error_path
        used = placeholders(endpoint) | placeholders(self.params) | placeholders(body)
        self.required_fields = tuple(sorted(used - set(DERIVED)))
        if "email_domain" in used and "email" not in self.required_fields:
            self.required_fields = (*self.required_fields, "email")
        self.caller = HttpCaller(http_conn_id, token_header=token_header, token_prefix=token_prefix,
                                 not_found_statuses=not_found_statuses, timeout=timeout)  # fmt: skip

    def open(self) -> None:
        self.caller.open()

    def close(self) -> None:
        self.caller.close()

    def _map(self, document: Any) -> EnrichmentResult:
        data = extract_path(document, self.response_path)
        if not isinstance(data, Mapping) or not data:
            return EnrichmentResult.not_found()
        selected = select_fields(data, self.fields)
        return EnrichmentResult.found(selected) if selected else EnrichmentResult.not_found()

    def lookup(self, identifiers: Identifiers) -> EnrichmentResult:
        values = template_values(identifiers)
        try:
            path = render_text(self.endpoint, values, url_quote=True)
            params = render_value(self.params, values)
            body = render_value(self.body, values) if self.body is not None else None
        except KeyError as err:
            return EnrichmentResult.failed(f"the request template needs {err.args[0]!r}, which this user lacks")
        document = self.caller.call(self.method, path, params=params or None, json_body=body)
        return EnrichmentResult.not_found() if document is None else self._map(document)

    def enrich_batch(self, batch: Sequence[Identifiers]) -> list[EnrichmentResult]:
        if self.batch_size == 1:
            return [self.lookup(ids) for ids in batch]
        items = [render_value(self.body, template_values(ids)) for ids in batch]
        payload: Any = {self.batch_key: items} if self.batch_key else items
        params = render_value(self.params, {}) if self.params else None
        document = self.caller.call(self.method, self.endpoint, params=params, json_body=payload)
        if document is None:
            return [EnrichmentResult.not_found() for _ in batch]
        results = extract_path(document, self.results_path)
        if not isinstance(results, list):
            raise PermanentEnrichmentError(
                f"batch response has no list at results_path={self.results_path!r}: check the response mapping"
            )
        return self._match(batch, results)

    def _match(self, batch: Sequence[Identifiers], results: list[Any]) -> list[EnrichmentResult]:
        if not self.match_path:
            if len(results) != len(batch):
                raise PermanentEnrichmentError(
                    f"batch response has {len(results)} results for {len(batch)} users; set match_path and "
                    "match_field so results are matched by identifier rather than position"
                )
            return [self._item(item) for item in results]
        by_key: dict[str, Any] = {}
        for item in results:
            key = extract_path(item, self.match_path)
            if key is not None:
                by_key[_norm(key)] = item
        out = []
        for ids in batch:
            item = by_key.get(_norm(ids.get(self.match_field)))  # type: ignore[arg-type]
            out.append(EnrichmentResult.not_found("no result for this user") if item is None else self._item(item))
        return out

    def _item(self, item: Any) -> EnrichmentResult:
        if self.error_path:
            error = extract_path(item, self.error_path)
            if error:
                text = error if isinstance(error, str) else json.dumps(error, default=str)
                return EnrichmentResult.failed(f"the service reported an error for this user: {_excerpt(text)}")
        return self._map(item)


def _norm(value: Any) -> str:
    return str(value).strip().lower()


def _safe(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _excerpt(text: str, limit: int = 160) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
