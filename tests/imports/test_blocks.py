"""Unit tests of the import building blocks (no network)."""

from __future__ import annotations

import gzip
import io

import pytest

from airflow_provider_lytics.imports.batching import BatchBuilder, check_batch_limits
from airflow_provider_lytics.imports.checkpoint import FileCheckpointStore, store_for_context, variable_key
from airflow_provider_lytics.imports.formats import ImportInputError, infer_format, open_parts
from airflow_provider_lytics.imports.ranges import LineRanges
from airflow_provider_lytics.imports.readers import open_rows
from airflow_provider_lytics.imports.watermark import select_new
from airflow_provider_lytics.io.sftp_select import RemoteFile


def test_line_ranges_merge_and_cursor():
    r = LineRanges([[10, 20], [1, 5]])
    r.add(6, 9)
    r.add(30, 40)
    assert r.as_list() == [[1, 20], [30, 40]]
    assert 20 in r and 25 not in r and 30 in r
    cur = r.cursor()
    assert [n for n in range(0, 45) if n in cur] == [*range(1, 21), *range(30, 41)]
    assert r.overlaps(18, 22) and not r.overlaps(21, 29)


def test_batch_builder_respects_byte_and_row_limits():
    b = BatchBuilder("k", "f.csv", fmt="csv", header_text="a,b", batch_bytes=64 * 1024, batch_rows=1000)
    out = [x for i in range(5000) if (x := b.add(i + 2, f"{i},{'x' * 100}"))]
    out.append(b.take())
    assert sum(x.rows for x in out) == 5000
    assert all(len(x.body) <= 64 * 1024 for x in out)
    assert all(x.body.startswith(b"a,b\n") for x in out)
    assert out[0].first_line == 2 and out[-1].last_line == 5001
    with pytest.raises(ValueError, match="10 MB"):
        check_batch_limits(11 * 1024 * 1024, 10, use_bulk_host=False)


def test_format_inference_and_gzip_detection():
    assert infer_format("users.csv.gz.gpg", None) == "csv"
    assert infer_format("e.jsonl", None) == "ndjson"
    with pytest.raises(ImportInputError, match="file_format"):
        infer_format("data.bin", None)
    parts = [(name, s.read()) for name, s in open_parts(io.BytesIO(gzip.compress(b"a\n1\n")), "x.dat")]
    assert parts == [("x.dat", b"a\n1\n")]


def test_json_array_line_numbers_and_trailing_comma():
    rows = list(open_rows("json", io.BytesIO(b'[\n{"a":1},\n\n{"a":\n 2}\n]'), "x.json"))
    assert [(r.line, r.body) for r in rows] == [(2, '{"a":1}'), (4, '{"a":2}')]
    with pytest.raises(ImportInputError, match="trailing comma"):
        list(open_rows("json", io.BytesIO(b'[{"a":1},]'), "x.json"))


def test_csv_header_problems_are_file_errors():
    with pytest.raises(ImportInputError, match="repeats"):
        list(open_rows("csv", io.BytesIO(b"a,a\n1,2\n"), "x.csv"))
    with pytest.raises(ImportInputError, match="also CSV columns"):
        list(open_rows("csv", io.BytesIO(b"a,b\n1,2\n"), "x.csv", constants={"a": 1}))


def test_utf16_csv_decodes():
    data = "id,name\n1,Zoë\n".encode("utf-16")
    rows = list(open_rows("csv", io.BytesIO(data), "x.csv", encoding="utf-16"))
    assert rows[0].body == "1,Zoë"


def test_file_checkpoint_atomic_roundtrip(tmp_path):
    store = FileCheckpointStore(tmp_path / "d" / "c.json")
    assert store.load() is None
    store.save({"version": 1, "parts": {}})
    assert store.load() == {"version": 1, "parts": {}}
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["c.json"]
    store.clear()
    assert store.load() is None


def test_store_selection():
    assert type(store_for_context({"task_state_store": object()}, "auto")).__name__ == "TaskStateCheckpointStore"
    assert type(store_for_context({}, "auto")).__name__ == "VariableCheckpointStore"
    with pytest.raises(ValueError, match=r"3\.3"):
        store_for_context({}, "task_state")
    with pytest.raises(ValueError, match="absolute"):
        store_for_context({}, "relative/path.json")
    assert variable_key("d", "t", "manual__2026-01-01T00:00:00+00:00", 3).endswith("__3")


def test_watermark_selection_by_name_skips_partial_and_young():
    files = [RemoteFile(f"/in/u_{d}.csv", 1, 100.0) for d in ("2026-11-26", "2026-11-27")]
    files += [RemoteFile("/in/u_2026-11-28.csv.part", 1, 100.0), RemoteFile("/in/u_2026-11-29.csv", 1, 990.0)]
    sel = select_new(files, "2026-11-26", by="name", min_age_seconds=60, now=1000.0)
    assert [f.name for f in sel.files] == ["u_2026-11-27.csv"] and sel.watermark == "2026-11-27"


def _expand(rows):
    out = []
    for r in rows:
        if r.rows > 1:
            out += [(r.line + i, body, None) for i, body in enumerate(r.body.split("\n"))]
        else:
            out.append((r.line, r.body, r.error))
    return out


def test_csv_block_fast_path_matches_row_by_row():
    good = "".join(f"{i},u{i}@x.com,n{i}\n" for i in range(50000))  # > 1 MiB: the first block is all good rows
    data = ("id,email,name\n" + good + "bad,row\n" + good + '7,"q@x.com",quoted\n' + good).encode()
    rows = list(open_rows("csv", io.BytesIO(data), "x.csv", constants={"src": "f"}))
    assert any(r.rows > 1 for r in rows)  # the fast path was used
    flat = _expand(rows)
    assert len(flat) == 150002
    errors = [(line, err) for line, _, err in flat if err]
    assert errors == [(50002, "row has 2 fields but the header has 3")]
    assert [line for line, _, _ in flat] == list(range(2, 150004))
    assert all(body.endswith(",f") for _, body, err in flat if not err)
    assert flat[100001][1] == '7,"q@x.com",quoted,f'


def test_csv_block_fast_path_over_many_blocks():
    good = "".join(f"{i},user{i}@example.com,{'x' * 50}\n" for i in range(60000))  # ~4.7 MB
    rows = list(open_rows("csv", io.BytesIO(("a,b,c\n" + good).encode()), "x.csv"))
    flat = _expand(rows)
    assert [line for line, _, _ in flat] == list(range(2, 60002)) and all(err is None for *_, err in flat)
    assert sum(1 for r in rows if r.rows > 1) >= 4


def test_write_verified_repeats_a_lost_write_and_gives_up_with_a_clear_error():
    from airflow_provider_lytics.imports.checkpoint import CheckpointWriteError, write_verified

    kept: list[object] = []
    lost = iter([True, False])  # the first write is lost in transit, the second sticks
    write_verified(lambda v: None if next(lost) else kept.append(v), lambda: kept[-1] if kept else None,
                   {"parts": {"a": [(1, 2)]}}, "store X")  # fmt: skip
    assert kept == [{"parts": {"a": [[1, 2]]}}]  # compared as JSON: tuples come back as lists
    with pytest.raises(CheckpointWriteError, match="store X did not keep the import checkpoint after 3 writes"):
        write_verified(lambda v: None, lambda: None, {"v": 1}, "store X")
