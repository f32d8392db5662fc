"""Fixtures for the emulator's data-plane route tests: a fresh in-memory backend and a client for its routes."""

from __future__ import annotations

import types

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.testclient import TestClient

from airflow_provider_lytics.emulator import routes_data
from airflow_provider_lytics.emulator.backend import DEFAULT_ACCOUNT, Backend
from airflow_provider_lytics.emulator.persistence import StateDB
from airflow_provider_lytics.emulator.store import ProfileStore


class _AccountMiddleware:
    """Stand-in for the app's auth middleware: every request belongs to the default account."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["account"] = DEFAULT_ACCOUNT
        await self.app(scope, receive, send)


@pytest.fixture
def backend() -> Backend:
    db = StateDB(None)
    return Backend(db=db, store=ProfileStore(db), jobs=types.SimpleNamespace(), faults=types.SimpleNamespace())


@pytest.fixture
def client(backend: Backend) -> TestClient:
    """The data-plane routes (collect, segments, scans, entity, schema) on an in-process test client."""
    app = Starlette(routes=routes_data.routes(backend), middleware=[Middleware(_AccountMiddleware)])
    with TestClient(app) as test_client:
        yield test_client
