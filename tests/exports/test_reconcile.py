"""Per-file reconciliation: the rows each file's encoder counted must add up to the rows the stream was given."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from airflow_provider_lytics.exports import encoders
from airflow_provider_lytics.exports.destinations import LocalDestination
from airflow_provider_lytics.exports.errors import ExportReconciliationError
from airflow_provider_lytics.exports.naming import FileNamer
from airflow_provider_lytics.exports.outputs import FormatOptions, OutputStream


def _stream(tmp_path) -> OutputStream:
    namer = FileNamer("x_{PART}", datetime(2026, 1, 1, tzinfo=timezone.utc), "a", "csv")
    return OutputStream(LocalDestination(str(tmp_path)), namer, "full", FormatOptions(columns=("id",)), split_rows=3)


def test_rows_given_equal_rows_in_files(tmp_path) -> None:
    out = _stream(tmp_path)
    out.write_rows([{"id": i} for i in range(7)])
    assert [f.rows for f in out.close()] == [3, 3, 1]


def test_a_file_that_lost_rows_fails_the_stream(tmp_path, monkeypatch) -> None:
    real = encoders.CsvEncoder.write_rows

    def drops_one(self, rows):
        real(self, rows[:-1] if len(rows) > 2 else rows)  # an encoder bug: one row silently lost

    monkeypatch.setattr(encoders.CsvEncoder, "write_rows", drops_one)
    out = _stream(tmp_path)
    out.write_rows([{"id": i} for i in range(7)])
    with pytest.raises(ExportReconciliationError, match="7 rows were given but the files hold"):
        out.close()
