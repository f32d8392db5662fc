"""Fault injection for the emulator: rules that answer with errors, add latency or drop connections.

Tests use it to prove that clients retry, back off and never duplicate acknowledged work. A rule matches a request by
path pattern (shell glob such as ``/collect/*``, or a regular expression when it starts with ``^``) and optionally
by method, fires with a probability drawn from its own seeded generator, and disappears after ``times`` hits.

Kinds:

* ``status``: answer with ``status`` (429/500/502/503/504) in the path's envelope, without touching the route.
* ``latency``: sleep ``latency`` seconds, then let the request through (it combines with one other rule).
* ``drop_before``: close the TCP connection at once: no response, nothing processed.
* ``drop_after``: let the route process the request completely, then close the connection without sending the
  response. This is the "lost acknowledgement" case that makes clients resend work the server already did.

Dropping needs a handle on the connection; :mod:`airflow_provider_lytics.emulator.server` supplies it as the ASGI
scope extension :data:`ABORT_EXTENSION`.
"""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
import random
import re
import threading
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_lytics.emulator.envelope import error_for_path

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Key in ``scope["extensions"]`` holding a zero-argument callable that aborts the client connection.
ABORT_EXTENSION = "lytics.emulator.abort"

KINDS = ("status", "latency", "drop_before", "drop_after")
STATUSES = (429, 500, 502, 503, 504)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MAX_LATENCY = 120.0
_RULE_KEYS = ("route", "method", "kind", "status", "retry_after", "latency", "times", "probability", "seed", "message")
_DEFAULT_MESSAGES = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_V2_CODES = {500: "INTERNAL-019"}


class FaultRuleError(ValueError):
    """A fault rule is malformed; the message says which field to fix."""


@dataclass
class FaultRule:
    """One validated rule. Build it with :meth:`FaultRule.from_dict` to get field checks."""

    route: str
    kind: str
    method: str | None = None
    status: int | None = None
    retry_after: float | None = None
    latency: float = 0.0
    times: int | None = None
    probability: float = 1.0
    seed: int | None = None
    message: str | None = None
    id: str = ""
    hits: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._validate()
        source = self.route if self.route.startswith("^") else fnmatch.translate(self.route)
        try:
            self._pattern = re.compile(source)
        except re.error as exc:
            raise FaultRuleError(
                f"fault rule 'route' {self.route!r} is not a valid regular expression: {exc}"
            ) from None
        self._rng = random.Random(self.seed)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FaultRule:
        if not isinstance(raw, Mapping):
            raise FaultRuleError(f"a fault rule must be a JSON object, got {type(raw).__name__}")
        unknown = sorted(set(raw) - set(_RULE_KEYS))
        if unknown:
            raise FaultRuleError(f"unknown fault rule field(s) {unknown}; allowed: {list(_RULE_KEYS)}")
        if "route" not in raw or "kind" not in raw:
            raise FaultRuleError(f"a fault rule needs 'route' (e.g. '/collect/*') and 'kind' (one of {list(KINDS)})")
        return cls(**{key: raw[key] for key in _RULE_KEYS if key in raw and raw[key] is not None})

    def _validate(self) -> None:
        if not isinstance(self.route, str) or not self.route.startswith(("/", "^", "*")):
            raise FaultRuleError(f"fault rule 'route' must be a path pattern like '/collect/*', got {self.route!r}")
        if self.kind not in KINDS:
            raise FaultRuleError(f"fault rule 'kind' must be one of {list(KINDS)}, got {self.kind!r}")
        if self.method is not None:
            if not isinstance(self.method, str) or self.method.upper() not in METHODS:
                raise FaultRuleError(f"fault rule 'method' must be one of {list(METHODS)} or null, got {self.method!r}")
            self.method = self.method.upper()
        if self.kind == "status":
            if self.status not in STATUSES:
                raise FaultRuleError(f"a 'status' fault needs 'status' in {list(STATUSES)}, got {self.status!r}")
        elif self.status is not None:
            raise FaultRuleError(f"'status' only applies to kind 'status', not {self.kind!r}")
        if self.retry_after is not None:
            if self.kind != "status":
                raise FaultRuleError("'retry_after' only applies to kind 'status'")
            if not _is_number(self.retry_after) or self.retry_after < 0:
                raise FaultRuleError(f"'retry_after' must be a number of seconds >= 0, got {self.retry_after!r}")
        if self.kind == "latency":
            if not _is_number(self.latency) or not 0 < self.latency <= MAX_LATENCY:
                raise FaultRuleError(f"a 'latency' fault needs 'latency' in (0, {MAX_LATENCY}] s, got {self.latency!r}")
        elif self.latency:
            raise FaultRuleError(f"'latency' only applies to kind 'latency', not {self.kind!r}")
        if self.times is not None and (
            not isinstance(self.times, int) or isinstance(self.times, bool) or self.times < 1
        ):
            raise FaultRuleError(f"'times' must be an integer >= 1 or null (until cleared), got {self.times!r}")
        if not _is_number(self.probability) or not 0 <= self.probability <= 1:
            raise FaultRuleError(f"'probability' must be a number between 0 and 1, got {self.probability!r}")
        if self.seed is not None and not _is_int(self.seed):
            raise FaultRuleError(f"'seed' must be an integer, got {self.seed!r}")
        if self.message is not None and not isinstance(self.message, str):
            raise FaultRuleError(f"'message' must be a string, got {self.message!r}")

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.route.startswith("^"):
            return self._pattern.search(path) is not None
        return self._pattern.match(path) is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "route": self.route,
            "method": self.method,
            "kind": self.kind,
            "status": self.status,
            "retry_after": self.retry_after,
            "latency": self.latency,
            "times": self.times,
            "probability": self.probability,
            "seed": self.seed,
            "message": self.message,
            "hits": self.hits,
        }


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class FaultDecision:
    """What to do with one request: sleep ``latency`` seconds, then apply ``action`` (None = pass through)."""

    latency: float = 0.0
    action: FaultRule | None = None


class FaultInjector:
    """A thread-safe, ordered set of fault rules. The first matching non-latency rule wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: tuple[FaultRule, ...] = ()
        self._ids = itertools.count(1)

    def add(self, rule: Mapping[str, Any] | FaultRule) -> str:
        """Validate and register ``rule``; returns its id (raises :class:`FaultRuleError` on bad input)."""
        parsed = rule if isinstance(rule, FaultRule) else FaultRule.from_dict(rule)
        with self._lock:
            parsed.id = f"fault-{next(self._ids)}"
            self._rules = (*self._rules, parsed)
        return parsed.id

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            kept = tuple(r for r in self._rules if r.id != rule_id)
            found = len(kept) != len(self._rules)
            self._rules = kept
        return found

    def clear(self) -> None:
        with self._lock:
            self._rules = ()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.as_dict() for r in self._rules]

    def __len__(self) -> int:
        return len(self._rules)

    def decide(self, method: str, path: str) -> FaultDecision | None:
        """Pick the faults for one request and count them against ``times``; None when nothing applies."""
        if not self._rules:
            return None
        latency = 0.0
        action: FaultRule | None = None
        with self._lock:
            spent: list[FaultRule] = []
            for rule in self._rules:
                if rule.kind != "latency" and action is not None:
                    continue
                if not rule.matches(method, path):
                    continue
                if rule.probability < 1 and rule._rng.random() >= rule.probability:
                    continue
                rule.hits += 1
                if rule.times is not None and rule.hits >= rule.times:
                    spent.append(rule)
                if rule.kind == "latency":
                    latency += rule.latency
                else:
                    action = rule
            if spent:
                self._rules = tuple(r for r in self._rules if r not in spent)
        if latency == 0 and action is None:
            return None
        return FaultDecision(latency=latency, action=action)


class FaultMiddleware:
    """Pure-ASGI middleware applying the backend's :class:`FaultInjector` to the Lytics surface."""

    def __init__(self, app: ASGIApp, injector: FaultInjector, skip_prefix: str = "/_emulator/") -> None:
        self.app = app
        self.injector = injector
        self.skip_prefix = skip_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.skip_prefix):
            await self.app(scope, receive, send)
            return
        decision = self.injector.decide(scope["method"], scope["path"])
        if decision is None:
            await self.app(scope, receive, send)
            return
        if decision.latency:
            await asyncio.sleep(decision.latency)
        rule = decision.action
        if rule is None:
            await self.app(scope, receive, send)
        elif rule.kind == "status":
            await _drain(receive)
            await _send_status(rule, scope, receive, send)
        elif rule.kind == "drop_before":
            await _abort(scope, receive, send)
        else:  # drop_after
            await self.app(scope, receive, _discard)
            await _abort(scope, receive, send)


async def _drain(receive: Receive) -> None:
    """Read and discard the request body so the client can finish sending before it reads the error."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _send_status(rule: FaultRule, scope: Scope, receive: Receive, send: Send) -> None:
    status = rule.status or 503
    message = rule.message or _DEFAULT_MESSAGES[status]
    response = error_for_path(scope["path"], status, message, _V2_CODES.get(status, "UNKNOWN-000"))
    if rule.retry_after is not None:
        seconds = rule.retry_after
        response.headers["Retry-After"] = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
    await response(scope, receive, send)


async def _discard(message: Message) -> None:
    """An ASGI ``send`` that loses the response: used by ``drop_after``."""


async def _abort(scope: Scope, receive: Receive, send: Send) -> None:
    abort = scope.get("extensions", {}).get(ABORT_EXTENSION)
    if abort is None:
        response = error_for_path(
            scope["path"],
            500,
            "connection-drop faults need the emulator's own server (EmulatorServer or `lytics-emulator serve`)",
            "INTERNAL-019",
        )
        await response(scope, receive, send)
        return
    abort()
    # Let the server notice the lost connection before this request returns, so it does not try to answer.
    await asyncio.sleep(0)
    await asyncio.sleep(0)
