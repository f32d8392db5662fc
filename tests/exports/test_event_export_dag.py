"""The hourly raw event export example DAG run twice by ``airflow dags test`` against a served emulator: each run
exports the page views it recorded, the second continues from the first's watermark and no event is written
twice."""

from __future__ import annotations

import gzip
import json
import subprocess

import pytest

from tests.integration.airflow_cli import BIN, migrated_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_event_export_dag_runs_twice_without_duplicates(tmp_path, served_emulator):
    conn = {"conn_type": "lytics", "host": served_emulator.url, "password": served_emulator.token,
            "extra": {"bulk_url": served_emulator.url}}  # fmt: skip
    env = migrated_env(tmp_path / "home", conn)
    out_dir = tmp_path / "events"
    for _ in (1, 2):
        done = subprocess.run([str(BIN / "airflow"), "dags", "test", "lytics_event_export", "-c",
                               json.dumps({"results_dir": str(out_dir)})], env=env, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        log = done.stdout + done.stderr
        assert done.returncode == 0, log[-3000:]
        assert served_emulator.token not in log
    data = sorted(out_dir.glob("web_events_*.ndjson.gz"))
    manifests = sorted(out_dir.glob("web_events_*manifest.json"))
    assert len(data) == 2 and len(manifests) == 2
    first, second = (json.loads(m.read_text()) for m in manifests)
    assert first["run_kind"] == "first" and second["run_kind"] == "incremental"
    assert second["previous_watermark"] == first["watermark"]
    events = [json.loads(line) for f in data for line in gzip.decompress(f.read_bytes()).splitlines()]
    assert len(events) == 24 == len({e["_event_id"] for e in events})  # 12 page views per run, each once
    assert (out_dir / ".lytics_export_state" / "web_events_hourly.state.sqlite.gz").exists()
