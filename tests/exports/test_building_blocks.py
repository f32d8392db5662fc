"""Unit tests of the export building blocks: names, encoders, compression, the byte pipe, the ledger, the scanner."""

from __future__ import annotations

import gzip
import io
import threading
import zipfile
from datetime import datetime, timezone

import pytest

from airflow_provider_lytics.exports.compress import Compressor
from airflow_provider_lytics.exports.encoders import CsvEncoder, NdjsonEncoder, make_encoder
from airflow_provider_lytics.exports.errors import ExportAbortedError, ExportConfigError, ExportError, ExportStateError
from airflow_provider_lytics.exports.ledger import MemberLedger, fingerprint, pack_state, unpack_state
from airflow_provider_lytics.exports.naming import FileNamer, extension_chain
from airflow_provider_lytics.exports.pipe import BytePipe
from airflow_provider_lytics.exports.scanner import AudienceScanner

TS = datetime(2026, 3, 8, 6, 0, 5, tzinfo=timezone.utc)


class _Sink:
    """Write-only, no tell/seek: like a pipe or an upload."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, b: bytes) -> int:
        self.data += b
        return len(b)


@pytest.mark.parametrize(
    ("template", "change", "part", "expected"),
    [
        ("lytics_{AUDIENCE}_{CHANGE}_{TIMESTAMP}", "added", None, "lytics_high_value_added_20260308T060005Z.csv.gz"),
        ("users_{TIMESTAMP}", "removed", 2, "users_20260308T060005Z_removed_part0002.csv.gz"),
        ("users_{TIMESTAMP}.csv", "full", None, "users_20260308T060005Z_full.csv.gz"),
        ("out/{CHANGE}/u_{PART}.{EXT}", "changed", 1, "out/changed/u_0001.csv.gz"),
    ],
)
def test_file_names(template, change, part, expected):
    namer = FileNamer(template, TS, "high value", extension_chain("csv", "gzip", False))
    assert namer.name(change, part) == expected


def test_extension_chain_and_bad_templates():
    assert extension_chain("parquet", "none", True) == "parquet.gpg"
    assert extension_chain("csv", "zip", True, armor=True) == "csv.zip.asc"
    with pytest.raises(ExportConfigError, match=r"unknown placeholder.*DATE"):
        FileNamer("x_{DATE}", TS, "a", "csv")
    with pytest.raises(ExportConfigError, match="relative"):
        FileNamer("../x", TS, "a", "csv")


def test_csv_encoder_quotes_joins_and_counts():
    sink = _Sink()
    enc = CsvEncoder(sink, ["id", "tags", "note", "obj"], join="|")
    enc.write_rows([{"id": "1", "tags": ["a", "b"], "note": 'say "hi", ok', "obj": {"k": 1}}, {"id": "2"}])
    enc.close()
    assert sink.data.decode() == 'id,tags,note,obj\r\n1,a|b,"say ""hi"", ok","{""k"":1}"\r\n2,,,\r\n'
    assert enc.rows == 2 and enc.bytes == len(sink.data)
    with pytest.raises(ExportConfigError, match="fields"):
        CsvEncoder(_Sink(), [])
    with pytest.raises(ExportConfigError, match="differ"):
        CsvEncoder(_Sink(), ["a"], delimiter="|", join="|")
    with pytest.raises(ExportConfigError, match="Unknown export format"):
        make_encoder("xml", _Sink(), ["a"])


def test_ndjson_encoder_projection_and_whole_rows():
    sink = _Sink()
    enc = NdjsonEncoder(sink, ["a", "b"])
    enc.write_rows([{"a": 1, "b": None, "c": 3}])
    enc.close()
    assert sink.data == b'{"a":1}\n'
    whole = _Sink()
    enc = NdjsonEncoder(whole, None)
    enc.write_rows([{"x": "é"}])
    enc.close()
    assert whole.data.decode() == '{"x":"é"}\n'


def test_gzip_and_streaming_zip_into_unseekable_sink():
    payload = b"row\n" * 100_000
    for kind in ("gzip", "zip"):
        sink = _Sink()
        comp = Compressor(sink, kind, member_name="users.csv")
        for i in range(0, len(payload), 4096):
            comp.write(payload[i : i + 4096])
        comp.close()
        if kind == "gzip":
            assert gzip.decompress(bytes(sink.data)) == payload
        else:
            with zipfile.ZipFile(io.BytesIO(bytes(sink.data))) as zf:
                assert zf.namelist() == ["users.csv"] and zf.read("users.csv") == payload
    with pytest.raises(ExportConfigError):
        Compressor(_Sink(), "bz2")


def test_pipe_is_bounded_and_propagates_failures_both_ways():
    pipe = BytePipe(depth=2, chunk_bytes=10)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend(pipe))
    reader.start()
    for _ in range(100):
        pipe.write(b"0123456789")
    pipe.close()
    reader.join(5)
    assert b"".join(got) == b"0123456789" * 100

    aborted = BytePipe(depth=2, chunk_bytes=1)
    aborted.write(b"x")
    aborted.abort(RuntimeError("source failed"))
    with pytest.raises(RuntimeError, match="source failed"):
        list(aborted)

    failed = BytePipe(depth=1, chunk_bytes=1)
    failed.fail(OSError("connection lost"))
    with pytest.raises(ExportAbortedError, match="connection lost"):
        failed.write(b"y")


def test_ledger_dedupes_diffs_and_round_trips_state(tmp_path):
    cols = ["email"]
    (tmp_path / "a").mkdir()
    first = MemberLedger(tmp_path / "a")
    marks = first.classify([("1", fingerprint({"email": "x"}, cols)), ("2", fingerprint({"email": "y"}, cols)),
                            ("1", fingerprint({"email": "x"}, cols))])  # fmt: skip
    assert marks == ["added", "added", None]
    assert first.classify([("2", b"")]) == [None]  # seen on an earlier page: a restart duplicate
    db = first.finish({"watermark": "W1"})
    packed = tmp_path / "state.gz"
    pack_state(db, packed)
    (tmp_path / "b").mkdir()
    unpack_state(packed, tmp_path / "b" / "prev.sqlite")
    second = MemberLedger(tmp_path / "b", tmp_path / "b" / "prev.sqlite")
    assert second.previous_meta["watermark"] == "W1" and second.previous_count() == 2
    marks = second.classify([("1", fingerprint({"email": "x2"}, cols)), ("3", fingerprint({"email": "z"}, cols))])
    assert marks == ["changed", "added"] and list(second.removed()) == ["2"]
    second.close()


def test_damaged_state_is_a_clear_error(tmp_path):
    (tmp_path / "bad.gz").write_bytes(b"not gzip")
    with pytest.raises(ExportStateError, match="reset_state"):
        unpack_state(tmp_path / "bad.gz", tmp_path / "x.sqlite")
    (tmp_path / "w").mkdir()
    (tmp_path / "junk.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    with pytest.raises(ExportStateError, match="reset_state"):
        MemberLedger(tmp_path / "w", tmp_path / "junk.sqlite")


class _FakeHook:
    """scan_pages that expires the cursor once, on the second page of the first pass."""

    def __init__(self, pages: list[list[dict]], expire_at: int | None) -> None:
        self.pages, self.expire_at, self.calls = pages, expire_at, 0

    def scan_pages(self, segment, **kwargs):
        from airflow_provider_lytics.client.errors import LyticsCursorExpiredError
        from airflow_provider_lytics.hooks.lytics import ScanPage

        self.calls += 1
        for n, records in enumerate(self.pages):
            if self.calls == 1 and n == self.expire_at:
                raise LyticsCursorExpiredError(400, "scan cursor has expired")
            yield ScanPage(records=records, next_cursor="c" if n + 1 < len(self.pages) else None, total=5)


def test_scanner_restarts_after_cursor_expiry_and_gives_up_after_the_limit():
    pages = [[{"_id": "1"}, {"_id": "2"}], [{"_id": "3"}], [{"_id": "4"}, {"_id": "5"}]]
    scanner = AudienceScanner(_FakeHook(pages, expire_at=1), segment="s")
    seen = [r["_id"] for page in scanner for r in page]
    assert seen == ["1", "2", "1", "2", "3", "4", "5"] and scanner.stats.restarts == 1
    assert scanner.stats.size_at_start == 5

    class _Always(_FakeHook):
        def scan_pages(self, segment, **kwargs):
            self.calls = 0
            return super().scan_pages(segment, **kwargs)

    never = AudienceScanner(_Always(pages, expire_at=1), segment="s", max_restarts=2)
    with pytest.raises(ExportError, match="max_cursor_restarts"):
        list(never)
