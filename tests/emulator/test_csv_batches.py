"""The bulk CSV reader (``csv_batches``) checks rows a slice at a time; it must accept, reject and number lines
exactly as the row-by-row reader (``iter_csv`` plus the record checks of ``run_ingest``) does, across slice and
batch boundaries, and store the same records before a bad row aborts a request."""

from __future__ import annotations

import random

import pytest

from airflow_provider_lytics.emulator.ingest import (
    BATCH_RECORD_LIMIT,
    BATCH_SIZE,
    ROW_SLICE,
    BadInput,
    IngestOptions,
    csv_batches,
    decode_text,
    iter_csv,
    run_ingest,
)
from airflow_provider_lytics.emulator.persistence import StateDB
from airflow_provider_lytics.emulator.store import ProfileStore

IDS = ("_uid", "email", "user_id", "external_id")
ACCENTED = "\u00e9"  # two bytes in UTF-8


def _chunks(body: bytes, size: int = 4096) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def _reference(body: bytes, options: IngestOptions) -> tuple[list[dict], list[tuple[int, str]]]:
    """Records and rejections the row-by-row path gives (droperrors semantics)."""
    checker = ProfileStore(StateDB(None))
    records, rejections = [], []
    for item in iter_csv(decode_text(_chunks(body)), options):
        if isinstance(item.value, str):
            rejections.append((item.line, item.value))
        elif item.size > BATCH_RECORD_LIMIT:
            reason = f"record at line {item.line} is {item.size} bytes; the limit is {BATCH_RECORD_LIMIT} bytes"
            rejections.append((item.line, reason))
        elif problem := checker.check_record(item.value, flat=True):
            rejections.append((item.line, f"record at line {item.line}: {problem}"))
        else:
            records.append(item.value)
    return records, rejections


def _sliced(body: bytes, options: IngestOptions) -> tuple[list[list[dict]], list[tuple[int, str]], list[bool]]:
    checker = ProfileStore(StateDB(None))
    rejections: list[tuple[int, str]] = []
    batches, plains = [], []
    for batch, plain in csv_batches(
        decode_text(_chunks(body)), options, checker.check_record, IDS, lambda line, why: rejections.append((line, why))
    ):
        batches.append(batch)
        plains.append(plain)
    return batches, rejections, plains


def _messy_body(rows: int, seed: int) -> bytes:
    """Mostly clean CRM rows with every kind of trouble sprinkled in (about one row in 150)."""
    rnd = random.Random(seed)
    out = ["email,user_id,name,note"]
    for i in range(rows):
        roll = rnd.random()
        if roll < 0.002:
            out.append(f"u{i}@example.com,u{i},too,many,fields")
        elif roll < 0.004:
            out.append("")  # blank line: skipped, not a row
        elif roll < 0.006:
            out.append(f'u{i}@example.com,u{i},"two\nlines",x')  # a quoted field spanning lines
        elif roll < 0.008:
            out.append(f"u{i}@example.com,{'x' * 300},long id,")  # identifier over 256 bytes
        elif roll < 0.010:
            out.append(f"u{i}@example.com,{ACCENTED * 65},long but fits,")  # over 64 characters, under 256 bytes
        elif roll < 0.012:
            out.append(f'u{i}@example.com,u{i},"bad"quote,x')  # malformed in strict mode
        elif roll < 0.014:
            out.append(f"u{i}@example.com,u{i},{'n' * BATCH_RECORD_LIMIT},x")  # record over the size limit
        elif roll < 0.030:
            out.append(f"u{i}@example.com,,Name {i},")  # empty values are left out of the record
        else:
            out.append(f"U{i}@Example.com,u{i},Name {i},note {i % 7}")
    return ("\n".join(out) + "\n").encode()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sliced_reader_matches_the_row_by_row_reader(seed: int) -> None:
    body = _messy_body(3 * BATCH_SIZE + 321, seed)
    options = IngestOptions(fmt="csv", droperrors=True)
    expected_records, expected_rejections = _reference(body, options)
    batches, rejections, plains = _sliced(body, options)
    assert rejections == expected_rejections and len(rejections) > 20
    assert [r for batch in batches for r in batch] == expected_records
    assert all(len(b) == BATCH_SIZE for b in batches[:-1]) and 0 < len(batches[-1]) <= BATCH_SIZE
    assert set(plains) == {True}


def test_a_quoted_field_across_a_slice_boundary_and_append() -> None:
    rows = [f"u{i}@example.com,u{i},Name {i}" for i in range(ROW_SLICE + 10)]
    rows[ROW_SLICE - 1] = f'u{ROW_SLICE - 1}@example.com,u{ROW_SLICE - 1},"spans\nthe\nboundary"'
    body = ("email,user_id,name\n" + "\n".join(rows) + "\n").encode()
    options = IngestOptions(fmt="csv", append={"source": "crm"})
    batches, rejections, plains = _sliced(body, options)
    assert _reference(body, options) == ([r for b in batches for r in b], rejections) and not rejections
    assert batches[0][ROW_SLICE - 1]["name"] == "spans\nthe\nboundary" and batches[0][0]["source"] == "crm"
    assert plains == [False]  # append: not plain


def test_abort_stores_only_full_batches_before_the_bad_row() -> None:
    good = [f"u{i}@example.com,u{i}" for i in range(BATCH_SIZE + ROW_SLICE + 7)]
    body = ("email,user_id\n" + "\n".join([*good, "bad,row,here", "late@example.com,late"]) + "\n").encode()
    store = ProfileStore(StateDB(None))
    with pytest.raises(BadInput, match=rf"line {len(good) + 2} has 3 fields") as info:
        run_ingest(store, "crm", _chunks(body), IngestOptions(fmt="csv"))
    assert info.value.accepted == BATCH_SIZE == store.profile_count()
    malformed = body.replace(b"bad,row,here", b'bad,"x"y')
    with pytest.raises(BadInput, match=rf"malformed CSV at line {len(good) + 2}") as info:
        run_ingest(ProfileStore(StateDB(None)), "crm", _chunks(malformed), IngestOptions(fmt="csv"))
    assert info.value.accepted == BATCH_SIZE
