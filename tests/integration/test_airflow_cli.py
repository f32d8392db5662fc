"""The provider as an Airflow user meets it: listed by ``airflow providers list``, and a ``lytics`` connection
pointing at a running ``lytics-emulator serve`` passes ``airflow connections test``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.fixture
def served_emulator():
    proc = subprocess.Popen(
        [str(BIN / "lytics-emulator"), "serve", "--port", "0", "--token", "cli-test-token"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, f"lytics-emulator serve did not print its URL: {line!r}"
        yield match.group(0)
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0, "lytics-emulator serve must exit cleanly on SIGTERM"


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
    conn = {"conn_type": "lytics", "host": served_emulator, "password": "cli-test-token"}
    env = {"AIRFLOW_CONN_LYTICS_DEFAULT": json.dumps(conn), "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
    result = _airflow(["connections", "test", "lytics_default"], tmp_path, env)
    assert "Connection success!" in result.stdout, result.stdout + result.stderr
    assert "cli-test-token" not in result.stdout + result.stderr

    bad = {**conn, "password": "not-the-token"}
    result = _airflow(
        ["connections", "test", "lytics_default"], tmp_path, {**env, "AIRFLOW_CONN_LYTICS_DEFAULT": json.dumps(bad)}
    )
    assert "Connection success!" not in result.stdout
    assert "401" in result.stdout + result.stderr
