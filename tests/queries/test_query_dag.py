"""The LQL-as-code example DAG run by ``airflow dags test`` against a served emulator: the query is created, its
sample tests pass, and the imported rows become the query's profile fields (the rerun without changes sending
nothing is covered in test_query_sync.py)."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests

from tests.integration.airflow_cli import BIN, migrated_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _api(emulator, path: str) -> dict:
    return requests.get(f"{emulator.url}{path}", headers={"Authorization": emulator.token}, timeout=10).json()


def test_query_as_code_dag_maps_imported_rows(tmp_path, served_emulator):
    conn = {"conn_type": "lytics", "host": served_emulator.url, "password": served_emulator.token,
            "extra": {"bulk_url": served_emulator.url}}  # fmt: skip
    env = migrated_env(tmp_path / "home", conn)
    run = subprocess.run([str(BIN / "airflow"), "dags", "test", "lytics_query_as_code"], env=env,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "'created': ['web_orders']" in out and "2 sample tests passed" in out
    queries = _api(served_emulator, "/api/query")["data"]
    assert [q["alias"] for q in queries] == ["web_orders"]
    profile = _api(served_emulator, "/api/entity/user/email/shopper3@example.com")["data"]
    assert profile["orders"] == "3" and profile["first_order"] == "2026-10-04T10:00:00Z"
    assert "Email" not in profile and "amount" not in profile
    columns = {c["as"]: c for c in _api(served_emulator, "/api/schema/user")["data"]["columns"]}
    assert columns["total_spent"]["op"] == "sum" and columns["total_spent"]["froms"] == ["web_orders"]
    assert served_emulator.token not in json.dumps(out)
