"""Shared fixtures: one in-process Lytics emulator per test session, reset before each test that asks for it.

Imports stay light here (no starlette/uvicorn at collection time); the server loads them when first used.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_lytics.emulator.server import EmulatorServer

#: Airflow connection id the provider uses by default, and the env var that defines it in tests.
LYTICS_CONN_ENV = "AIRFLOW_CONN_LYTICS_DEFAULT"


def lytics_connection(url: str, token: str, bulk_url: str | None = None) -> dict:
    """The Airflow connection (JSON form) that points the Lytics hook at ``url``. The one place to edit."""
    return {"conn_type": "lytics", "host": url, "password": token, "extra": {"bulk_url": bulk_url or url}}


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    """The emulator on a free loopback port for the whole session, with fast job timings."""
    from airflow_provider_lytics.emulator.cli import job_timings
    from airflow_provider_lytics.emulator.server import EmulatorServer

    with EmulatorServer(job_timings=job_timings("fast")) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> EmulatorServer:
    """The session emulator with empty data, no faults and zeroed stats (``.url``, ``.token``, ``.backend``)."""
    from airflow_provider_lytics.emulator.app import reset_backend

    reset_backend(emulator_server.backend)
    emulator_server.stats.clear()
    return emulator_server


@pytest.fixture
def lytics_conn_env(monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer) -> dict:
    """Define ``lytics_default`` through ``AIRFLOW_CONN_LYTICS_DEFAULT``, pointing at the emulator."""
    conn = lytics_connection(emulator.url, emulator.token, emulator.bulk_url)
    monkeypatch.setenv(LYTICS_CONN_ENV, json.dumps(conn))
    return conn


class ShellProbe:
    """Stand-in Lytics routes for testing the emulator shell alone; records every request a route processed."""

    def __init__(self) -> None:
        self.processed: list[tuple[str, str, bytes]] = []

    def routes(self) -> list:
        from starlette.routing import Route

        from airflow_provider_lytics.emulator.envelope import v1_ok, v2_ok

        async def collect(request):
            body = await request.body()
            self.processed.append((request.method, request.url.path, body))
            count = body.count(b"\n") + 1 if body else 0
            return v1_ok({"message_count": count, "rejected_count": 0, "dryrun": "dryrun" in request.query_params})

        async def v2_thing(request):
            self.processed.append((request.method, request.url.path, b""))
            return v2_ok({"account": request.state.account.id})

        async def boom(request):
            raise RuntimeError("route bug")

        return [
            Route("/api/boom", boom, methods=["GET"]),
            Route("/collect/json/{stream}", collect, methods=["POST"]),
            Route("/v2/thing/{id}", v2_thing, methods=["GET"]),
        ]


@pytest.fixture(scope="session")
def emulator_shell_server() -> Iterator[EmulatorServer]:
    """The emulator shell (auth, faults, stats, admin, accounts) over stand-in routes, independent of the data plane."""
    from airflow_provider_lytics.emulator.backend import DEFAULT_ACCOUNT, Backend
    from airflow_provider_lytics.emulator.faults import FaultInjector
    from airflow_provider_lytics.emulator.persistence import StateDB
    from airflow_provider_lytics.emulator.server import EmulatorServer

    class _Idle:
        def close(self) -> None:
            """Nothing to release."""

        def reset(self) -> None:
            """Nothing to forget."""

    backend = Backend(
        db=StateDB(), store=_Idle(), jobs=_Idle(), faults=FaultInjector(), tokens={"shell-token": DEFAULT_ACCOUNT}
    )
    probe = ShellProbe()
    server = EmulatorServer(backend=backend, routes=probe.routes())
    server.probe = probe  # type: ignore[attr-defined]
    with server:
        yield server
    backend.close()


@pytest.fixture
def emulator_shell(emulator_shell_server: EmulatorServer) -> EmulatorServer:
    """The shell server with no faults, zeroed stats and an empty probe record."""
    emulator_shell_server.backend.faults.clear()
    emulator_shell_server.stats.clear()
    emulator_shell_server.probe.processed.clear()  # type: ignore[attr-defined]
    return emulator_shell_server


@dataclass(frozen=True)
class ServedEmulator:
    """A ``lytics-emulator serve`` subprocess: the URL it printed and the token it accepts."""

    url: str
    token: str


@pytest.fixture
def served_emulator(request: pytest.FixtureRequest) -> Iterator[ServedEmulator]:
    """``lytics-emulator serve`` as users run it, in its own process on a free port; must exit 0 on SIGTERM.

    Extra ``serve`` arguments: ``@pytest.mark.parametrize("served_emulator", [[...]], indirect=True)``.
    """
    token = "served-emulator-token"
    cli = str(Path(sys.executable).parent / "lytics-emulator")
    extra = list(getattr(request, "param", None) or [])
    proc = subprocess.Popen([cli, "serve", "--port", "0", "--token", token, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, f"lytics-emulator serve did not print its URL: {line!r}"
        yield ServedEmulator(url=match.group(0), token=token)
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0, "lytics-emulator serve must exit cleanly on SIGTERM"


@pytest.fixture
def variables(monkeypatch):
    """Airflow Variables in memory: ``Variable.get``/``set`` read and write the returned dict."""
    from airflow.providers.common.compat.sdk import Variable

    store: dict[str, str] = {}
    monkeypatch.setattr(Variable, "get", classmethod(lambda cls, key, default=None, **kw: store.get(key, default)))
    monkeypatch.setattr(Variable, "set", classmethod(lambda cls, key, value, *a, **kw: store.__setitem__(key, value)))
    return store
