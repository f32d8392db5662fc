"""Synchronous Lytics API hook (requests), used on workers by operators and sensors.

The endpoints are described once in :mod:`airflow_provider_lytics.client.catalogue`, shared with the async
hook; each says whether it is safe to retry. Safe calls are retried on network errors, 429 and 5xx; unsafe
calls (creating jobs, job commands) only when the request certainly did not reach Lytics. See
:mod:`airflow_provider_lytics.client.retry`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any, cast

from airflow_provider_lytics.client.catalogue import LyticsApi
from airflow_provider_lytics.client.config import LyticsSettings
from airflow_provider_lytics.client.envelope import Envelope
from airflow_provider_lytics.client.errors import LyticsAuthError, LyticsError, LyticsTransportError
from airflow_provider_lytics.client.http import (
    SCAN_PAGE_LIMIT,
    USER_AGENT,
    ScanPage,
    iter_scan,
    new_session,
    page_requests,
    quote_path,
    scan_requests,
    send,
)
from airflow_provider_lytics.client.raw_events import EVENT_PAGE_LIMIT
from airflow_provider_lytics.client.retry import RetryPolicy
from airflow_provider_lytics.hooks.base import LyticsBaseHook

if TYPE_CHECKING:
    import requests

__all__ = ["SCAN_PAGE_LIMIT", "USER_AGENT", "LyticsHook", "ScanPage", "quote_path"]


def _reach_hint(host: str | None, api_url: str) -> str:
    """What to change when the API URL could not be reached."""
    if host and "://" not in host and api_url.startswith("https://"):
        return (
            f"The Host field {host!r} has no scheme, so https:// was used; if the server speaks plain HTTP "
            f"(e.g. lytics-emulator serve), set Host to {api_url.replace('https://', 'http://', 1)}."
        )
    return (
        "Check the Host field (the API base URL with http:// or https://, default https://api.lytics.io) and "
        "that Airflow can reach it from where the test runs."
    )


class LyticsHook(LyticsBaseHook, LyticsApi):
    """Talk to the Lytics REST API through an Airflow ``lytics`` connection (see :class:`LyticsBaseHook`).

    The endpoint methods (``get_job``, ``list_segments``, ...) come from the catalogue
    (:class:`~airflow_provider_lytics.client.catalogue.LyticsApi`), sent through :meth:`request`.
    """

    def __init__(self, lytics_conn_id: str = LyticsBaseHook.default_conn_name, *,
                 retry_policy: RetryPolicy | None = None) -> None:  # fmt: skip
        super().__init__(lytics_conn_id, retry_policy=retry_policy)
        self._sleep = time.sleep
        self._clock = time.monotonic

    # Airflow 2 looks for these in the connection type's own class ``__dict__``, so restate them here.
    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return super().get_ui_field_behaviour()

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        return super().get_connection_form_widgets()

    @cached_property
    def settings(self) -> LyticsSettings:
        """Resolved once per hook; the token is registered with Airflow's secret masker."""
        conn = self.get_connection(self.lytics_conn_id)
        return self._settings_from(conn, conn.extra_dejson)

    @cached_property
    def session(self) -> requests.Session:
        return new_session(self.settings)

    def get_conn(self) -> requests.Session:
        return self.session

    def close(self) -> None:
        if "session" in self.__dict__:
            self.session.close()
            del self.__dict__["session"]

    def test_connection(self) -> tuple[bool, str]:
        """One cheap call (``GET /api/account``) that proves the URL and the token; never raises.

        A failure names the URL tried and the connection field to change.
        """
        try:
            conn = self.get_connection(self.lytics_conn_id)
            settings = self.settings
        except LyticsError as err:  # the connection itself is unusable; the message says which field
            return False, str(err)
        except Exception as err:  # the UI must get a message, whatever went wrong
            return False, f"{type(err).__name__}: {err}"
        url = f"{settings.api_url}/api/account"
        try:
            envelope = self.request("GET", "/api/account")
        except LyticsAuthError as err:
            return False, (
                f"Lytics at {url} refused the API token (HTTP {err.status}): put a valid token in the Password "
                "field (Lytics: Account > Security > Access Tokens), without a 'Bearer ' prefix."
            )
        except LyticsTransportError as err:
            return False, f"Could not reach Lytics at {url}: {err}. {_reach_hint(conn.host, settings.api_url)}"
        except LyticsError as err:
            return False, f"Lytics at {url} answered with an error: {err}"
        except Exception as err:
            return False, f"Testing Lytics at {url} failed: {type(err).__name__}: {err}"
        accounts = envelope.data if isinstance(envelope.data, list) else [envelope.data]
        names = ", ".join(str(a.get("name") or a.get("id")) for a in accounts if isinstance(a, dict))
        return True, f"Connected to Lytics at {settings.api_url}" + (f" (account: {names})" if names else "")

    # -- transport ----------------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: bytes | str | IO[bytes] | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        bulk: bool = False,
        safe: bool = True,
    ) -> Envelope:
        """Send one logical request with retries and return the parsed envelope (raises typed errors).

        ``safe`` says whether repeating the request is harmless. A file-like ``data`` body is rewound before
        each retry; an iterator body cannot be replayed, so it is sent once.
        """
        return send(  # type: ignore[return-value]
            self.session, self.settings, self.retry_policy, method, path, params=params, json_body=json_body,
            data=data, headers=headers, bulk=bulk, safe=safe, log=cast(Any, self.log), sleep=self._sleep,
            clock=self._clock,
        )  # fmt: skip

    # -- content (composite: the endpoints are in the catalogue) ----------------------------------------
    def topic_affinities(self, field: str, value: str, *, affinity_field: str = "lytics_content") -> dict | None:
        """A profile's topic affinities (``{topic: score}`` as floats) from its ``lytics_content`` map, ``{}``
        when it has none, or ``None`` when there is no such profile. Safe to retry."""
        profile = self.get_entity(field, value, fields=[affinity_field], segments=False)
        if profile is None:
            return None
        return parse_affinities(profile.get(affinity_field))

    # -- scan (a generator over the catalogue's page endpoints) ---------------------------------------------
    def scan_pages(
        self,
        segment: str | None = None,
        *,
        filter_ql: str | None = None,
        fields: Iterable[str] | None = None,
        limit: int = SCAN_PAGE_LIMIT,
        sortfield: str | None = None,
        sortorder: str | None = None,
        table: str | None = None,
        start: str | None = None,
    ) -> Iterator[ScanPage]:
        """Lazily page through a saved segment (id or slug) or an ad-hoc FilterQL audience.

        Each page is one safe, retried request; the generator stops when ``_next`` is empty. An expired
        cursor raises :class:`LyticsCursorExpiredError` (restart the scan from the beginning).
        """
        page_request = scan_requests(
            segment, filter_ql, fields=fields, limit=limit, sortfield=sortfield, sortorder=sortorder, table=table
        )
        return iter_scan(self.request, page_request, start)

    def scan(self, segment: str | None = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every member profile of a segment (or ad-hoc audience), one page in memory at a time."""
        for page in self.scan_pages(segment, **kwargs):
            yield from page.records

    # -- raw events (a generator over the catalogue's event_page) -------------------------------------------
    def event_pages(
        self,
        stream: str,
        *,
        start: Any = None,
        end: Any = None,
        limit: int = EVENT_PAGE_LIMIT,
        cursor: str | None = None,
    ) -> Iterator[ScanPage]:
        """Page through ``stream``'s raw events whose event time is in ``[start, end)``, from ``cursor``.

        Each page is the catalogue's ``event_page`` (``GET /v2/stream/{stream}/events``): ``start``/``end`` are
        datetimes, epoch ms or ISO 8601 strings (``None`` leaves a side open), ``limit`` events per page. Each
        page's ``total`` is the number of events in the range when the first page was served. Safe to retry.
        """
        pages = page_requests(LyticsApi.event_page, stream, start=start, end=end, limit=limit, cursor_arg="cursor")
        return iter_scan(self.request, pages, cursor)

    def events(self, stream: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every raw event of ``stream`` in a time range (see :meth:`event_pages`), one page in memory at a time."""
        for page in self.event_pages(stream, **kwargs):
            yield from page.records


def parse_affinities(raw: Any) -> dict[str, float]:
    """A ``lytics_content`` value (Lytics renders the scores as strings) as ``{topic: float}``, highest first."""
    if not isinstance(raw, Mapping):
        return {}
    out: dict[str, float] = {}
    for topic, score in raw.items():
        try:
            out[str(topic)] = float(score)
        except (TypeError, ValueError):
            continue
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))
