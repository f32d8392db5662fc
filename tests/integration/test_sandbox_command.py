"""``lytics-emulator sandbox`` as the README's "Run an example DAG yourself" uses it: a real subprocess that writes
the sample files and the connections into Airflow's metadata DB, then ``airflow dags test`` of an example DAG that
needs the Lytics, SFTP and PGP connections and a partner file on SFTP; at SIGTERM it removes what it wrote."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.airflow_cli import BIN, migrated_home

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

EXAMPLE_CONN_IDS = {"lytics_default", "lytics_sftp", "partner_sftp", "lytics_pgp", "partner_pgp", "enrichment_api",
                    "lytics_alerts_webhook"}  # fmt: skip


def _conn_ids(home: Path) -> set[str]:
    with sqlite3.connect(home / "airflow.db") as db:
        return {row[0] for row in db.execute("select conn_id from connection")}


def _wait_ready(proc: subprocess.Popen, timeout: float = 240) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"sandbox exited early ({proc.wait()}):\n" + "".join(lines))
        lines.append(line)
        if line.startswith("sandbox ready"):
            return lines
    raise AssertionError("sandbox not ready in time:\n" + "".join(lines))


def test_sandbox_command_prepares_an_example_dag_run_from_the_metadata_db(tmp_path):
    home = tmp_path / "home"
    env = migrated_home(home)
    data, env_file = tmp_path / "data", tmp_path / "sandbox.env"
    proc = subprocess.Popen(
        [str(BIN / "lytics-emulator"), "sandbox", "--free-ports", "--users", "200", "--rows", "300",
         "--data-dir", str(data), "--env-file", str(env_file), "--airflow-connections"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        printed = "".join(_wait_ready(proc))
        assert (data / "customers.csv").read_text().count("\n") == 301
        assert (data / "import" / "customers_extra.csv").exists()
        assert env_file.stat().st_mode & 0o777 == 0o600
        assert _conn_ids(home) >= EXAMPLE_CONN_IDS
        secrets = re.findall(r"^export AIRFLOW_CONN_LYTICS_DEFAULT='(.*)'$", env_file.read_text(), re.M)
        token = json.loads(secrets[0])["password"]
        assert token not in printed and "PRIVATE KEY" not in printed

        # No AIRFLOW_CONN_* in this environment: every connection comes from the metadata DB.
        assert not [name for name in env if name.startswith("AIRFLOW_CONN_")]
        conf = json.dumps({"work_dir": str(tmp_path / "round_trip")})
        run = subprocess.run([str(BIN / "airflow"), "dags", "test", "lytics_pgp_sftp_round_trip", "-c", conf],
                             env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
        out = run.stdout + run.stderr
        assert run.returncode == 0, out[-4000:]
        assert re.search(r"dag_id=lytics_pgp_sftp_round_trip.*state=success", out), out[-3000:]
        assert token not in out
        assert list((tmp_path / "round_trip").rglob("loyalty_gold_*"))  # the audience export it uploaded
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, rest
    assert not env_file.exists()  # its secrets belonged to the stopped servers
    assert not EXAMPLE_CONN_IDS & _conn_ids(home)
