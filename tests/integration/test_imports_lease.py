"""Two imports sharing one checkpoint (two DAGs, same checkpoint file) over real HTTP to the emulator: the second
does not "resume" the first one's work while it runs; after the first dies (kill -9), its stale lease is taken
over and every row arrives exactly once (issue 14 item 9)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from airflow_provider_lytics.imports.lease import ImportLeaseError
from airflow_provider_lytics.operators.imports import LocalFilesToLyticsOperator

SCRIPT = """
import sys
from airflow_provider_lytics.operators.imports import LocalFilesToLyticsOperator
class TI:
    dag_id, task_id, run_id, try_number, map_index = "dag_a", "imp", "run_a", 1, -1
    def xcom_push(self, key, value): pass
op = LocalFilesToLyticsOperator(task_id="imp", paths=sys.argv[1], stream="lease_test", checkpoint=sys.argv[2],
                                batch_rows=100, checkpoint_lease_ttl=float(sys.argv[3]))
op.execute({"ti": TI(), "run_id": "run_a"})
"""


class TI:
    dag_id, task_id, run_id, try_number, map_index = "dag_b", "imp", "run_b", 1, -1

    def xcom_push(self, key, value):
        pass


def _rows_sent(path: Path) -> int:
    try:
        return json.loads(path.read_text())["counts"]["rows_sent"]
    except (FileNotFoundError, ValueError, KeyError):
        return 0


@pytest.fixture
def shared(tmp_path, emulator):
    src = tmp_path / "users.csv"
    with src.open("w", newline="") as out:
        w = csv.writer(out)
        w.writerow(["id", "email"])
        w.writerows([i, f"u{i}@example.com"] for i in range(1000))
    rule = {"route": "/collect/bulk/*", "method": "POST", "kind": "latency", "latency": 0.3, "times": 1000}
    assert requests.post(f"{emulator.url}/_emulator/faults", json=rule, timeout=10).status_code < 300
    yield src, tmp_path / "ckpt" / "import.json"
    requests.delete(f"{emulator.url}/_emulator/faults", timeout=10)


def _start_first(src: Path, ckpt: Path, ttl: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(src), str(ckpt), str(ttl)], env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 600  # a hang guard only, generous for loaded machines
    while _rows_sent(ckpt) < 200:
        assert proc.poll() is None, "the first import finished or died too early"
        assert time.monotonic() < deadline, "no progress in the checkpoint"
        time.sleep(0.02)
    return proc


def _second(src: Path, ckpt: Path, **kw) -> dict:
    op = LocalFilesToLyticsOperator(task_id="imp", paths=str(src), stream="lease_test", checkpoint=str(ckpt),
                                    batch_rows=100, **kw)  # fmt: skip
    return op.execute({"ti": TI(), "run_id": "run_b"})


def test_second_import_does_not_resume_a_live_one(shared, emulator, lytics_conn_env):
    src, ckpt = shared
    first = _start_first(src, ckpt, ttl=120)
    try:
        with pytest.raises(ImportLeaseError, match=r"in use by another run: dag 'dag_a' task 'imp' run 'run_a' try 1"):
            _second(src, ckpt, checkpoint_lease_wait=0)
        assert first.wait(timeout=120) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert emulator.backend.store.stream_event_count("lease_test") == 1000  # sent once, by the first run only
    assert not ckpt.exists() and not ckpt.with_name("import.json.lease").exists()


def test_stale_lease_of_a_killed_import_is_taken_over(shared, emulator, lytics_conn_env):
    src, ckpt = shared
    first = _start_first(src, ckpt, ttl=3)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    acknowledged = _rows_sent(ckpt)
    requests.delete(f"{emulator.url}/_emulator/faults", timeout=10)
    time.sleep(0.5)  # let the emulator finish (or drop) the request the killed process had open
    result = _second(src, ckpt, checkpoint_lease_wait=60)  # waits until the dead holder's lease expires
    assert result["skipped_acknowledged"] == acknowledged and result["rows_sent"] == 1000
    assert emulator.backend.store.stream_event_count("lease_test") == 1000
    assert not ckpt.with_name("import.json.lease").exists()
