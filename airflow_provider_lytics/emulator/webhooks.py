"""The ``webhook_triggers`` workflow in the emulator: real HTTP delivery of audience enter/exit events.

Each run of a job re-evaluates its segments against the current profiles, compares with the membership it
delivered last time (kept per job in the StateDB, kind ``webhook_members``) and sends one event per change in the
documented payload (Lytics API notes §7.3): ``{id, data{...profile, segment_events[]}, meta{object,
subscription_id, timestamp}}``, CloudEvents-wrapped when ``cloudevents`` is set, and as JSON arrays of up to
``batch_size`` events when ``batch_requests`` is set. The first run sends current members as ``enter`` only with
``withbackfill``.

Delivery rules: 2xx delivers; 400, 404, 413 and ``do_not_retry`` codes drop the event (counted as omitted);
anything else is retried, after ``Retry-After`` when the receiver sends one. Ten failed requests in one run error
the run, so the job enters the engine's fault back-off and, after ``max_faults`` such runs, ``failed``. Membership
advances only for delivered or dropped events, so undelivered changes are sent again by the next run. Messages
never include the URL's query or the auth headers (job logs are visible to API users).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_lytics.emulator.job_time import rfc3339

if TYPE_CHECKING:
    from airflow_provider_lytics.emulator.backend import Backend

WORKFLOW = "webhook_triggers"
MAX_FAILED_REQUESTS = 10
NEVER_RETRY = frozenset({400, 404, 413})
MAX_EVENT_BYTES = 1024 * 1024
DEFAULT_CLOUDEVENTS_TYPE = "com.lytics.audience.user.event"
_KIND = "webhook_members"


class WebhookDeliveryError(RuntimeError):
    """A run gave up delivering (the engine turns it into a job fault)."""


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class WebhookTriggersRunner:
    """Runner for ``webhook_triggers`` jobs; register with ``backend.jobs.register_runner``."""

    def __init__(
        self,
        backend: Backend,
        *,
        request_timeout: float = 10.0,
        retry_after_cap: float = 30.0,
        backoff: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.backend = backend
        self.request_timeout = request_timeout
        self.retry_after_cap = retry_after_cap
        self.backoff = backoff
        self._sleep = sleep
        self._lock = threading.Lock()

    # -- membership bookkeeping --------------------------------------------------------------------------------
    def _load(self, job_id: str) -> dict[str, list[str]] | None:
        return self.backend.db.load(_KIND).get(job_id)

    def _save(self, job_id: str, members: dict[str, set[str]]) -> None:
        self.backend.db.put(_KIND, job_id, {seg: sorted(ids) for seg, ids in members.items()})

    # -- the run ------------------------------------------------------------------------------------------------
    def __call__(self, job: dict[str, Any]) -> dict[str, Any]:
        config = job.get("config") or {}
        url = config.get("webhook_url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise WebhookDeliveryError("config.webhook_url must be an http(s) URL")
        segment_ids = config.get("segment_ids")
        if not isinstance(segment_ids, list) or not segment_ids:
            raise WebhookDeliveryError("config.segment_ids must be a non-empty list of segment ids")
        store = self.backend.store
        segments = []
        for seg_id in segment_ids:
            seg = store.segments.get(str(seg_id))
            if seg is None:
                raise WebhookDeliveryError(f"segment {seg_id} not found (segment_ids takes segment ids)")
            segments.append(seg)
        stored = self._load(job["id"])
        first_run = stored is None
        members = {seg["id"]: set((stored or {}).get(seg["id"], [])) for seg in segments}
        wanted = config.get("audience_events") or ""
        changes: list[tuple[dict[str, Any], str, str]] = []  # (segment, profile id, "enter"|"exit")
        for seg in segments:
            current = {view["_id"] for view in store.segment_members(seg["id"])}
            before = members[seg["id"]]
            if first_run and not config.get("withbackfill"):
                members[seg["id"]] = current  # baseline only: no backfill requested
                continue
            changes += [(seg, pid, "enter") for pid in sorted(current - before)]
            changes += [(seg, pid, "exit") for pid in sorted(before - current)]
        if first_run:
            self._save(job["id"], members)
        return self._deliver(job, config, url, changes, members, wanted)

    def _deliver(
        self,
        job: dict[str, Any],
        config: dict[str, Any],
        url: str,
        changes: list[tuple[dict[str, Any], str, str]],
        members: dict[str, set[str]],
        wanted: str,
    ) -> dict[str, Any]:
        counts = {"added": 0, "omitted": 0, "removed": 0, "requests": 0, "skipped": 0}
        headers, target = self._auth(job, config, url)
        do_not_retry = {int(c) for c in config.get("do_not_retry") or [] if str(c).isdigit()}
        batch = bool(config.get("batch_requests"))
        batch_size = max(1, min(int(config.get("batch_size") or 10), 1000)) if batch else 1
        failed = 0
        pending: list[tuple[dict[str, Any], str, str, dict[str, Any]]] = []

        def apply(items: list[tuple[dict[str, Any], str, str, dict[str, Any]]], delivered: bool) -> None:
            for seg, pid, kind, _ in items:
                if kind == "enter":
                    members[seg["id"]].add(pid)
                else:
                    members[seg["id"]].discard(pid)
                key = ("added" if kind == "enter" else "removed") if delivered else "omitted"
                counts[key] += 1
            self._save(job["id"], members)

        def flush() -> None:
            nonlocal failed
            while pending:
                body = [item[3] for item in pending] if batch else pending[0][3]
                status, retry_after = self._send(config, target, headers, body)
                counts["requests"] += 1
                if status is not None and 200 <= status < 300:
                    apply(list(pending), True)
                    pending.clear()
                    return
                if status is not None and (status in NEVER_RETRY or status in do_not_retry):
                    apply(list(pending), False)
                    pending.clear()
                    return
                failed += 1
                if failed >= MAX_FAILED_REQUESTS:
                    what = f"HTTP {status}" if status is not None else "no response"
                    raise WebhookDeliveryError(
                        f"webhook delivery to {_host(url)} failed {failed} times (last: {what}); "
                        f"{counts['added'] + counts['removed']} event(s) delivered this run"
                    )
                wait = min(retry_after, self.retry_after_cap) if retry_after else self.backoff * 2 ** min(failed, 3)
                self._sleep(wait)

        for seg, pid, kind in changes:
            if (wanted == "enters_only" and kind == "exit") or (wanted == "exits_only" and kind == "enter"):
                if kind == "enter":
                    members[seg["id"]].add(pid)
                else:
                    members[seg["id"]].discard(pid)
                counts["skipped"] += 1
                continue
            event = self._event(job, config, seg, pid, kind)
            if len(json.dumps(event, default=str)) > MAX_EVENT_BYTES:
                apply([(seg, pid, kind, event)], False)
                continue
            pending.append((seg, pid, kind, event))
            if len(pending) >= batch_size:
                flush()
        flush()
        self._save(job["id"], members)
        return counts

    # -- payloads -----------------------------------------------------------------------------------------------
    def _event(self, job: dict[str, Any], config: dict[str, Any], seg: dict[str, Any], pid: str, kind: str) -> dict:
        store = self.backend.store
        view = store.lookup("_id", pid) or {"_id": pid}
        fields = config.get("user_fields")
        data: dict[str, Any] = {k: v for k, v in view.items() if not fields or k in fields}
        now = rfc3339(self.backend.jobs.clock())  # the emulator's clock, like every job stamp
        seg_event: dict[str, Any] = {"id": seg["id"], "slug": seg.get("slug_name", ""), "event": kind, kind: now}
        data["segment_events"] = [seg_event]
        if config.get("include_segs"):
            data["segments_all"] = [s.get("slug_name") for s in store.profile_segments(view)]
        event_id = str(secrets.randbits(63))
        if config.get("cloudevents"):
            return {
                "specversion": "1.0",
                "id": event_id,
                "source": config.get("cloudevents_source") or f"/work/{job['id']}",
                "type": config.get("cloudevents_type") or DEFAULT_CLOUDEVENTS_TYPE,
                "datacontenttype": "application/json",
                "time": now,
                "data": data,
            }
        return {
            "id": event_id,
            "data": data,
            "meta": {"object": "user", "subscription_id": job["id"], "timestamp": now},
        }

    def _auth(self, job: dict[str, Any], config: dict[str, Any], url: str) -> tuple[dict[str, str], str]:
        """Headers and query parameters from the job's ``header_param_auth`` authorizations (never logged)."""
        headers = {"Content-Type": "application/json", "User-Agent": "lytics-emulator-webhooks/1"}
        params: list[str] = []
        for auth_id in job.get("auth_ids") or []:
            secret = self.backend.jobs.auths.secret_config(job["account_id"], auth_id)
            for line in str(secret.get("webhook_request_headers") or "").splitlines():
                name, sep, value = line.partition(":")
                if sep and name.strip():
                    headers[name.strip()] = value.strip()
            query = str(secret.get("webhook_request_params") or "").lstrip("?")
            if query:
                params.append(query)
        if params:
            url = url + ("&" if urlsplit(url).query else "?") + "&".join(params)
        return headers, url

    def _send(
        self, config: dict[str, Any], url: str, headers: dict[str, str], body: Any
    ) -> tuple[int | None, float | None]:
        """One request; returns (status or None when no response arrived, Retry-After seconds)."""
        method = str(config.get("http_method") or "POST").upper()
        request = urllib.request.Request(url, data=json.dumps(body, default=str).encode(), method=method,
                                         headers=headers)  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=self.request_timeout) as response:
                response.read()
                return response.status, None
        except urllib.error.HTTPError as err:
            retry_after = _retry_after(err.headers.get("Retry-After") if err.headers else None)
            err.close()
            return err.code, retry_after
        except (urllib.error.URLError, OSError, TimeoutError):
            return None, None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            # An HTTP date from the real receiver: compared with the real wall clock, not the emulator's.
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def register(backend: Backend) -> WebhookTriggersRunner:
    """Install the webhook runner on ``backend`` (called by ``register_default_runners``)."""
    runner = WebhookTriggersRunner(backend)
    backend.jobs.register_runner(WORKFLOW, runner)
    return runner


def iter_events(body: Any) -> Iterator[dict[str, Any]]:
    """The events of one received request body (single event or batched array): a helper for receivers."""
    if isinstance(body, list):
        yield from body
    elif isinstance(body, dict):
        yield body
