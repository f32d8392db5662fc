"""The provider as an Airflow user meets it: found by Airflow's providers manager (what ``airflow providers list``
prints), and a ``lytics`` connection pointing at a running ``lytics-emulator serve`` passes ``airflow connections
test``. Only the connection test goes through the real CLI (one subprocess, 10-30 s of Airflow start-up); the rest
calls the same Airflow code in-process, where a subprocess would prove nothing more."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def _airflow(args: list[str], tmp_path: Path, extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow_home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        **extra_env,
    }
    return subprocess.run([str(BIN / "airflow"), *args], env=env, capture_output=True, text=True, timeout=300)


def test_airflow_lists_the_provider():
    from airflow.providers_manager import ProvidersManager

    providers = ProvidersManager().providers  # the entry points `airflow providers list` reads
    assert "airflow-provider-lytics" in providers
    assert "lytics" in ProvidersManager().hooks  # the connection type the UI offers


def test_connection_to_served_emulator_passes_airflow_connections_test(tmp_path, served_emulator, monkeypatch):
    conn = {"conn_type": "lytics", "host": served_emulator.url, "password": served_emulator.token}
    env = {"AIRFLOW_CONN_LYTICS_DEFAULT": json.dumps(conn), "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
    result = _airflow(["connections", "test", "lytics_default"], tmp_path, env)
    assert "Connection success!" in result.stdout, result.stdout + result.stderr
    assert served_emulator.token not in result.stdout + result.stderr

    # A bad token: what `connections test` and the UI's Test button call, in-process.
    from airflow.models.connection import Connection

    bad_json = json.dumps({**conn, "password": "not-the-token"})
    monkeypatch.setenv("AIRFLOW_CONN_LYTICS_DEFAULT", bad_json)  # the hook looks its connection up by id
    bad = Connection.from_json(bad_json, conn_id="lytics_default")
    ok, message = bad.test_connection()
    assert not ok and "401" in message, message
    assert "not-the-token" not in message
