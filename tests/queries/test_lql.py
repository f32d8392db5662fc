"""The emulator's LQL subset: parsing, clear errors for what it does not support, projection and merge operators."""

from __future__ import annotations

import pytest

from airflow_provider_lytics.emulator.lql import LQLError, merge_value, parse_query
from airflow_provider_lytics.emulator.persistence import StateDB
from airflow_provider_lytics.emulator.queries import evaluate
from airflow_provider_lytics.emulator.store import ProfileStore

ORDERS = """
-- orders onto profiles
SELECT
   email(Email)            AS email SHORTDESC "Email address",
   tolower(Plan)           AS plan,
   count(*)                AS orders,
   sum(amount)             AS total_spent,
   max(amount)             AS largest_order,
   min(amount)             AS smallest_order,
   set(category)           AS categories,
   todate(signed_up)       AS signed_up MERGEOP oldest,
   valuect(category)       AS category_counts,
   amount                  AS big_amount KIND number IF amount > 100
FROM web_orders
INTO user BY email
WHERE Email != "skip@example.com"
ALIAS web_orders_q
"""


def test_parse_reads_every_clause() -> None:
    query = parse_query(ORDERS)
    assert (query.stream, query.alias, query.table, query.by) == ("web_orders", "web_orders_q", "user", ("email",))
    ops = query.ops()
    assert ops["orders"] == "count" and ops["categories"] == "set" and ops["signed_up"] == "oldest"
    assert query.fields_doc()["email"]["shortdesc"] == "Email address"
    assert query.fields_doc()["email"]["is_by"] is True


def test_projection_applies_functions_guards_and_where() -> None:
    query = parse_query(ORDERS)
    row = {"Email": " A@Example.COM ", "Plan": "PRO", "amount": "150.5", "category": "hats",
           "signed_up": "2024-01-02"}  # fmt: skip
    out = query.project(row)
    assert out == {
        "email": "a@example.com", "plan": "pro", "orders": 1, "total_spent": 150.5, "largest_order": 150.5,
        "smallest_order": 150.5, "categories": ["hats"], "signed_up": "2024-01-02T00:00:00Z",
        "category_counts": {"hats": 1}, "big_amount": 150.5,
    }  # fmt: skip
    assert "big_amount" not in query.project({**row, "amount": "20"})  # IF guard false: field not set
    assert query.project({**row, "Email": "skip@example.com"}) is None  # WHERE drops the row
    assert "email" not in query.project({**row, "Email": "not-an-email"})


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("SELECT a AS a FROM s INTO user", "needs BY"),
        ("SELECT a AS a FROM s INTO user BY b", "BY names b"),
        ("SELECT lower(a) AS a FROM s INTO user BY a", "function lower() at line 1, column 8 is not supported"),
        ("SELECT a + b AS a FROM s INTO user BY a", "unexpected character '+'"),
        ("SELECT tolower(a) FROM s INTO user BY a", "needs AS <field name>"),
        ("SELECT a AS a FROM s INTO user BY a GROUP BY a", "GROUP"),
        ("SELECT a AS a KIND blob FROM s BY a", "KIND blob"),
        ("SELECT a AS a MERGEOP first FROM s BY a", "MERGEOP first"),
        ("SELECT a AS a, b AS a FROM s BY a", "selected more than once: a"),
        ("SELECT a AS a FROM s INTO content BY a", "'user' table only"),
        ("SELECT tolower(count(a)) AS a FROM s BY a", "aggregate"),
        ("SELECT a AS a FROM s BY a ALIAS x ALIAS y", "ALIAS appears twice"),
        ("SELECT eq(a) AS a FROM s BY a", "eq() takes 2 argument(s), got 1"),
    ],
)
def test_errors_say_what_to_fix(text: str, needle: str) -> None:
    with pytest.raises(LQLError) as info:
        parse_query(text)
    assert needle in str(info.value)


def test_merge_operators() -> None:
    assert merge_value("sum", 2, 3.5, True) == 5.5
    assert merge_value("sum", 692.31, 0.1, True) == 692.41  # rounded, no float tail
    assert merge_value("count", 4, 1, False) == 5
    assert merge_value("min", "10", "9", True) == "9"
    assert merge_value("max", 10, 9, True) == 10
    assert merge_value("set", ["a"], ["b", "a"], True) == ["a", "b"]
    assert merge_value("latest", "old", "new", False) == "old"
    assert merge_value("oldest", "old", "new", False) == "new"
    assert merge_value("valuect", {"a": 1}, {"a": 1, "b": 1}, True) == {"a": 2, "b": 1}


def test_evaluate_renders_an_entity_like_query_test_does() -> None:
    entity = evaluate(parse_query(ORDERS), [{"Email": "a@example.com", "amount": "7", "category": "x"}])
    assert entity["email"] == "a@example.com" and entity["orders"] == "1" and entity["total_spent"] == "7"


def test_store_applies_queries_with_merge_ops_by_event_time() -> None:
    store = ProfileStore(StateDB(None))
    store.queries.upsert(ORDERS)
    store.ingest("web_orders", [
        {"Email": "A@x.io", "Plan": "PRO", "amount": "40", "category": "shoes", "signed_up": "2024-01-02",
         "_ts": "2024-03-01T00:00:00Z"},
        {"Email": "a@x.io", "Plan": "free", "amount": "150.5", "category": "hats", "signed_up": "2023-05-02",
         "_ts": "2024-03-02T00:00:00Z"},
        {"Email": "a@x.io", "Plan": "old", "amount": "10", "category": "shoes", "_ts": "2024-02-02T00:00:00Z"},
        {"Email": "skip@example.com", "amount": "10"},
    ])  # fmt: skip
    profile = store.lookup("email", "a@x.io")
    assert profile["plan"] == "free"  # latest by event time, not by arrival
    assert profile["orders"] == 3 and profile["total_spent"] == 200.5
    assert (profile["largest_order"], profile["smallest_order"]) == (150.5, 10)
    assert profile["categories"] == ["shoes", "hats"]
    assert profile["category_counts"] == {"shoes": 2, "hats": 1}
    assert profile["signed_up"] == "2024-01-02T00:00:00Z"  # from the oldest event carrying it
    assert "Email" not in profile and "amount" not in profile  # raw columns do not reach the profile
    assert store.lookup("email", "skip@example.com") is None
    assert store.stream_event_count("web_orders") == 4  # every row is kept as a raw event
    columns = {c["as"]: c for c in store.schema()["columns"]}
    assert columns["orders"]["op"] == "count" and columns["orders"]["froms"] == ["web_orders"]
    assert "Email" not in columns


def test_raw_mode_keeps_unmapped_streams_off_profiles() -> None:
    store = ProfileStore(StateDB(None), unmapped="raw")
    store.ingest("clicks", [{"email": "b@x.io", "page": "/a"}])
    assert store.lookup("email", "b@x.io") is None
    assert [s.name for s in store.stream_list()] == ["clicks"]
    assert store.schema()["columns"] == []
    store.queries.upsert("SELECT email AS email, page AS last_page FROM clicks INTO user BY email ALIAS clicks_q")
    store.ingest("clicks", [{"email": "b@x.io", "page": "/b"}])
    assert store.lookup("email", "b@x.io")["last_page"] == "/b"


def test_queries_survive_a_restart(tmp_path) -> None:
    path = str(tmp_path / "state.db")
    db = StateDB(path)
    ProfileStore(db).queries.upsert(ORDERS)
    db.close()
    reopened = ProfileStore(StateDB(path))
    assert [d["alias"] for d in reopened.queries.list()] == ["web_orders_q"]
    reopened.ingest("web_orders", [{"Email": "c@x.io", "amount": "5"}])
    assert reopened.lookup("email", "c@x.io")["orders"] == 1


def test_upsert_needs_alias_and_an_identity_by_field() -> None:
    store = ProfileStore(StateDB(None))
    with pytest.raises(LQLError, match="needs ALIAS"):
        store.queries.upsert("SELECT email AS email FROM s INTO user BY email")
    with pytest.raises(LQLError, match="none of these is an identity field"):
        store.queries.upsert("SELECT phone AS phone FROM s INTO user BY phone ALIAS q")
