"""Too-deep records are judged by a fixed nesting limit, not by the interpreter's recursion limit.

A 1,000-deep record used to be quarantined only when ``json`` hit ``RecursionError``, which depends on the stack
depth and ``sys.getrecursionlimit()`` at that moment (raised by other libraries in the same process): the same
file could then be sent. A record one level past :data:`MAX_NESTING` is refused whatever the recursion limit.
"""

from __future__ import annotations

import io
import sys

import pytest

from airflow_provider_lytics.imports.readers import MAX_NESTING, TOO_DEEP, JsonRows, NdjsonRows


def _nested(levels: int) -> str:
    return '{"x":' * levels + "1" + "}" * levels


@pytest.mark.parametrize("recursion_limit", [1_000, 20_000])
def test_ndjson_record_past_the_limit_is_quarantined_at_any_recursion_limit(recursion_limit):
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(recursion_limit)
    try:
        text = "\n".join(['{"email":"a@x"}', _nested(MAX_NESTING + 1), _nested(MAX_NESTING)]) + "\n"
        rows = list(NdjsonRows(io.BytesIO(text.encode()), "deep.ndjson"))
    finally:
        sys.setrecursionlimit(old)
    assert [r.error for r in rows] == [None, TOO_DEEP, None]


def test_json_array_record_past_the_limit_is_quarantined():
    text = "[" + ",".join(['{"email":"a@x"}', _nested(MAX_NESTING + 1), '{"email":"b@x"}']) + "]"
    rows = list(JsonRows(io.BytesIO(text.encode()), "deep.json"))
    assert [r.error for r in rows] == [None, TOO_DEEP, None]


def test_brackets_inside_strings_do_not_count():
    text = '{"note":"' + "[" * (MAX_NESTING * 2) + '"}\n'
    rows = list(NdjsonRows(io.BytesIO(text.encode()), "strings.ndjson"))
    assert rows[0].error is None
