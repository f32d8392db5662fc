"""The one-time import DAG run by ``airflow dags test`` against a served emulator: the dry run, then the load, with
the checkpoint in Airflow 3.3's task state store (Airflow Variable fallback on older versions)."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests

from tests.integration.airflow_cli import BIN, airflow_version, migrated_env

pytestmark = pytest.mark.slow


def test_one_time_import_dag(tmp_path, served_emulator):
    data = tmp_path / "in"
    data.mkdir()
    rows = ["id,email,updated_at"] + [f"{i},u{i}@example.com,2026-11-2{i % 9}T10:00:00Z" for i in range(500)]
    (data / "customers_a.csv").write_text("\n".join(rows) + "\n")
    (data / "customers_b.csv").write_text("id,email,updated_at\n900,x@example.com,2026-11-01T00:00:00Z\n901\n")
    conn = {"conn_type": "lytics", "host": served_emulator.url, "password": served_emulator.token,
            "extra": {"bulk_url": served_emulator.url}}  # fmt: skip
    env = migrated_env(tmp_path / "home", conn)
    conf = json.dumps({"input_glob": str(data / "customers*.csv"), "quarantine_dir": str(tmp_path / "q")})
    run = subprocess.run([str(BIN / "airflow"), "dags", "test", "lytics_import_one_time", "-c", conf], env=env,
                         capture_output=True, text=True, timeout=240)  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "Dry run: Lytics would accept 500 of 500 sample rows" in out, out[-3000:]
    assert "2 files, 502 rows read, 501 sent (501 accepted by Lytics" in out, out[-3000:]
    if airflow_version() >= (3, 3):
        assert "checkpoints in Airflow task state store" in out
    quarantine = next((tmp_path / "q").iterdir())
    assert json.loads(quarantine.read_text())["line"] == 3
    streams = requests.get(
        f"{served_emulator.url}/api/schema/_streams", headers={"Authorization": served_emulator.token}, timeout=10
    ).json()["data"]
    assert served_emulator.token not in out
    assert any("crm_customers" in json.dumps(s) for s in streams)
