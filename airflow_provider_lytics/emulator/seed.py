"""Deterministic synthetic population for the emulator: users from a CRM stream, web activity on a second stream
(part of it anonymous, then stitched to the CRM profile by a ``_uid`` + ``email`` event) and starter segments.

The same ``users`` and ``seed`` give the same profiles; ``last_active`` is anchored to the current UTC day so the
date-math segment (``recent_visitors``) stays meaningful whenever the population is generated.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from airflow_provider_lytics.emulator.store import ProfileStore, gc_paused
from airflow_provider_lytics.emulator.values import rfc3339

CRM_STREAM = "crm_users"
WEB_STREAM = "web_events"
_FIRST = tuple(
    [
        "Ada",
        "Ben",
        "Chloe",
        "Dev",
        "Elena",
        "Femi",
        "Grace",
        "Hiro",
        "Ines",
        "Jonas",
        "Kira",
        "Liam",
        "Maya",
        "Noah",
        "Olga",
        "Priya",
        "Quinn",
        "Rosa",
        "Sam",
        "Tara",
        "Uma",
        "Victor",
        "Wen",
        "Xavi",
        "Yara",
        "Zoe",
    ]
)
_LAST = tuple(
    [
        "Abbott",
        "Brown",
        "Chen",
        "Diaz",
        "Evans",
        "Fischer",
        "Garcia",
        "Hughes",
        "Ito",
        "Jensen",
        "Khan",
        "Lopez",
        "Moreau",
        "Novak",
        "Okafor",
        "Patel",
        "Quist",
        "Rossi",
        "Silva",
        "Tanaka",
        "Usman",
        "Varga",
    ]
)
_COUNTRIES = (("US", 40), ("GB", 12), ("DE", 10), ("FR", 9), ("CA", 8), ("AU", 6), ("JP", 5), ("BR", 5), ("IN", 5))
_PLANS = (("free", 55), ("basic", 25), ("pro", 15), ("enterprise", 5))
_INTERESTS = ("running", "cycling", "cooking", "travel", "music", "gaming", "photography", "reading", "yoga")
_PAGES = ("/", "/pricing", "/docs", "/blog", "/signup", "/account", "/product/a", "/product/b")
_DOMAINS = ("example.com", "mail.test", "corp.example", "inbox.test")
_BATCH = 5000
_DAY_MS = 86_400_000

SEED_SEGMENTS = (
    'FILTER * FROM user ALIAS all_users WITH name = "All users"',
    'FILTER EXISTS email FROM user ALIAS known_users WITH name = "Known users"',
    'FILTER lifetime_value >= 1000 FROM user ALIAS high_value WITH name = "High value", '
    'description = "Lifetime value of 1000 or more"',
    'FILTER last_active > "now-7d" FROM user ALIAS recent_visitors WITH name = "Recent visitors", '
    'description = "Active in the last 7 days"',
    "FILTER AND (INCLUDE high_value, INCLUDE recent_visitors) FROM user ALIAS high_value_active "
    'WITH name = "High value, recently active"',
    'FILTER plan IN ("pro", "enterprise") FROM user ALIAS paid_plans WITH name = "Paid plans"',
)


def _picker(table: tuple[tuple[str, int], ...]) -> Any:
    """A weighted choice from one uniform draw ``u`` in [0, 1) (cumulative weights computed once)."""
    values = [v for v, _ in table]
    cumulative = list(itertools.accumulate(w for _, w in table))
    total = cumulative[-1]
    return lambda u: values[bisect.bisect_right(cumulative, u * total)]


_COUNTRY = _picker(_COUNTRIES)
_PLAN = _picker(_PLANS)
_PLAN_BASE = {"free": 20.0, "basic": 200.0, "pro": 900.0, "enterprise": 4000.0}


def _crm(rng: random.Random, users: int, today_ms: int) -> Iterator[dict[str, Any]]:
    """One CRM record per user; every random value comes from ``rng.random()`` (fast and reproducible)."""
    dates = [str(rfc3339(today_ms - days * _DAY_MS))[:10] for days in range(901)]
    draw = rng.random
    n_first, n_last, n_interests = len(_FIRST), len(_LAST), len(_INTERESTS)
    created = today_ms - 30 * _DAY_MS
    for i in range(users):
        first, last = _FIRST[int(draw() * n_first)], _LAST[int(draw() * n_last)]
        plan = _PLAN(draw())
        start = int(draw() * n_interests)
        yield {
            "user_id": f"u{i:08d}",
            "email": f"{first}.{last}.{i}@{_DOMAINS[i % len(_DOMAINS)]}".lower(),
            "first_name": first, "last_name": last, "name": f"{first} {last}",
            "country": _COUNTRY(draw()), "plan": plan,
            "lifetime_value": round(_PLAN_BASE[plan] * (0.2 + 2.3 * draw()), 2),
            "interests": list(_INTERESTS[start : start + int(draw() * 4)]),
            "signup_date": dates[30 + int(draw() * 871)],
            "_ts": created,
        }  # fmt: skip


def _web(rng: random.Random, users: int, today_ms: int) -> Iterator[dict[str, Any]]:
    """Page views for 60% of users; a third of them start anonymous and are stitched by a login event."""
    for i in range(users):
        roll = rng.random()
        if roll >= 0.6:
            continue
        uid = f"c{i:08d}"
        last_active = today_ms - int(rng.expovariate(1 / 12) * _DAY_MS)
        event: dict[str, Any] = {"_uid": uid, "page": rng.choice(_PAGES), "last_active": last_active}
        if roll < 0.2:  # anonymous first, then a login event carrying both identifiers merges the profiles
            yield {**event, "_ts": last_active - 3_600_000, "last_active": last_active - 3_600_000}
            yield {"_uid": uid, "user_id": f"u{i:08d}", "event": "login", "_ts": last_active,
                   "last_active": last_active}  # fmt: skip
        else:
            yield {**event, "user_id": f"u{i:08d}", "_ts": last_active}


def _batched(records: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for record in records:
        batch.append(record)
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def seed_population(store: ProfileStore, users: int, seed: int = 0) -> dict[str, Any]:
    """Generate ``users`` users (plus web activity and starter segments) into ``store``; returns counts."""
    if not isinstance(users, int) or users < 1:
        raise ValueError(f"users must be a positive integer, got {users!r}")
    rng = random.Random(seed)
    now = datetime.fromtimestamp(store.wall_clock(), timezone.utc)  # the emulator's clock: data ages with it
    today_ms = int(datetime(now.year, now.month, now.day, tzinfo=timezone.utc).timestamp() * 1000)
    events = {CRM_STREAM: 0, WEB_STREAM: 0}
    with store.deferred_writes():
        for stream, source in ((CRM_STREAM, _crm(rng, users, today_ms)), (WEB_STREAM, _web(rng, users, today_ms))):
            batches = _batched(source)
            while True:
                with gc_paused():  # generating and merging a batch: one collection afterwards, not dozens
                    batch = next(batches, None)
                    if batch is None:
                        break
                    events[stream] += store.ingest(stream, batch, validated=True).message_count
                    del batch
    segments = []
    for text in SEED_SEGMENTS:
        doc, _ = store.segments.create({"segment_ql": text}, None, rename_taken_slug=False)
        segments.append(doc["slug_name"])
    return {"users": users, "profiles": store.profile_count(), "events": events, "segments": segments}
