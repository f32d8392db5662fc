"""Lytics connection settings: where the API lives, which token and account to use, how long to wait.

An Airflow ``lytics`` connection maps to these settings as follows (also declared as the connection form):

- **password**: the API token (sent raw in ``Authorization``, as Lytics expects; never ``Bearer``);
- **host**: API base URL, default ``https://api.lytics.io`` (a bare host name gets ``https://``; ``schema`` =
  scheme is honoured when the host has no scheme; ``port`` when the URL has none, 0 meaning none);
- extras ``bulk_url`` (default ``https://bulk.lytics.io``), ``account_id`` and ``timeout`` (seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_lytics.client.errors import LyticsConfigError

DEFAULT_API_URL = "https://api.lytics.io"
DEFAULT_BULK_URL = "https://bulk.lytics.io"
DEFAULT_TIMEOUT = 60.0
EXTRA_BULK_URL = "bulk_url"
EXTRA_ACCOUNT_ID = "account_id"
EXTRA_TIMEOUT = "timeout"


@dataclass(frozen=True)
class LyticsSettings:
    api_url: str
    bulk_url: str
    token: str
    account_id: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    def __repr__(self) -> str:  # never show the token
        return (
            f"LyticsSettings(api_url={self.api_url!r}, bulk_url={self.bulk_url!r}, "
            f"account_id={self.account_id!r}, timeout={self.timeout!r}, token=***)"
        )

    def base_url(self, bulk: bool = False) -> str:
        return self.bulk_url if bulk else self.api_url


def normalise_url(value: str, *, field: str, port: int | None = None, scheme: str | None = None) -> str:
    value = value.strip().rstrip("/")
    if "://" not in value:
        netloc = f"{value}:{port}" if port else value
        value = f"{(scheme or 'https').strip() or 'https'}://{netloc}"
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise LyticsConfigError(
            f"The Lytics connection's {field} {value!r} is not an http(s) URL; use e.g. {DEFAULT_API_URL}"
        )
    try:
        url_port = parts.port
    except ValueError:
        raise LyticsConfigError(f"The Lytics connection's {field} {value!r} has an invalid port") from None
    if port and url_port is None:  # Port field filled, URL without one: use it (0 means "no port")
        value = urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))
    elif port and url_port != int(port):
        raise LyticsConfigError(
            f"The Lytics connection's {field} {value!r} says port {url_port} but its Port field says {port}: "
            "make them agree or empty one of them"
        )
    return value


def _timeout(value: Any) -> float:
    if value in (None, ""):
        return DEFAULT_TIMEOUT
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        raise LyticsConfigError(f"The Lytics connection's timeout must be a number of seconds, got {value!r}") from None
    if timeout <= 0:
        raise LyticsConfigError("The Lytics connection's timeout must be greater than 0 seconds")
    return timeout


def settings_from_connection(
    *, conn_id: str, host: str | None, port: int | None, schema: str | None, password: str | None, extra: dict
) -> LyticsSettings:
    """Build settings from the parts of an Airflow Connection (kept generic so sync and async share it)."""
    token = (password or "").strip()
    if not token:
        raise LyticsConfigError(
            f"The Airflow connection {conn_id!r} has no Lytics API token: put the token in its Password field"
        )
    if token.lower().startswith("bearer "):
        raise LyticsConfigError(
            f"The token in connection {conn_id!r} starts with 'Bearer ': "
            "Lytics expects the raw token, remove the prefix"
        )
    api_url = normalise_url(host, field="host", port=port, scheme=schema) if host else DEFAULT_API_URL
    bulk_raw = extra.get(EXTRA_BULK_URL)
    bulk_url = normalise_url(str(bulk_raw), field=EXTRA_BULK_URL) if bulk_raw else DEFAULT_BULK_URL
    account = extra.get(EXTRA_ACCOUNT_ID)
    return LyticsSettings(
        api_url=api_url,
        bulk_url=bulk_url,
        token=token,
        account_id=str(account).strip() or None if account is not None else None,
        timeout=_timeout(extra.get(EXTRA_TIMEOUT)),
    )
