"""Kill -9 an import mid-way, run it again: every row arrives exactly once (counted on the emulator)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

SCRIPT = """
import sys
from airflow_provider_lytics.operators.imports import LocalFilesToLyticsOperator
op = LocalFilesToLyticsOperator(task_id="imp", paths=sys.argv[1], stream="resume_test", checkpoint=sys.argv[2],
                                batch_rows=100, max_in_flight=1)
class TI:
    dag_id, task_id, run_id, try_number, map_index = "dag", "imp", "r", 1, -1
    def xcom_push(self, key, value): pass
op.execute({"ti": TI(), "run_id": "r"})
"""


def _rows_sent(path: Path) -> int:
    try:
        return json.loads(path.read_text())["counts"]["rows_sent"]
    except (FileNotFoundError, ValueError, KeyError):
        return 0


def test_kill_and_resume_no_duplicate_no_loss(tmp_path, emulator, lytics_conn_env):
    src = tmp_path / "users.csv"
    with src.open("w", newline="") as out:
        w = csv.writer(out)
        w.writerow(["id", "email"])
        w.writerows([i, f"u{i}@example.com"] for i in range(1000))
    ckpt = tmp_path / "ckpt" / "import.json"
    # every upload waits 0.3 s before the emulator reads it, so the kill lands between acknowledged batches
    rule = {"route": "/collect/bulk/*", "method": "POST", "kind": "latency", "latency": 0.3, "times": 1000}
    assert requests.post(f"{emulator.url}/_emulator/faults", json=rule, timeout=10).status_code < 300
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(src), str(ckpt)], env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while _rows_sent(ckpt) < 300:
            assert proc.poll() is None, "the import finished or died before it could be killed"
            assert time.monotonic() < deadline, "no progress in the checkpoint"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    acknowledged = _rows_sent(ckpt)
    assert 300 <= acknowledged < 1000
    requests.delete(f"{emulator.url}/_emulator/faults", timeout=10)
    time.sleep(0.5)  # let the emulator finish (or drop) the request the killed process had open

    from airflow_provider_lytics.operators.imports import LocalFilesToLyticsOperator

    class TI:  # the retry: same task instance, next try (takes over the killed try's checkpoint lease at once)
        dag_id, task_id, run_id, try_number, map_index = "dag", "imp", "r", 2, -1

        def xcom_push(self, key, value):
            pass

    op = LocalFilesToLyticsOperator(task_id="imp", paths=str(src), stream="resume_test", checkpoint=str(ckpt),
                                    batch_rows=100, max_in_flight=1)  # fmt: skip
    result = op.execute({"ti": TI(), "run_id": "r"})
    assert result["skipped_acknowledged"] == acknowledged
    assert result["rows_sent"] == 1000
    assert emulator.backend.store.stream_event_count("resume_test") == 1000  # no duplicate, no lost row
    assert result["possible_duplicates"] <= 100  # at most the batch that was in flight at the kill, reported
    assert not ckpt.exists()  # removed after success
    assert not ckpt.with_name("import.json.lease").exists()  # and the lease released
