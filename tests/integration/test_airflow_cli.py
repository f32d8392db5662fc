"""The provider as an Airflow user meets it: listed by ``airflow providers list``, and a ``lytics`` connection
pointing at a running ``lytics-emulator serve`` passes ``airflow connections test``."""

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
    return subprocess.run([str(BIN / "airflow"), *args], env=env, capture_output=True, text=True, timeout=120)


def test_airflow_lists_the_provider(tmp_path):
    result = _airflow(["providers", "list"], tmp_path, {})
    assert result.returncode == 0, result.stderr
    assert "airflow-provider-lytics" in result.stdout


def test_connection_to_served_emulator_passes_airflow_connections_test(tmp_path, served_emulator):
    conn = {"conn_type": "lytics", "host": served_emulator.url, "password": served_emulator.token}
    env = {"AIRFLOW_CONN_LYTICS_DEFAULT": json.dumps(conn), "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
    result = _airflow(["connections", "test", "lytics_default"], tmp_path, env)
    assert "Connection success!" in result.stdout, result.stdout + result.stderr
    assert served_emulator.token not in result.stdout + result.stderr

    bad = {**conn, "password": "not-the-token"}
    result = _airflow(
        ["connections", "test", "lytics_default"], tmp_path, {**env, "AIRFLOW_CONN_LYTICS_DEFAULT": json.dumps(bad)}
    )
    assert "Connection success!" not in result.stdout
    assert "401" in result.stdout + result.stderr
