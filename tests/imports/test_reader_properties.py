"""Property-based tests for the CSV, NDJSON and JSON readers (issue 14): whatever the bytes, only the library's
own error (``ImportInputError``, naming the file) escapes; every row is either rendered or rejected with a reason;
valid files come back record for record, and a stray quote never makes rows vanish.

CI runs a bounded number of examples (profile ``ci``). Before a release, run the longer fuzz::

    LYTICS_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/imports/test_reader_properties.py -q

(``LYTICS_FUZZ_EXAMPLES`` raises ``max_examples``; the per-case deadline stays.)
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_lytics.imports.formats import ImportInputError, open_parts
from airflow_provider_lytics.imports.readers import checked_json, open_rows

_EXAMPLES = int(os.environ.get("LYTICS_FUZZ_EXAMPLES", "0"))
settings.register_profile(
    "lytics-readers",
    max_examples=_EXAMPLES or 60,
    deadline=timedelta(seconds=10),  # per case; generous so a loaded CI machine does not fail on time alone
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=not _EXAMPLES,  # CI: the same examples every run; a release fuzz explores new ones
)
FUZZ = settings.get_profile("lytics-readers")


def _read(fmt: str, data: bytes, **kw) -> list:
    """All rows of ``data``; each row is either a body or a reason (never both, never neither)."""
    out = []
    for part, stream in open_parts(io.BytesIO(data), "fuzz.in", compression=kw.pop("compression", "infer")):
        if fmt == "json":
            with checked_json(stream, part) as checked:
                out.extend(open_rows(fmt, checked, part, **kw))
        else:
            out.extend(open_rows(fmt, stream, part, **kw))
    for row in out:
        assert (row.body is None) != (row.error is None), row
    return out


_JUNK = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.text(alphabet='{}[]",:\\\n 0123456789.eE+-tfrunlaubd', max_size=300).map(str.encode),
    st.text(alphabet='a,"\n\r;|\t', max_size=300).map(str.encode),
)


@FUZZ
@given(data=_JUNK, fmt=st.sampled_from(["csv", "ndjson", "json"]), gz=st.booleans(),
       encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]))  # fmt: skip
def test_only_our_error_escapes(data, fmt, gz, encoding):
    payload = gzip.compress(data) if gz else data
    try:
        _read(fmt, payload, encoding=encoding)
    except ImportInputError as exc:
        assert "fuzz.in" in str(exc)


@FUZZ
@given(data=st.binary(max_size=200), cut=st.integers(min_value=0, max_value=400))
def test_damaged_gzip_only_our_error(data, cut):
    payload = gzip.compress(data)[: cut or None]
    try:
        _read("csv", payload, compression="gzip")
    except ImportInputError as exc:
        assert "fuzz.in" in str(exc)


_FIELD = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=20)


@FUZZ
@given(rows=st.lists(st.tuples(_FIELD, _FIELD), min_size=1, max_size=40))
def test_valid_csv_comes_back_record_for_record(rows):
    rows = [r for r in rows if any(f.strip() for f in r)]  # a blank line is not a row
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["a", "b"])
    writer.writerows(rows)
    got = _read("csv", out.getvalue().encode())
    bodies = [line for r in got for line in (r.body.split("\n") if r.rows > 1 else [r.body])]
    assert [r.error for r in got if r.error] == []
    parsed = [tuple(x) for x in csv.reader(io.StringIO("\n".join(bodies) + "\n"))] if bodies else []
    assert parsed == [tuple(r) for r in rows]


@FUZZ
@given(
    count=st.integers(min_value=0, max_value=200),
    where=st.integers(min_value=0, max_value=200),
    tail=st.sampled_from(["", "x", "x,y", 'x","y']),
)
def test_a_stray_quote_never_makes_rows_vanish(count, where, tail):
    lines = [f"r{i},v{i}" for i in range(count)]
    lines.insert(min(where, len(lines)), 'bad,"open' + tail)
    got = _read("csv", ("a,b\n" + "\n".join(lines) + "\n").encode(), max_record_bytes=1024)
    assert sum(r.rows for r in got) == len(lines)  # every line is a row, sent or quarantined


_JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@FUZZ
@given(
    records=st.lists(st.dictionaries(st.text(max_size=8), _JSON_VALUE, max_size=4), max_size=30),
    garbage=st.lists(st.tuples(st.integers(min_value=0, max_value=30), st.text(max_size=30)), max_size=5),
)
def test_ndjson_every_line_is_accounted_for(records, garbage):
    lines = [json.dumps(r) for r in records]
    for at, text in garbage:
        lines.insert(min(at, len(lines)), text.replace("\n", " ").replace("\r", " "))
    got = _read("ndjson", ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))
    assert len(got) == sum(1 for line in lines if line.strip())
    for row in got:
        if row.body is not None:
            assert isinstance(json.loads(row.body), dict)


@FUZZ
@given(records=st.lists(st.dictionaries(st.text(max_size=8), _JSON_VALUE, max_size=4), max_size=30),
       indent=st.sampled_from([None, 1]))  # fmt: skip
def test_json_array_comes_back_record_for_record(records, indent):
    got = _read("json", json.dumps(records, indent=indent).encode())
    assert len(got) == len(records)
    ok = [json.loads(r.body) for r in got if r.body is not None]
    assert all(isinstance(x, dict) for x in ok)
