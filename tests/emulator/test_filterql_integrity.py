"""FilterQL under hostile input: LIKE is linear (no backtracking), formatted ASTs parse again, and the real
emulator answers a size request with many wildcards (it froze on one before)."""

from __future__ import annotations

import threading

import requests
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_lytics.emulator import filterql
from airflow_provider_lytics.emulator.filterql_eval import _like_matcher
from tests.property_settings import fuzz_settings


def _reference_like(pattern: str, text: str) -> bool:
    """Dynamic programming wildcard match (O(len(pattern) * len(text))): the specification of LIKE."""
    pat, s = pattern.lower().replace("%", "*"), text.lower()
    row = [True] + [False] * len(s)
    for ch in pat:
        if ch == "*":
            for j in range(1, len(s) + 1):
                row[j] = row[j] or row[j - 1]
        else:
            row = [False] + [row[j] and s[j] == ch for j in range(len(s))]
    return row[-1]


@fuzz_settings(300)
@given(st.text(alphabet="ab*%", max_size=10), st.text(alphabet="abAB", max_size=12))
def test_like_matches_the_reference(pattern: str, text: str) -> None:
    assert _like_matcher(pattern)(text.lower()) == _reference_like(pattern, text)


def _in_thread(fn, *args):
    """Run ``fn`` in a thread; a generous join only guards against a hang (a regression never returns)."""
    out: list = []
    worker = threading.Thread(target=lambda: out.append(fn(*args)), daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert out, "wildcard matching did not finish: it backtracks"
    return out[0]


def test_like_with_many_wildcards_does_not_backtrack() -> None:
    match = _like_matcher("*a" * 25 + "*b")
    assert _in_thread(match, "a" * 20_000 + "c") is False
    assert _in_thread(match, "a" * 20_000 + "b") is True


def test_formatted_ast_parses_again() -> None:
    for text in (
        "FILTER -1 < match_all",
        "FILTER `match_all` > 3",
        "FILTER NOT (`match_all` = 1)",
        "FILTER NOT match_all",
    ):
        tree = filterql.parse(text).to_ast()
        again = filterql.parse(filterql.format_ast(tree))
        assert again.to_ast() == tree
    assert filterql.parse("FILTER match_all").is_match_all


def test_emulator_answers_a_size_with_nine_wildcards(emulator) -> None:
    headers = {"Authorization": emulator.token}
    rows = [{"email": f"u{i}@e.com", "name": "a" * 199 + ("b" if i < 7 else "c")} for i in range(200)]
    r = requests.post(f"{emulator.url}/collect/json/s", json=rows, headers=headers, timeout=30)
    assert r.status_code == 200
    ql = 'FILTER name LIKE "' + "*a" * 9 + '*b" ALIAS wild'
    seg = requests.post(
        f"{emulator.url}/api/segment", data=ql, headers={**headers, "Content-Type": "text/plain"}, timeout=30
    )
    assert seg.status_code == 201, seg.text
    size = _in_thread(
        lambda: requests.get(f"{emulator.url}/api/segment/wild/size", headers=headers, timeout=300).json()
    )
    assert size["data"]["size"] == 7
    assert requests.get(f"{emulator.url}/_emulator/health", timeout=30).status_code == 200
