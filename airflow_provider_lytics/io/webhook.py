"""Deliver JSON messages to a webhook: batching, a requests-per-second limit, and retries with back-off.

Retries run on the provider's retry driver (:class:`~airflow_provider_lytics.client.retry.RetryTracker`) and honour
``Retry-After``. A POST is retried on connection errors, timeouts, 429 and 5xx, so delivery is at-least-once:
receivers should de-duplicate on the message key if a duplicate matters. Credentials (password, auth headers)
never appear in logs or in the reasons reported for failed batches.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_lytics.client.retry import Failure, RetryPolicy, RetryTracker, parse_retry_after

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Keys of an HTTP connection's extras that configure the request rather than being sent as headers.
REQUEST_OPTION_KEYS = frozenset({"timeout", "verify", "proxies", "cert", "allow_redirects", "max_redirects",
                                 "stream", "trust_env", "endpoint"})  # fmt: skip
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie"})


class WebhookConfigError(ValueError):
    """The webhook connection or delivery options are unusable; the message says what to change."""


@dataclass(frozen=True)
class WebhookSettings:
    """Where and how to POST: built from an Airflow ``http`` connection by :func:`settings_from_connection`."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = field(default=None, repr=False)
    timeout: float = 30.0
    verify: bool | str = True

    @property
    def safe_url(self) -> str:
        """The URL without credentials or query string, for logs."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))


def settings_from_connection(conn: Any, endpoint: str = "") -> WebhookSettings:
    """Read an ``http`` connection (host, schema, port, login/password, extras as headers) the way the HTTP
    provider does. ``endpoint`` is appended to the base URL; an extra ``endpoint`` is used when it is empty."""
    host = (conn.host or "").strip()
    if not host:
        raise WebhookConfigError(f"HTTP connection {conn.conn_id!r} has no host: set it to the webhook base URL")
    extra = dict(conn.extra_dejson or {})
    if "://" in host:
        base = host
    else:
        scheme = (conn.schema or "https").strip() or "https"
        if scheme not in ("http", "https"):
            raise WebhookConfigError(f"HTTP connection {conn.conn_id!r} has schema {scheme!r}: use http or https")
        base = f"{scheme}://{host}"
    if conn.port:
        parts = urlsplit(base)
        base = urlunsplit((parts.scheme, f"{parts.hostname}:{conn.port}", parts.path, parts.query, ""))
    endpoint = endpoint or str(extra.get("endpoint") or "")
    url = base.rstrip("/") + ("/" + endpoint.lstrip("/") if endpoint else "")
    headers = {str(k): str(v) for k, v in extra.items() if k not in REQUEST_OPTION_KEYS}
    auth = (conn.login, conn.password or "") if conn.login else None
    try:
        timeout = float(extra.get("timeout", 30.0))
    except (TypeError, ValueError):
        raise WebhookConfigError(
            f"extra 'timeout' of connection {conn.conn_id!r} must be a number of seconds"
        ) from None
    verify = extra.get("verify", True)
    if isinstance(verify, str) and verify.lower() in ("true", "false"):
        verify = verify.lower() == "true"
    return WebhookSettings(url=url, headers=headers, auth=auth, timeout=timeout, verify=verify)


class RateLimiter:
    """At most ``rate`` request starts per second, spaced evenly (no bursts), across retries too."""

    def __init__(self, rate: float | None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        if rate is not None and rate <= 0:
            raise WebhookConfigError(f"rate_limit must be a positive number of requests per second, got {rate}")
        self.interval = 1.0 / rate if rate else 0.0
        self.clock = clock
        self.sleep = sleep
        self.next_start: float | None = None

    def wait(self) -> None:
        if not self.interval:
            return
        now = self.clock()
        if self.next_start is not None and now < self.next_start:
            self.sleep(self.next_start - now)
            now = self.next_start
        self.next_start = now + self.interval


@dataclass
class BatchResult:
    """Outcome of one batch: ``ok``, the final HTTP status (``None`` if no response), attempts and a reason."""

    size: int
    ok: bool
    status: int | None
    attempts: int
    reason: str = ""


class WebhookSender:
    """POSTs JSON batches to one URL with a shared session, rate limiter and retry policy.

    :param settings: target URL, headers and auth.
    :param rate_limit: maximum requests per second (``None`` for no limit).
    :param retry_policy: attempts and back-off; ``Retry-After`` from 429/503 answers takes precedence.
    :param envelope_key: wrap each batch as ``{envelope_key: [...]}``; by default a batch is a JSON array.
    :param single: send each message as a JSON object rather than a one-element batch.
    """

    def __init__(
        self,
        settings: WebhookSettings,
        *,
        rate_limit: float | None = None,
        retry_policy: RetryPolicy | None = None,
        envelope_key: str | None = None,
        single: bool = False,
        method: str = "POST",
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if method.upper() not in ("POST", "PUT", "PATCH"):
            raise WebhookConfigError(f"method must be POST, PUT or PATCH, got {method!r}")
        self.settings = settings
        self.method = method.upper()
        self.retry_policy = retry_policy or RetryPolicy()
        self.limiter = RateLimiter(rate_limit, clock=clock, sleep=sleep)
        self.envelope_key = envelope_key
        self.single = single
        self.clock = clock
        self.sleep = sleep
        self._session = session
        self.requests_sent = 0

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            import requests

            self._session = requests.Session()
            self._session.headers.update({"Content-Type": "application/json", **self.settings.headers})
            if self.settings.auth:
                self._session.auth = self.settings.auth
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def body(self, messages: list[Mapping[str, Any]]) -> bytes:
        if self.single:
            if len(messages) != 1:
                raise WebhookConfigError("single-message mode sends exactly one message per request")
            payload: Any = messages[0]
        elif self.envelope_key:
            payload = {self.envelope_key: messages}
        else:
            payload = messages
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode()

    def send(self, messages: list[Mapping[str, Any]]) -> BatchResult:
        """Send one batch, retrying transient failures; never raises for HTTP or network errors."""
        import requests

        data = self.body(messages)
        tracker = RetryTracker(self.retry_policy, log=log, clock=self.clock, label=f"Webhook {self.settings.safe_url}")

        def attempt(n: int) -> BatchResult | Failure:
            self.limiter.wait()
            self.requests_sent += 1
            retry_after: float | None = None
            try:
                response = self.session.request(self.method, self.settings.url, data=data,
                                                timeout=self.settings.timeout, verify=self.settings.verify)  # fmt: skip
            except requests.RequestException as err:
                status, reason = None, f"{type(err).__name__} contacting {self.settings.safe_url}"
                retryable = True
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return BatchResult(len(messages), True, status, n)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                reason = f"HTTP {status} from {self.settings.safe_url}: {_excerpt(response.text)}"
                retryable = status in RETRY_STATUSES
            gave_up = BatchResult(len(messages), False, status, n, reason)
            return Failure(reason.split(": ", 1)[0], lambda: gave_up, retryable, retry_after)

        return tracker.run(attempt, sleep=self.sleep)


def _excerpt(text: str, limit: int = 200) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
