"""Hostile input over real HTTP to the emulator (issue 14 items 3 and 4): one bad record is quarantined with its
line and reason, a damaged file fails with one clear error naming it, a broken JSON array sends nothing, and an
unterminated CSV quote no longer swallows the rows after it. Counts always reconcile."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import pytest

from airflow_provider_lytics.errors import LyticsArgumentError
from airflow_provider_lytics.imports.formats import ImportInputError
from airflow_provider_lytics.imports.runner import ImportReconciliationError
from airflow_provider_lytics.operators.imports import LocalFilesToLyticsOperator
from tests.integration.task_fakes import TI


def _run(path: Path, stream: str, **kw) -> dict:
    op = LocalFilesToLyticsOperator(task_id="t", stream=stream, paths=str(path), checkpoint="none",
                                    quarantine_path=str(path.parent / "rejects.ndjson"), **kw)  # fmt: skip
    return op.execute({"ti": TI(), "run_id": "r"})


def _rejects(path: Path) -> list[dict]:
    return [json.loads(x) for x in (path.parent / "rejects.ndjson").read_text().splitlines()]


def _reconciles(result: dict) -> None:
    assert result["rows_read"] == result["rows_sent"] + result["rejected_here"] + result["skipped_acknowledged"]


def _events(emulator, stream: str) -> int:
    return emulator.backend.store.stream_event_count(stream)


def test_ndjson_nested_1000_deep_is_quarantined(tmp_path, emulator, lytics_conn_env):
    deep = "[" * 1000 + "]" * 1000
    path = tmp_path / "deep.ndjson"
    path.write_text('{"id":1}\n{"id":2,"x":' + deep + '}\n{"id":3}\n')
    result = _run(path, "deep")
    assert result["rows_sent"] == 2 and result["rejected_here"] == 1
    _reconciles(result)
    [reject] = _rejects(path)
    assert reject["line"] == 2 and "nested too deeply" in reject["reason"]
    assert _events(emulator, "deep") == 2


def test_json_array_nested_1000_deep_is_quarantined(tmp_path, emulator, lytics_conn_env):
    deep = '{"a":' * 1000 + "1" + "}" * 1000
    path = tmp_path / "deep.json"
    path.write_text('[\n{"id":1},\n{"id":2,"x":' + deep + '},\n{"id":3}\n]\n')
    result = _run(path, "deep_json")
    assert result["rows_sent"] == 2 and result["rejected_here"] == 1
    assert _rejects(path)[0]["line"] == 3
    assert _events(emulator, "deep_json") == 2


@pytest.mark.parametrize("constants", [None, {"source": "x"}])
def test_lone_surrogate_in_json_array_is_quarantined(tmp_path, emulator, lytics_conn_env, constants):
    path = tmp_path / "s.json"
    path.write_text('[{"id":1},\n{"id":2,"name":"\\ud800"},\n{"id":3,"name":"\\ud83d\\ude00"}]')
    result = _run(path, "surrogate", constant_fields=constants)
    assert result["rows_sent"] == 2 and result["rejected_here"] == 1
    [reject] = _rejects(path)
    assert reject["line"] == 2 and "surrogate" in reject["reason"]


def test_lone_surrogate_constant_is_a_clear_configuration_error():
    with pytest.raises(LyticsArgumentError, match="constant field 'c' is not valid Unicode"):
        LocalFilesToLyticsOperator(task_id="t", stream="s", paths="/x.csv", constant_fields={"c": "\ud800"})


def _gzip_truncated() -> bytes:
    data = gzip.compress(b"id,email\n" + b"".join(b"%d,u%d@x.com\n" % (i, i) for i in range(5000)))
    return data[: len(data) // 2]


def _gzip_bad_header() -> bytes:
    return b"\x1f\x8b" + b"\x00" * 100


def _gzip_bad_deflate() -> bytes:
    data = bytearray(gzip.compress(b"id,email\n" + b"".join(b"%d,u%d@x.com\n" % (i, i) for i in range(5000))))
    data[30] ^= 0xFF
    return bytes(data)


def _zip(method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=method) as z:
        z.writestr("a.csv", "id,email\n" + "".join(f"{i},u{i}@x.com\n" for i in range(200)))
    return out.getvalue()


def _zip_bad_crc() -> bytes:
    data = bytearray(_zip(zipfile.ZIP_STORED))
    data[data.index(b"u5@x") + 1] ^= 0x01
    return bytes(data)


def _zip_unsupported_method() -> bytes:
    data = bytearray(_zip(zipfile.ZIP_STORED))
    data[8:10] = data[data.index(b"PK\x01\x02") + 10 : data.index(b"PK\x01\x02") + 12] = (99).to_bytes(2, "little")
    return bytes(data)


def _zip_negative_offset() -> bytes:
    data = bytearray(_zip())
    end = data.rindex(b"PK\x05\x06")
    data[end + 16 : end + 20] = (len(data) + 1000).to_bytes(4, "little")  # central directory offset past the end
    return bytes(data)


@pytest.mark.parametrize(
    ("name", "make", "encoding", "says"),
    [
        ("t.csv.gz", _gzip_truncated, "utf-8", "truncated"),
        ("h.csv.gz", _gzip_bad_header, "utf-8", "gzip data is damaged"),
        ("d.csv.gz", _gzip_bad_deflate, "utf-8", "gzip data is damaged"),
        ("crc.zip", _zip_bad_crc, "utf-8", "zip"),
        ("m.zip", _zip_unsupported_method, "utf-8", "zip"),
        ("o.zip", _zip_negative_offset, "utf-8", "zip"),
        ("u16.csv", lambda: "id,email\n1,a@x.com\n".encode("utf-16-le"), "utf-16", "utf-16-le"),
        ("u16.json", lambda: '[{"id":1}]'.encode("utf-16-le"), "utf-16", "utf-16-le"),
    ],
)
def test_damaged_file_fails_with_one_clear_error_naming_it(tmp_path, emulator, lytics_conn_env, name, make,
                                                            encoding, says):  # fmt: skip
    path = tmp_path / name
    path.write_bytes(make())
    with pytest.raises(ImportInputError, match=says) as info:
        _run(path, "damaged", encoding=encoding, file_format="csv" if ".csv" in name or name.endswith(".zip") else None)
    assert name in str(info.value)


def test_broken_json_array_sends_nothing(tmp_path, emulator, lytics_conn_env):
    path = tmp_path / "broken.json"
    records = ",\n".join(json.dumps({"id": i, "email": f"u{i}@x.com"}) for i in range(2000))
    path.write_text("[\n" + records + ",\n{broken\n]\n")  # the break is on line 2,002
    with pytest.raises(ImportInputError, match=r"broken\.json: not valid JSON at line 2002"):
        _run(path, "broken_json", batch_rows=100)
    assert _events(emulator, "broken_json") == 0


def _unterminated(after: int) -> str:
    good = "".join(f"r{i},u{i}@x.com,Y\n" for i in range(3))
    rest = "".join(f"s{i},s{i}@x.com,Y\n" for i in range(after))
    return "id,email,opt_in\n" + good + 'r300,"unterminated@x.com,N\n' + rest


@pytest.mark.parametrize("after", [3, 3000, 100_000])
def test_unterminated_csv_quote_loses_no_row(tmp_path, emulator, lytics_conn_env, after):
    path = tmp_path / "q.csv"
    path.write_text(_unterminated(after))
    stream = f"quote_{after}"
    result = _run(path, stream)
    assert result["rows_read"] == 3 + 1 + after
    assert result["rows_sent"] == 3 + after and result["rejected_here"] == 1
    _reconciles(result)
    [reject] = _rejects(path)
    assert reject["line"] == 5 and "quote" in reject["reason"]
    assert _events(emulator, stream) == 3 + after


def test_multiline_quoted_fields_still_load(tmp_path, emulator, lytics_conn_env):
    path = tmp_path / "m.csv"
    path.write_text('id,address\n1,"12 Main St\nSpringfield"\n2,"a ""quoted"" word"\n3,plain\n')
    result = _run(path, "multiline")
    assert result["rows_read"] == 3 and result["rows_sent"] == 3 and result["rejected_here"] == 0


def test_counts_that_do_not_reconcile_fail_loudly(tmp_path, emulator, lytics_conn_env, monkeypatch):
    """A row lost inside the pipeline (simulated: the batch builder drops line 7) fails the run, naming the gap."""
    from airflow_provider_lytics.imports.batching import BatchBuilder

    original, original_block = BatchBuilder.add, BatchBuilder.add_block

    def lossy(self, line, body):
        return None if line == 7 else original(self, line, body)

    def lossy_block(self, first_line, last_line, rows, body):  # rows read as a block (the CSV fast path)
        bodies = body.split("\n")
        if first_line <= 7 <= last_line:
            del bodies[7 - first_line]
            rows -= 1
        return original_block(self, first_line, last_line, rows, "\n".join(bodies))

    monkeypatch.setattr(BatchBuilder, "add", lossy)
    monkeypatch.setattr(BatchBuilder, "add_block", lossy_block)
    path = tmp_path / "r.csv"
    path.write_text('id,email\n1,"a@x.com"\n' + "".join(f"{i},u{i}@x.com\n" for i in range(2, 20)))
    with pytest.raises(ImportReconciliationError, match=r"do not reconcile: 19 rows read .* \(\+1 unaccounted\)"):
        _run(path, "lossy")
