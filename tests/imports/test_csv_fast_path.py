"""The CSV fast path (lines checked a block at a time, see ``imports/csv_lines.py``) against the row-by-row path.

Whatever the input (quotes, quoted newlines, CRLF, BOM, bad widths, undecodable bytes, long lines, at any place
relative to the read-block edges), both paths must give the same rows: the same bodies and line numbers for the
rows sent, the same original text, reason and line number for the rows rejected, and the same file-level error.
The read block is shrunk to a few bytes so that block edges fall everywhere in small examples.
"""

from __future__ import annotations

import io
import os
from datetime import timedelta
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from airflow_provider_lytics.imports import readers
from airflow_provider_lytics.imports.csv_lines import LineShape
from airflow_provider_lytics.imports.formats import ImportInputError
from airflow_provider_lytics.imports.readers import open_rows

_EXAMPLES = int(os.environ.get("LYTICS_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_EXAMPLES or 300,
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=not _EXAMPLES,
)


def _expand(rows) -> list[tuple]:
    """One entry per row: ``(line, body)`` if sent, ``(line, raw, error)`` if rejected."""
    out: list[tuple] = []
    for r in rows:
        if r.error is not None:
            out.append((r.line, r.raw, r.error))
        elif r.rows > 1:
            out += [(r.line + i, body) for i, body in enumerate(r.body.split("\n"))]
        else:
            out.append((r.line, r.body))
    return out


def _read(data: bytes, *, fast: bool, block: int, **kw) -> tuple[list[tuple], str | None, int]:
    """Rows (expanded), the file-level error if any, and how many blocks of more than one row were made."""
    with mock.patch.object(readers, "_BLOCK_BYTES", block):
        reader = open_rows("csv", io.BytesIO(data), "x.csv", **kw)
        reader.fast = fast
        got = []
        try:
            for row in reader:
                got.append(row)
        except ImportInputError as exc:
            return _expand(got), str(exc), 0
    return _expand(got), None, sum(1 for r in got if r.rows > 1)


def _same(data: bytes, block: int, **kw) -> int:
    fast, fast_error, blocks = _read(data, fast=True, block=block, **kw)
    slow, slow_error, _ = _read(data, fast=False, block=block, **kw)
    assert fast_error == slow_error
    assert fast == slow
    return blocks


_PLAIN = st.sampled_from(["a", "b1", "", " ", "x y", "Zoë", "\t", "😀", "é,", "a;b"])
_QUOTED = st.sampled_from(['"q"', '""', '"a,b"', '"a ""b"" c"', '"line\nbreak"', '"cr\r\nlf"', '"x""', '"open',
                           'mid"quote', '"a"b', '"a" ', ' "a"', '"\r"', '"""', '"a\rb"'])  # fmt: skip
_FIELD = st.one_of(_PLAIN, _PLAIN, _QUOTED)
_END = st.sampled_from(["\n", "\n", "\n", "\r\n", "\r\n", "\r\r\n", "\r", ""])
_LINE = st.one_of(
    st.tuples(_FIELD, _FIELD, _FIELD).map(",".join),  # the header's width
    st.lists(_FIELD, min_size=0, max_size=5).map(",".join),  # any width, blank
    st.sampled_from(["", " ", "\ufeffa,b,c", "\x00,\x00,\x00"]),
)
_BAD_BYTES = st.sampled_from([b"", b"", b"", b"\xff", b"\xc3", b"\xef\xbb\xbf"])


@st.composite
def _csv_bytes(draw) -> bytes:
    header = draw(st.sampled_from(["a,b,c", "\ufeffa,b,c", "a,b,c\r"]))
    out = bytearray(header.encode() + b"\n")
    for line in draw(st.lists(st.tuples(_LINE, _END, _BAD_BYTES), max_size=30)):
        text, end, junk = line
        out += text.encode() + junk + end.encode()
    return bytes(out)


@FUZZ
@given(data=_csv_bytes(), block=st.integers(min_value=1, max_value=80),
       constants=st.sampled_from([None, {"src": "f"}, {"s": 'q"x'}]),
       limit=st.sampled_from([16 * 1024, 48]))  # fmt: skip
@example(data=b'a,b,c\n1,"x\ny",3\n4,5,6\n', block=9, constants=None, limit=16 * 1024)
@example(data=b'a,b,c\n1,"open,3\n4,5,6\n7,8,9\n', block=5, constants=None, limit=16 * 1024)
@example(data=b'a,b,c\r\n1,"2",3\r\n4,5\r\n\r\n7,8,9', block=4, constants={"src": "f"}, limit=16 * 1024)
def test_fast_path_matches_row_by_row(data, block, constants, limit):
    _same(data, block, constants=constants, max_record_bytes=limit)


@FUZZ
@given(data=_csv_bytes(), block=st.integers(min_value=1, max_value=80))
def test_fast_path_matches_row_by_row_latin1(data, block):
    _same(data, block, encoding="latin-1")


@FUZZ
@given(rows=st.lists(st.tuples(_FIELD, _FIELD), max_size=40), block=st.integers(min_value=1, max_value=200),
       delimiter=st.sampled_from([";", "|", "\t"]))  # fmt: skip
def test_fast_path_matches_row_by_row_other_delimiters(rows, block, delimiter):
    text = "a" + delimiter + "b\n" + "".join(f"{x}{delimiter}{y}\n".replace(",", delimiter) for x, y in rows)
    _same(text.encode(), block, delimiter=delimiter)


def _quoted_file(rows: int, **extra: str) -> bytes:
    lines = [f'{i},"City{i % 97}, IL","a ""b"" c",{"x" * (i % 50)}' for i in range(rows)]
    for at, text in extra.items():
        lines[int(at[1:])] = text
    return ("id,city,quote,notes\n" + "\n".join(lines) + "\n").encode()


def test_quoted_csv_goes_in_blocks_across_the_real_read_block_edges():
    data = _quoted_file(40_000)  # ~2.6 MB: three 1 MiB read blocks
    blocks = _same(data, readers._BLOCK_BYTES)
    assert blocks == 3
    rows, _, _ = _read(data, fast=True, block=readers._BLOCK_BYTES)
    assert rows[5] == (7, '5,"City5, IL","a ""b"" c",xxxxx')


def test_a_quoted_newline_on_a_read_block_edge_is_one_row_and_the_rest_stays_fast():
    data = _quoted_file(40_000)
    edge = data.rindex(b"\n", 0, (1 << 20) - 8)
    line = data.count(b"\n", 0, edge) + 1  # the line that ends at ``edge`` (the header is line 1)
    damaged = data[:edge] + b',"spans\nthe edge' + b"x" * 300 + b'"' + data[edge:]
    assert damaged.rindex(b"\n", 0, 1 << 20) == edge + 7  # the first read block ends inside the quoted field
    rows = list(open_rows("csv", io.BytesIO(damaged), "x.csv"))
    spanning = [r for r in rows if r.rows == 1 and r.line == line]
    assert len(spanning) == 1 and spanning[0].error == "row has 5 fields but the header has 4"
    assert spanning[0].raw.endswith('x"\n') and spanning[0].raw.count("\n") == 2
    assert sum(1 for r in rows if r.rows > 1) >= 3  # blocks before and after the row taken one by one
    assert sum(r.rows for r in rows) == 40_000
    _same(damaged, 1 << 20)


def test_one_bad_row_in_a_read_block_costs_only_that_row():
    data = _quoted_file(5_000, r2500='2500,"open quote,x,y', r2600="2600,too,many,fields,here")
    rows = list(open_rows("csv", io.BytesIO(data), "x.csv"))
    assert [(r.line, r.error[:14]) for r in rows if r.error] == [(2502, "malformed CSV:"), (2602, "row has 5 fiel")]
    assert [r.rows for r in rows if r.rows > 1] == [2500, 99, 2399]
    _same(data, readers._BLOCK_BYTES)


@pytest.mark.parametrize(
    ("line", "good"),
    [
        ('1,"a,b",c', True),
        ('"a ""x""",b,c', True),
        ('"","",""', True),
        ('1,2,"3"\r', True),
        ('1,"a"b,c', False),  # text after the closing quote
        ('1,x"y",c', False),  # quote inside an unquoted field
        ('1, "a",c', False),  # space before the opening quote
        ('1,"a,c', False),  # not closed on the line
        ('1,"a\rb",c', False),  # carriage return that does not end the line
        ("1,2,3\r\r", False),
        ("1,2", False),
        ("", False),
        ('"a,b,c"', False),  # one field
    ],
)
def test_line_shape_judges_single_lines(line, good):
    shape = LineShape(3, ",", '"', 1000)
    flags = shape.flags([line, "1,2,3"], line + "\n1,2,3")
    assert (flags is None) == good and (flags is None or flags == [False, True])


def test_a_quoted_field_over_the_csv_modules_field_limit_is_judged_the_same():
    big = "y" * 140_000  # over csv.field_size_limit() (131,072)
    data = f'a,b\n1,"{big}"\n2,{big}\n3,"z"\n'.encode()
    rows, error, _ = _read(data, fast=True, block=1 << 20, max_record_bytes=4_000_000)
    assert error is None and [r[0] for r in rows] == [2, 3, 4]
    assert "field larger than field limit" in rows[0][2] and rows[1] == (3, f"2,{big}")
    _same(data, 1 << 20, max_record_bytes=4_000_000)
