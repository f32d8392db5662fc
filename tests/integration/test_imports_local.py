"""Imports over real HTTP against the emulator: formats, compression, quarantine, thresholds, faults, resume."""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from pathlib import Path

import pytest
import requests

from airflow_provider_lytics.errors import LyticsArgumentError
from airflow_provider_lytics.imports.checkpoint import CheckpointWriteError
from airflow_provider_lytics.imports.runner import ImportBatchError, ImportThresholdError
from airflow_provider_lytics.operators.imports import DataFrameToLyticsOperator, LocalFilesToLyticsOperator

STREAM = "imp_test"


class FakeTI:
    def __init__(self) -> None:
        self.xcom: dict[str, object] = {}
        self.dag_id, self.task_id, self.run_id, self.map_index = "dag", "task", "run1", -1

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value


class DictStore:
    """Stands in for Airflow 3.3's task_state_store accessor (same get/set/delete API)."""

    def __init__(self) -> None:
        self.data: dict[str, object] = {}
        self.sets = 0

    def get(self, key, default=None):
        return json.loads(json.dumps(self.data.get(key, default)))

    def set(self, key, value, **_):
        self.sets += 1
        self.data[key] = json.loads(json.dumps(value))

    def delete(self, key):
        self.data.pop(key, None)


def _context(store: DictStore | None = None) -> dict:
    ctx = {"ti": FakeTI(), "run_id": "run1"}
    if store is not None:
        ctx["task_state_store"] = store
    return ctx


def _events(emulator, stream: str = STREAM) -> int:
    return emulator.backend.store.stream_event_count(stream)


def _write_csv(path: Path, rows: int, *, delimiter: str = ",") -> None:
    with path.open("w", newline="") as out:
        w = csv.writer(out, delimiter=delimiter)
        w.writerow(["id", "email", "name"])
        for i in range(rows):
            w.writerow([i, f"u{i}@example.com", f"User {i}"])


def _op(paths, **kw) -> LocalFilesToLyticsOperator:
    kw.setdefault("stream", STREAM)
    kw.setdefault("checkpoint", "none")
    return LocalFilesToLyticsOperator(task_id="imp", paths=paths, **kw)


@pytest.mark.parametrize("compress", ["none", "gzip", "zip"])
@pytest.mark.parametrize("fmt", ["csv", "tsv", "ndjson", "json"])
def test_each_format_and_compression(tmp_path, emulator, lytics_conn_env, fmt, compress):
    rows = [{"id": str(i), "email": f"u{i}@example.com", "name": f"Zoë {i}"} for i in range(250)]
    if fmt in ("csv", "tsv"):
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["id", "email", "name"], delimiter="," if fmt == "csv" else "\t")
        w.writeheader()
        w.writerows(rows)
        data, name = buf.getvalue().encode(), f"users.{fmt}"
    elif fmt == "ndjson":
        data, name = "".join(json.dumps(r) + "\n" for r in rows).encode(), "users.ndjson"
    else:
        data, name = json.dumps(rows, indent=2).encode(), "users.json"
    path = tmp_path / name
    if compress == "gzip":
        path = tmp_path / (name + ".gz")
        path.write_bytes(gzip.compress(data))
    elif compress == "zip":
        path = tmp_path / (name + ".zip")
        with zipfile.ZipFile(path, "w") as z:
            z.writestr(name, data)
    else:
        path.write_bytes(data)
    result = _op(str(path), delimiter="\t" if fmt == "tsv" else ",", batch_rows=100).execute(_context())
    assert result["rows_read"] == 250 and result["rows_sent"] == 250 and result["accepted"] == 250
    assert result["batches_sent"] == 3 and result["rejected_here"] == 0
    assert _events(emulator) == 250


def test_encoding_constants_and_glob(tmp_path, emulator, lytics_conn_env):
    (tmp_path / "a.csv").write_bytes("id;name\n1;Müller\n2;Gómez\n".encode("latin-1"))
    (tmp_path / "b.csv").write_bytes("id;name\n3;Ødegaard\n".encode("latin-1"))
    (tmp_path / "skip.csv.part").write_bytes(b"id;name\n9;partial\n")
    op = _op(str(tmp_path / "*.csv*"), encoding="latin-1", delimiter=";", constant_fields={"source": "crm"})
    result = op.execute(_context())
    assert result["files"] == 2 and result["accepted"] == 3
    profile = requests.get(
        f"{emulator.url}/api/schema/_streams", headers={"Authorization": emulator.token}, timeout=10
    ).json()
    assert any(s.get("stream") == STREAM or s.get("name") == STREAM for s in profile["data"])


def test_malformed_rows_quarantined_with_line_numbers(tmp_path, emulator, lytics_conn_env):
    src = tmp_path / "mixed.csv"
    src.write_bytes(
        b"id,email,note\n"
        b"1,a@x.com,ok\n"
        b"2,b@x.com\n"  # line 3: ragged
        b'3,c@x.com,"multi\nline"\n'  # lines 4-5: fine
        b"4,d@x.com,\xff bad\n"  # line 6: bad utf-8
        b"5,e@x.com," + b"x" * 17000 + b"\n"  # line 7: too large
        b'6,f@x.com,"unclosed\n'  # line 8: strict CSV error at the end
    )
    qpath = tmp_path / "q" / "rejects.ndjson"
    result = _op(str(src), quarantine_path=str(qpath)).execute(_context())
    assert result["rows_sent"] == 2 and result["rejected_here"] == 4
    rejects = [json.loads(line) for line in qpath.read_text().splitlines()]
    assert [(r["line"], r["source"]) for r in rejects] == [(3, str(src)), (6, str(src)), (7, str(src)), (8, str(src))]
    assert "2 fields" in rejects[0]["reason"] and "utf-8" in rejects[1]["reason"]
    assert "16384" in rejects[2]["reason"] and rejects[0]["raw"] == "2,b@x.com"
    assert _events(emulator) == 2


def test_ndjson_rejects_nested_objects_in_arrays_and_bad_json(tmp_path, emulator, lytics_conn_env):
    src = tmp_path / "events.ndjson"
    src.write_text('{"a":1}\n{"a":[{"x":1}]}\n{oops\n\n[1,2]\n{"ok":{"deep":[1,2]}}\n')
    qpath = tmp_path / "rejects.ndjson.gz"
    result = _op(str(src), quarantine_path=str(qpath)).execute(_context())
    assert result["rows_sent"] == 2 and result["rejected_here"] == 3
    lines = [json.loads(x)["line"] for x in gzip.decompress(qpath.read_bytes()).decode().splitlines()]
    assert lines == [2, 3, 5]


def test_threshold_fails_after_quarantine_written(tmp_path, emulator, lytics_conn_env):
    src = tmp_path / "bad.csv"
    src.write_text("id,name\n1,a\n2\n3\n4,d\n")
    qpath = tmp_path / "q.ndjson"
    ti_ctx = _context()
    with pytest.raises(ImportThresholdError, match="over the threshold"):
        _op(str(src), quarantine_path=str(qpath), max_rejected_fraction=0.25).execute(ti_ctx)
    assert len(qpath.read_text().splitlines()) == 2
    assert ti_ctx["ti"].xcom["lytics_import_counts"]["rejected_here"] == 2
    result = _op(str(src), max_rejected_rows=2).execute(_context())  # exactly at the limit passes
    assert result["rejected_here"] == 2


def test_bad_configuration_fails_at_construction():
    with pytest.raises(LyticsArgumentError, match="delimiter"):
        _op("x.csv", delimiter=":")
    with pytest.raises(LyticsArgumentError, match="10 MB"):
        _op("x.csv", use_bulk_host=False, batch_bytes=20 * 1024 * 1024)
    with pytest.raises(LyticsArgumentError, match="max_rejected_fraction"):
        _op("x.csv", max_rejected_fraction=2)


def test_missing_file_says_which(tmp_path, emulator, lytics_conn_env):
    with pytest.raises(Exception, match="does not exist"):
        _op(str(tmp_path / "nope.csv")).execute(_context())


def _fault(emulator, **rule) -> None:
    r = requests.post(f"{emulator.url}/_emulator/faults", json=rule, timeout=10)
    assert r.status_code < 300, r.text


@pytest.mark.parametrize("kind", ["status429", "status503", "drop_before"])
def test_faults_every_row_arrives_without_duplicates(tmp_path, emulator, lytics_conn_env, kind):
    src = tmp_path / "u.csv"
    _write_csv(src, 1000)
    if kind == "drop_before":
        _fault(emulator, route="/collect/bulk/*", method="POST", kind="drop_before", times=2)
    else:
        _fault(emulator, route="/collect/bulk/*", method="POST", kind="status", status=int(kind[-3:]), retry_after=0,
               times=3)  # fmt: skip
    result = _op(str(src), batch_rows=200).execute(_context())
    assert result["rows_sent"] == 1000
    # drop_before looks like a lost response to the client: counted as possible duplicates, none actually happen
    assert _events(emulator) == 1000
    if kind != "drop_before":
        assert result["possible_duplicates"] == 0


def test_lost_response_duplicates_counted_exactly(tmp_path, emulator, lytics_conn_env):
    src = tmp_path / "u.csv"
    _write_csv(src, 1000)
    _fault(emulator, route="/collect/bulk/*", method="POST", kind="drop_after", times=2)
    result = _op(str(src), batch_rows=200, max_in_flight=1).execute(_context())
    assert result["rows_sent"] == 1000 and result["possible_duplicates"] == 400
    assert _events(emulator) == 1000 + result["possible_duplicates"]


def test_failed_batch_then_resume_sends_nothing_twice(tmp_path, emulator, lytics_conn_env, monkeypatch):
    from airflow_provider_lytics.client.retry import RetryPolicy
    from airflow_provider_lytics.imports.runner import ImportSettings
    from airflow_provider_lytics.imports.sender import BatchSender

    src = tmp_path / "u.csv"
    _write_csv(src, 1000)
    store = DictStore()
    orig_init = ImportSettings.__post_init__

    def fast_retries(self):
        orig_init(self)
        self.retry_policy = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01)

    monkeypatch.setattr(ImportSettings, "__post_init__", fast_retries)
    real_send = BatchSender._send
    calls = {"n": 0}

    def server_breaks_at_batch_4(self, batch):
        calls["n"] += 1
        if calls["n"] == 4:  # from the 4th batch on the server answers 500 longer than the retries last
            _fault(emulator, route="/collect/bulk/*", method="POST", kind="status", status=500, times=10)
        return real_send(self, batch)

    monkeypatch.setattr(BatchSender, "_send", server_breaks_at_batch_4)
    op = _op(str(src), batch_rows=100, max_in_flight=1, checkpoint="auto")
    with pytest.raises(ImportBatchError, match="not delivered"):
        op.execute(_context(store))
    saved = store.data["lytics_import_checkpoint"]
    assert saved["counts"]["rows_sent"] == 300 and _events(emulator) == 300
    monkeypatch.setattr(BatchSender, "_send", real_send)
    requests.delete(f"{emulator.url}/_emulator/faults", timeout=10)
    result = op.execute(_context(store))  # the retry
    assert result["rows_sent"] == 1000 and result["skipped_acknowledged"] == 300
    assert result["possible_duplicates"] == 0
    assert _events(emulator) == 1000
    assert "lytics_import_checkpoint" not in store.data  # cleared on success


class LossyStore(DictStore):
    """A task state store whose writes of the checkpoint are lost in transit (what a timed-out supervisor call
    does: the Task SDK's ``set()`` does not look at the answer), from the ``lose_from``-th write on."""

    def __init__(self, lose_from: int, lose_count: int) -> None:
        super().__init__()
        self.writes, self.kept, self.lose_from, self.lose_count = 0, 0, lose_from, lose_count

    def set(self, key, value, **kw):
        if key == "lytics_import_checkpoint":
            self.writes += 1
            if self.lose_from <= self.writes < self.lose_from + self.lose_count:
                return  # silently dropped
            self.kept += 1
        super().set(key, value, **kw)


def test_a_checkpoint_write_that_is_lost_stops_the_import_before_the_next_batch(tmp_path, emulator, lytics_conn_env):
    src = tmp_path / "u.csv"
    _write_csv(src, 1000)
    store = LossyStore(lose_from=4, lose_count=100)  # the 4th write-ahead (before batch 4) and all later ones
    op = _op(str(src), batch_rows=100, max_in_flight=1, checkpoint="auto")
    with pytest.raises(CheckpointWriteError, match="did not keep the import checkpoint"):
        op.execute(_context(store))
    saved = store.data["lytics_import_checkpoint"]
    acknowledged = saved["counts"]["rows_sent"]
    in_flight = sum(last - first + 1 for p in saved["parts"].values() for first, last in p.get("inflight", []))
    # nothing was sent that the last kept checkpoint does not know about: acknowledged, or recorded as in flight
    assert 0 < acknowledged < 1000 and _events(emulator) == acknowledged + in_flight, saved
    store.lose_count = 0
    result = op.execute(_context(store))
    assert result["skipped_acknowledged"] == acknowledged and result["possible_duplicates"] == in_flight
    assert _events(emulator) == 1000 + in_flight  # only the recorded in-flight batch twice, and counted


def test_a_checkpoint_write_lost_once_is_written_again(tmp_path, emulator, lytics_conn_env):
    src = tmp_path / "u.csv"
    _write_csv(src, 500)
    store = LossyStore(lose_from=2, lose_count=1)
    result = _op(str(src), batch_rows=100, max_in_flight=1, checkpoint="auto").execute(_context(store))
    assert result["rows_sent"] == 500 and _events(emulator) == 500
    assert store.writes == store.kept + 1  # the lost write was repeated (and read back) before the batch went


def test_dry_run_sends_sample_and_stores_nothing(tmp_path, emulator, lytics_conn_env):
    src = tmp_path / "u.csv"
    _write_csv(src, 500)
    op = _op(str(src), dry_run=True, dry_run_sample=50)
    assert op.is_dry_run and callable(op.dry_run)  # Airflow's BaseOperator.dry_run() is not shadowed
    result = op.execute(_context())
    assert result["dry_run"] and result["sample_rows"] == 50 and result["sample_accepted"] == 50
    assert result["rows_read"] == 500 and result["rows_sent"] == 0
    assert _events(emulator) == 0


def test_dataframe_import_drops_nulls(emulator, lytics_conn_env):
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"id": range(300), "score": [np.nan if i % 3 == 0 else i for i in range(300)],
                          "when": pd.Timestamp("2026-11-28")})  # fmt: skip

    def chunks():
        yield frame.iloc[:150]
        yield frame.iloc[150:]

    op = DataFrameToLyticsOperator(task_id="df", stream=STREAM, python_callable=chunks, checkpoint="none")
    result = op.execute(_context())
    assert result["rows_read"] == 300 and result["accepted"] == 300
    assert _events(emulator) == 300


def test_asset_outlet_for_literal_stream():
    op = _op("x.csv")
    assert [getattr(o, "uri", None) for o in op.outlets] == [f"lytics://stream/{STREAM}"]
    assert _op("x.csv", stream="{{ params.s }}").outlets == []


def test_templated_stream_rendered_to_a_bad_name_is_an_argument_error(tmp_path):
    op = _op(str(tmp_path / "x.csv"), stream="{{ params.s }}")  # accepted when parsed: not rendered yet
    op.stream = "crm/users"  # what the template rendered to
    with pytest.raises(LyticsArgumentError, match="stream must be a Lytics stream name"):
        op.execute(_context())
