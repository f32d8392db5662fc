"""An emulated third-party enrichment API (person by email, company by domain), served on its own port.

It plays the vendor side of an enrichment round trip so DAGs and tests run offline: deterministic data derived
from the email/domain (the same input always gives the same answer), and knobs for what real vendors do to
you: latency, a requests-per-second limit answered with 429 + ``Retry-After``, a share of unknown users, a
share of server errors, and named emails that always fail. Every request is logged with its arrival time
(``GET /_service/requests``) so tests can check pacing on the wire.

It is not Lytics, so it answers in its own (Clearbit-like) JSON, not in Lytics envelopes::

    GET  /v1/people/find?email=      200 {"email", "person": {...}, "company": {...}|null} | 404
    GET  /v1/companies/find?domain=  200 {company} | 404
    POST /v1/people/bulk             {"lookups": [{"email"}...]} (<= 100) -> {"results": [{"input", "person",
                                     "company", "error"}]}
    auth: Authorization: Bearer <api key> (or X-Api-Key)
    admin (no auth): GET /_service/requests, GET|POST /_service/config, POST /_service/reset

Run it alone: ``python -m airflow_provider_lytics.emulator.enrichment_service --port 8791 --rate-limit 20``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import math
import random
import signal
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

DEFAULT_API_KEY = "enrich-demo-key"
MAX_BULK = 100
#: Request log entries kept (oldest dropped first), so a long-running demo stays flat in memory.
MAX_LOG = 100_000

FREE_MAIL = frozenset({"gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "live.com",
                       "aol.com", "icloud.com", "me.com", "proton.me", "protonmail.com", "mail.com"})  # fmt: skip
_FAMILY = ("Lovelace", "Hopper", "Turing", "Noether", "Curie", "Ramanujan", "Franklin", "Shannon", "Liskov", "Knuth")
_TITLES = (("Data Engineer", "engineering", "individual_contributor"), ("VP Marketing", "marketing", "executive"),
           ("Growth Manager", "marketing", "manager"), ("CTO", "engineering", "executive"),
           ("Sales Director", "sales", "director"), ("Product Analyst", "product", "individual_contributor"),
           ("Head of CRM", "marketing", "director"), ("Founder", "leadership", "executive"))  # fmt: skip
_PLACES = (("Portland", "US"), ("Berlin", "DE"), ("London", "GB"), ("Toronto", "CA"), ("Lyon", "FR"),
           ("Austin", "US"), ("Sydney", "AU"), ("Madrid", "ES"))  # fmt: skip
_INDUSTRIES = (("Software", "Information Technology"), ("Retail", "Consumer Discretionary"),
               ("Banking", "Financials"), ("Media", "Communication Services"), ("Healthcare", "Health Care"),
               ("Logistics", "Industrials"))  # fmt: skip
_TAGS = ("B2B", "SaaS", "E-commerce", "Enterprise", "Marketplace", "Mobile", "Analytics", "Security")
_RANGES = ((10, "1-10"), (50, "11-50"), (250, "51-250"), (1000, "251-1K"), (5000, "1K-5K"), (10**9, "5K+"))


def _digest(salt: str, value: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{salt}\x00{value}".encode(), digest_size=8).digest(), "big")


def _fraction(salt: str, value: str) -> float:
    return (_digest(salt, value) % 1_000_000) / 1_000_000


@dataclass
class ServiceConfig:
    """The service's behaviour; every field can be changed at runtime through ``POST /_service/config``."""

    api_key: str = DEFAULT_API_KEY
    latency: float = 0.0  # seconds added to every answered lookup
    rate_limit: float | None = None  # admitted requests per sliding second; beyond it: 429 + Retry-After
    retry_after: float | None = None  # fixed Retry-After seconds on 429 (default: until a slot frees, >= 1)
    not_found_rate: float = 0.0  # share of emails (chosen by hash, so stable) the service does not know
    company_not_found_rate: float = 0.0  # same for company domains
    error_rate: float = 0.0  # share of requests answered with error_status (random, seeded)
    error_status: int = 503
    fail_emails: list[str] = field(default_factory=list)  # always answered with error_status
    not_found_emails: list[str] = field(default_factory=list)  # always unknown
    seed: int = 7

    def update(self, changes: Mapping[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(known)}")
        for name, value in changes.items():
            if name in ("fail_emails", "not_found_emails"):
                value = [str(v).strip().lower() for v in (value or [])]
            elif name in ("not_found_rate", "company_not_found_rate", "error_rate") and not 0 <= float(value) <= 1:
                raise ValueError(f"{name} is a fraction between 0 and 1, got {value}")
            elif name == "rate_limit" and value is not None and float(value) <= 0:
                raise ValueError("rate_limit must be a positive number of requests per second (or null for none)")
            setattr(self, name, value)


class ServiceState:
    """Config, the request log and the rate-limit window; shared by the app and the test/demo process."""

    def __init__(self, config: ServiceConfig | None = None) -> None:
        self.config = config or ServiceConfig()
        self.lock = threading.Lock()
        self.log: deque[dict[str, Any]] = deque(maxlen=MAX_LOG)
        self.window: deque[float] = deque()
        self.rng = random.Random(self.config.seed)

    def reset(self, config: ServiceConfig | None = None) -> None:
        with self.lock:
            self.config = config or ServiceConfig(api_key=self.config.api_key)
            self.log.clear()
            self.window.clear()
            self.rng = random.Random(self.config.seed)

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """Logged requests (``t`` = arrival on ``time.monotonic()``), optionally only those to ``path``."""
        with self.lock:
            return [dict(r) for r in self.log if path is None or r["path"] == path]

    def admit(self, now: float) -> float | None:
        """Count a request against the rate limit: ``None`` if admitted, else the seconds to wait."""
        limit = self.config.rate_limit
        if not limit:
            return None
        window = self.window
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) < limit:
            window.append(now)
            return None
        return max(window[0] + 1.0 - now, 0.0)


# -- deterministic data ------------------------------------------------------------------------------------
def company_for(domain: str, config: ServiceConfig) -> dict[str, Any] | None:
    domain = domain.strip().lower()
    if not domain or "." not in domain or domain in FREE_MAIL:
        return None
    if _fraction("company-missing", domain) < config.company_not_found_rate:
        return None
    h = _digest("company", domain)
    industry, sector = _INDUSTRIES[h % len(_INDUSTRIES)]
    employees = [8, 40, 180, 900, 3200, 12000][(h >> 8) % 6] + (h >> 16) % 7
    city, country = _PLACES[(h >> 24) % len(_PLACES)]
    label = domain.split(".")[0]
    return {
        "id": f"co_{h % 10**10:010d}", "name": label.replace("-", " ").title(), "domain": domain,
        "category": {"industry": industry, "sector": sector},
        "metrics": {"employees": employees, "employeesRange": next(r for cap, r in _RANGES if employees <= cap)},
        "geo": {"city": city, "country": country}, "foundedYear": 1950 + (h >> 32) % 72,
        "tags": sorted({_TAGS[(h >> 40) % len(_TAGS)], _TAGS[(h >> 44) % len(_TAGS)]}),
    }  # fmt: skip


def person_for(email: str, config: ServiceConfig) -> dict[str, Any] | None:
    email = email.strip().lower()
    if "@" not in email or email in config.not_found_emails:
        return None
    if _fraction("person-missing", email) < config.not_found_rate:
        return None
    local = email.split("@", 1)[0].split("+", 1)[0]
    parts = [p for p in "".join(c if c.isalpha() else " " for c in local).split() if p]
    h = _digest("person", email)
    given = parts[0].title() if parts else "Alex"
    family = parts[1].title() if len(parts) > 1 else _FAMILY[h % len(_FAMILY)]
    title, role, seniority = _TITLES[(h >> 8) % len(_TITLES)]
    city, country = _PLACES[(h >> 16) % len(_PLACES)]
    return {
        "id": f"pe_{h % 10**10:010d}", "email": email,
        "name": {"given": given, "family": family, "full": f"{given} {family}"},
        "employment": {"title": title, "role": role, "seniority": seniority},
        "geo": {"city": city, "country": country},
        "linkedin": {"handle": f"in/{given.lower()}-{family.lower()}-{h % 1000:03d}"},
    }  # fmt: skip


def person_answer(email: str, config: ServiceConfig) -> dict[str, Any] | None:
    person = person_for(email, config)
    if person is None:
        return None
    return {"email": person["email"], "person": person, "company": company_for(email.rsplit("@", 1)[1], config)}


# -- app ---------------------------------------------------------------------------------------------------
def create_app(state: ServiceState) -> Any:
    """The Starlette app; mountable under a prefix of another app (``Mount("/enrichment", app)``)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status, headers=headers)

    async def gate(request: Request, lookups: int, key: str) -> tuple[JSONResponse | None, dict[str, Any]]:
        """Auth, rate limit and injected errors; logs the request. No response lets the lookup proceed."""
        now = time.monotonic()
        cfg = state.config
        supplied = request.headers.get("authorization", "")
        supplied = supplied[7:] if supplied.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
        with state.lock:
            entry = {"t": now, "method": request.method, "path": request.url.path, "lookups": lookups, "key": key}
            state.log.append(entry)
            if supplied != cfg.api_key:
                entry["status"] = 401
                return error(401, "auth_invalid", "missing or unknown API key: send Authorization: Bearer <key>"), entry
            wait = state.admit(now)
            if wait is not None:
                entry["status"] = 429
                seconds = cfg.retry_after if cfg.retry_after is not None else max(1, math.ceil(wait))
                headers = {"Retry-After": f"{seconds:g}", "X-RateLimit-Limit": f"{cfg.rate_limit:g}"}
                return error(429, "rate_limit", f"more than {cfg.rate_limit:g} requests per second", headers), entry
            if cfg.error_rate and state.rng.random() < cfg.error_rate:
                entry["status"] = cfg.error_status
                return error(cfg.error_status, "unavailable", "the service is temporarily unavailable"), entry
            if key and key.lower() in cfg.fail_emails:
                entry["status"] = cfg.error_status
                return error(cfg.error_status, "internal", "lookup failed"), entry
            entry["status"] = 200
        if cfg.latency:
            await asyncio.sleep(cfg.latency)
        return None, entry

    def set_status(entry: dict[str, Any], status: int) -> None:
        with state.lock:
            entry["status"] = status

    async def find_person(request: Request):
        email = request.query_params.get("email", "").strip()
        if not email:
            return error(422, "invalid_request", "query parameter 'email' is required")
        denied, entry = await gate(request, 1, email)
        if denied is not None:
            return denied
        answer = person_answer(email, state.config)
        if answer is None:
            set_status(entry, 404)
            return error(404, "unknown_record", f"no person found for {email}")
        return JSONResponse(answer)

    async def find_company(request: Request):
        domain = request.query_params.get("domain", "").strip()
        if not domain:
            return error(422, "invalid_request", "query parameter 'domain' is required")
        denied, entry = await gate(request, 1, domain)
        if denied is not None:
            return denied
        company = company_for(domain, state.config)
        if company is None:
            set_status(entry, 404)
            return error(404, "unknown_record", f"no company found for {domain}")
        return JSONResponse(company)

    async def bulk(request: Request):
        try:
            body = await request.json()
        except ValueError:
            return error(400, "invalid_json", 'the body must be JSON: {"lookups": [{"email": ...}]}')
        lookups = body.get("lookups") if isinstance(body, dict) else None
        if not isinstance(lookups, list) or not all(isinstance(x, dict) for x in lookups):
            return error(422, "invalid_request", 'body must be {"lookups": [{"email": ...}, ...]}')
        if len(lookups) > MAX_BULK:
            return error(413, "too_many", f"{len(lookups)} lookups; at most {MAX_BULK} per request")
        denied, _ = await gate(request, len(lookups), "")
        if denied is not None:
            return denied
        cfg = state.config
        results = []
        for item in lookups:
            email = str(item.get("email") or "").strip()
            if email.lower() in cfg.fail_emails:
                results.append({"input": {"email": email}, "person": None, "company": None, "error": "lookup failed"})
                continue
            answer = person_answer(email, cfg) if email else None
            results.append({"input": {"email": email}, "person": answer and answer["person"],
                            "company": answer and answer["company"], "error": None})  # fmt: skip
        return JSONResponse({"results": results})

    async def admin_requests(request: Request):
        return JSONResponse({"requests": state.requests(request.query_params.get("path"))})

    async def admin_config(request: Request):
        if request.method == "POST":
            try:
                changes = await request.json()
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object of settings")
                with state.lock:
                    state.config.update(changes)
                    state.rng = random.Random(state.config.seed)
            except ValueError as err:
                return error(400, "invalid_config", str(err))
        settings = asdict(state.config)
        settings.pop("api_key")
        return JSONResponse(settings)

    async def admin_reset(request: Request):
        state.reset()
        return JSONResponse({"reset": True})

    return Starlette(routes=[
        Route("/v1/people/find", find_person, methods=["GET"]),
        Route("/v1/companies/find", find_company, methods=["GET"]),
        Route("/v1/people/bulk", bulk, methods=["POST"]),
        Route("/_service/requests", admin_requests, methods=["GET"]),
        Route("/_service/config", admin_config, methods=["GET", "POST"]),
        Route("/_service/reset", admin_reset, methods=["POST"]),
    ])  # fmt: skip


class EnrichmentService:
    """The service on a real loopback socket in a background thread; a context manager.

    ``.url``, ``.api_key``, ``.state`` (config, request log), ``.configure(**settings)``, ``.reset()``.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, config: ServiceConfig | None = None) -> None:
        self.host = host
        self.port = port
        self.state = ServiceState(config)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._socket: Any = None

    @property
    def url(self) -> str:
        if self._socket is None:
            raise RuntimeError("the enrichment service is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def api_key(self) -> str:
        return self.state.config.api_key

    def configure(self, **settings: Any) -> None:
        with self.state.lock:
            self.state.config.update(settings)

    def reset(self, **settings: Any) -> None:
        self.state.reset()
        if settings:
            self.configure(**settings)

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        return self.state.requests(path)

    def start(self) -> EnrichmentService:
        import uvicorn

        from airflow_provider_lytics.emulator.server import START_TIMEOUT, EmulatorStartError, bind_socket

        self._socket = bind_socket(self.host, self.port)
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(create_app(self.state), lifespan="off", log_config=None, log_level="warning",
                                access_log=False, timeout_graceful_shutdown=1)  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="enrichment-service", daemon=True)  # fmt: skip
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise EmulatorStartError("the enrichment service did not start; see the log above")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> EnrichmentService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM. Exit code 2 for bad arguments or an unusable port."""
    from airflow_provider_lytics.emulator.server import EmulatorStartError

    parser = argparse.ArgumentParser(description="Emulated third-party enrichment API (person/company lookups).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8791, help="TCP port, 0 for a free one (default 8791)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--rate-limit", type=float, default=None, help="requests per second before 429s")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--not-found-rate", type=float, default=0.1)
    parser.add_argument("--error-rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    config = ServiceConfig(api_key=args.api_key)
    try:
        config.update({"rate_limit": args.rate_limit, "latency": args.latency_ms / 1000.0,
                       "not_found_rate": args.not_found_rate, "error_rate": args.error_rate})  # fmt: skip
        service = EnrichmentService(host=args.host, port=args.port, config=config).start()
    except (ValueError, EmulatorStartError) as err:
        parser.print_usage()
        logging.getLogger(__name__).error("%s", err)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    logging.basicConfig(level=logging.INFO)
    logging.getLogger(__name__).info("Enrichment service on %s (API key from --api-key)", service.url)
    stop.wait()
    service.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
