"""FilterQL parser and evaluator: syntax, error messages, evaluation truth tables, INCLUDE, date math."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_lytics.emulator.filterql import (
    FilterQLError,
    ParsedFilter,
    format_ast,
    from_ast,
    parse,
    parse_date_math,
    validate,
)

UTC = timezone.utc
NOW = datetime(2024, 6, 15, 12, 0, 0, tzinfo=UTC)


def ts(dt: datetime) -> float:
    return dt.timestamp()


# --------------------------------------------------------------------------------------------------
# Parsing: every construct produces the expected AST
# --------------------------------------------------------------------------------------------------

EMAIL = {"ident": "email"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FILTER *", {"op": "*"}),
        ("*", {"op": "*"}),
        ("filter match_all", {"op": "*"}),
        ('FILTER email = "a@b.com"', {"op": "=", "args": [EMAIL, {"val": "a@b.com"}]}),
        ('email == "a@b.com"', {"op": "=", "args": [EMAIL, {"val": "a@b.com"}]}),
        ("FILTER n != 3", {"op": "!=", "args": [{"ident": "n"}, {"val": 3}]}),
        ("FILTER n > 3.5", {"op": ">", "args": [{"ident": "n"}, {"val": 3.5}]}),
        ("FILTER n >= -2", {"op": ">=", "args": [{"ident": "n"}, {"val": -2}]}),
        ("FILTER n < 1e3", {"op": "<", "args": [{"ident": "n"}, {"val": 1000.0}]}),
        ("FILTER n <= 0", {"op": "<=", "args": [{"ident": "n"}, {"val": 0}]}),
        ('FILTER "Yoda" = name', {"op": "=", "args": [{"ident": "name"}, {"val": "Yoda"}]}),
        ("FILTER 5 < n", {"op": ">", "args": [{"ident": "n"}, {"val": 5}]}),
        ("FILTER flag = true", {"op": "=", "args": [{"ident": "flag"}, {"val": True}]}),
        ("FILTER flag = FALSE", {"op": "=", "args": [{"ident": "flag"}, {"val": False}]}),
        ("FILTER x = null", {"op": "=", "args": [{"ident": "x"}, {"val": None}]}),
        ("FILTER EXISTS email", {"op": "exists", "args": [EMAIL]}),
        ("exists email", {"op": "exists", "args": [EMAIL]}),
        (
            'FILTER c IN ("a", "b", 1)',
            {"op": "in", "args": [{"ident": "c"}, {"val": "a"}, {"val": "b"}, {"val": 1}]},
        ),
        ('FILTER c IN ("a"\n "b")', {"op": "in", "args": [{"ident": "c"}, {"val": "a"}, {"val": "b"}]}),
        (
            'FILTER c NOT IN ("a")',
            {"op": "not", "args": [{"op": "in", "args": [{"ident": "c"}, {"val": "a"}]}]},
        ),
        ('FILTER c CONTAINS "x"', {"op": "contains", "args": [{"ident": "c"}, {"val": "x"}]}),
        (
            'FILTER c NOT CONTAINS "x"',
            {"op": "not", "args": [{"op": "contains", "args": [{"ident": "c"}, {"val": "x"}]}]},
        ),
        ('FILTER c LIKE "a*"', {"op": "like", "args": [{"ident": "c"}, {"val": "a*"}]}),
        ('FILTER c not like "a*"', {"op": "not", "args": [{"op": "like", "args": [{"ident": "c"}, {"val": "a*"}]}]}),
        (
            'FILTER c INTERSECTS ("a", "b")',
            {"op": "intersects", "args": [{"ident": "c"}, {"val": "a"}, {"val": "b"}]},
        ),
        (
            "FILTER n BETWEEN 1 AND 5",
            {"op": "between", "args": [{"ident": "n"}, {"val": 1}, {"val": 5}]},
        ),
        ("FILTER INCLUDE vip", {"op": "include", "args": [{"seg": "vip"}]}),
        ('FILTER INCLUDE "seg id"', {"op": "include", "args": [{"seg": "seg id"}]}),
        ("FILTER INCLUDE 0a1b2c3d", {"op": "include", "args": [{"seg": "0a1b2c3d"}]}),
        ("FILTER NOT EXISTS email", {"op": "not", "args": [{"op": "exists", "args": [EMAIL]}]}),
        ("FILTER NOT(EXISTS email)", {"op": "not", "args": [{"op": "exists", "args": [EMAIL]}]}),
        ("FILTER scores.momentum > 5", {"op": ">", "args": [{"ident": "scores.momentum"}, {"val": 5}]}),
        ("FILTER `first name` = 'Jo'", {"op": "=", "args": [{"ident": "first name"}, {"val": "Jo"}]}),
        ("FILTER app.`1602` = 1", {"op": "=", "args": [{"ident": "app.1602"}, {"val": 1}]}),
        ("FILTER `from` = 1", {"op": "=", "args": [{"ident": "from"}, {"val": 1}]}),
        (
            'FILTER geodistance(geo, "45.5,-122.6", 10)',
            {"op": "geodistance", "args": [{"ident": "geo"}, {"val": "45.5,-122.6"}, {"val": 10}]},
        ),
        (
            "FILTER timewindow(visits, 5, 7)",
            {"op": "timewindow", "args": [{"ident": "visits"}, {"val": 5}, {"val": 7}]},
        ),
        ("FILTER OR(true, false)", {"op": "or", "args": [{"val": True}, {"val": False}]}),
    ],
)
def test_parse_constructs(text: str, expected: dict) -> None:
    assert parse(text).to_ast() == expected


@pytest.mark.parametrize(
    "text",
    [
        "FILTER AND(a = 1, b = 2, c = 3)",
        "FILTER AND (a = 1, b = 2, c = 3,)",
        "FILTER AND(\n  a = 1\n  b = 2\n  c = 3\n)",
        "FILTER AND(\n  a = 1,  -- first\n  b = 2   -- second\n  c = 3\n)",
        "FILTER a = 1 AND b = 2 AND c = 3",
        "FILTER (a = 1 AND b = 2) and c = 3",
        "filter and(a = 1, AND(b = 2, c = 3))",
    ],
)
def test_and_forms_are_equivalent(text: str) -> None:
    flt = parse(text)
    assert flt.matches({"a": 1, "b": "2", "c": 3.0})
    assert not flt.matches({"a": 1, "b": 2, "c": 4})
    assert flt.referenced_fields() == {"a", "b", "c"}


def test_infix_precedence_and_binds_tighter_than_or() -> None:
    tree = parse("FILTER a = 1 OR b = 2 AND c = 3").to_ast()
    assert tree["op"] == "or"
    assert tree["args"][1]["op"] == "and"
    grouped = parse("FILTER (a = 1 OR b = 2) AND c = 3").to_ast()
    assert grouped["op"] == "and"
    assert parse("FILTER a = 1 OR b = 2 AND c = 3").matches({"a": 1})
    assert not parse("FILTER (a = 1 OR b = 2) AND c = 3").matches({"a": 1})


def test_not_binds_to_the_next_condition() -> None:
    flt = parse('FILTER NOT a = "x" AND b = 1')
    assert flt.to_ast()["op"] == "and"
    assert flt.matches({"a": "y", "b": 1})
    assert not flt.matches({"a": "x", "b": 1})


def test_newline_starting_with_and_paren_is_a_new_argument() -> None:
    flt = parse("FILTER OR(\n  a = 1\n  AND(b = 1, c = 1)\n)")
    assert [arg["op"] for arg in flt.to_ast()["args"]] == ["=", "and"]
    assert flt.matches({"b": 1, "c": 1})


def test_multiline_statement_with_comments_and_clauses() -> None:
    text = """
    -- VIP buyers
    FILTER AND (
        country = "US",            -- only the US
        last_purchase > "now-30d"
        `actioncounts.Web hit` >= 10
    )
    FROM user
    ALIAS recent_us_buyers
    WITH name = "Recent US buyers", description = "Bought in the last \\"30\\" days"
    """
    flt = parse(text)
    assert flt.text == text
    assert flt.table == "user"
    assert flt.alias == "recent_us_buyers"
    assert flt.name == "Recent US buyers"
    assert flt.description == 'Bought in the last "30" days'
    assert flt.referenced_fields() == {"country", "last_purchase", "actioncounts.Web hit"}


@pytest.mark.parametrize(
    ("text", "table", "alias", "name", "description"),
    [
        ("FILTER *", "user", None, None, None),
        ("FILTER * FROM content", "content", None, None, None),
        ("FILTER * ALIAS all_users", "user", "all_users", None, None),
        ('FILTER * alias "quoted_slug" from content', "content", "quoted_slug", None, None),
        ('FILTER * WITH name = "N"', "user", None, "N", None),
        ('FILTER * ALIAS s WITH description = "D", name = "N"', "user", "s", "N", "D"),
        ('email = "x" FROM user ALIAS x WITH name="X"', "user", "x", "X", None),
    ],
)
def test_clauses(text: str, table: str, alias: str | None, name: str | None, description: str | None) -> None:
    flt = parse(text)
    assert (flt.table, flt.alias, flt.name, flt.description) == (table, alias, name, description)


def test_with_keeps_extra_properties_read_only() -> None:
    flt = parse('FILTER * WITH name = "N", is_public = true, tags = ("a", "b")')
    assert flt.properties["is_public"] is True
    assert flt.properties["tags"] == ("a", "b")
    with pytest.raises(TypeError):
        flt.properties["name"] = "other"  # type: ignore[index]


def test_string_escapes() -> None:
    flt = parse(r'FILTER s = "a\"b\\c\n\u00e9\/"')
    assert flt.to_ast()["args"][1]["val"] == 'a"b\\c\né/'


def test_referenced_fields_and_includes() -> None:
    flt = parse(
        'FILTER AND(EXISTS a, b.c > 1, NOT d IN ("x"), OR(INCLUDE s1, NOT INCLUDE s2), geodistance(g, "1,2", 3))'
    )
    assert flt.referenced_fields() == {"a", "b.c", "d", "g"}
    assert flt.includes() == {"s1", "s2"}
    assert parse("FILTER *").referenced_fields() == set()
    assert parse("FILTER *").is_match_all


def test_parse_result_is_immutable_and_comparable() -> None:
    a, b = parse("FILTER x = 1"), parse("FILTER x = 1")
    assert a == b
    with pytest.raises(AttributeError):
        a.alias = "x"  # type: ignore[misc]
    with pytest.raises(TypeError, match="parse"):
        ParsedFilter("FILTER x = 1")


# --------------------------------------------------------------------------------------------------
# Errors: clear message with prefix, position and hint
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment", "line", "col"),
    [
        ("FILTER AND(a = 1, b = 2", "unbalanced parentheses", 1, 24),
        ("FILTER AND(a = 1,\n b = 2", "opened at 1:11", 2, 7),
        ("FILTER a = 1)", "')' has no matching '('", 1, 13),
        ("FILTER (a = 1", "expected ')'", 1, 14),
        ('FILTER c IN ("a", "b"', "expected ')' to close the IN list", 1, 22),
        ("FILTER a ~= 1", "unknown operator '~='", 1, 10),
        ('FILTER a EQUALS "x"', "unknown operator 'EQUALS'", 1, 10),
        ('FILTER a NOT EQUALS "x"', "unknown operator 'EQUALS'", 1, 14),
        ('FILTER a = "abc', "unterminated string", 1, 12),
        ('FILTER AND(\n  a = 1,\n  b = "oops\n)', "unterminated string", 3, 7),
        ("FILTER `first name = 1", "unterminated backtick", 1, 8),
        ("FILTER", "FILTER has no condition", 1, 7),
        ("", "empty filter", 1, 1),
        ("   -- only a comment", "empty filter", 1, 21),
        ('FILTER a > "now-3x"', "invalid date math 'now-3x'", 1, 12),
        ('FILTER a > "2024-13-45"', "invalid date", 1, 12),
        ("FILTER a BETWEEN 1 5", "expected AND in BETWEEN", 1, 20),
        ("FILTER a = b", "expected a value", 1, 12),
        ("FILTER a = now-30d", "expected a value", 1, 12),
        ("FILTER a > true", "cannot compare with true", 1, 12),
        ("FILTER a IN (null)", "null is not allowed", 1, 14),
        ("FILTER a IN ()", "empty IN list", 1, 13),
        ('FILTER a IN "x"', "expected '(' after IN", 1, 13),
        ("FILTER AND()", "needs at least one condition", 1, 12),
        ("FILTER a = 1 b = 2", "unexpected 'b' after the end of the condition", 1, 14),
        ("FILTER AND(a = 1 b = 2)", "expected ',' or ')'", 1, 18),
        ("FILTER a = 1 FROM", "expected a table name", 1, 18),
        ("FILTER * ALIAS a ALIAS b", "duplicate ALIAS", 1, 18),
        ("FILTER a = 1 AND", "unexpected end of input", 1, 17),
        ("FILTER NOT", "unexpected end of input", 1, 11),
        ("FILTER a # 1", "unexpected character '#'", 1, 10),
        ('FILTER a = "x\\q"', "unknown escape", 1, 14),
        ("FILTER from = 1", "expected a condition", 1, 8),
        ("FILTER a LIKE 5", "needs a quoted pattern", 1, 15),
        ("FILTER frobnicate(a, 1)", "unknown function 'frobnicate'", 1, 8),
        ("FILTER geodistance(g, 1, 2)", "wrong argument types", 1, 8),
        ('FILTER geodistance(g, "north", 2)', "invalid geodistance centre", 1, 8),
        ("FILTER timewindow(v, 1)", "takes 3 arguments", 1, 8),
        ("FILTER * WITH name = 5", "WITH name must be a string", None, None),
        ("FILTER x > -5abc", "malformed number", 1, 12),
    ],
)
def test_error_messages(text: str, fragment: str, line: int | None, col: int | None) -> None:
    with pytest.raises(FilterQLError) as info:
        validate(text)
    err = info.value
    message = str(err)
    assert message.startswith("Failed parsing segment QL: ")
    assert fragment in message
    assert (err.line, err.col) == (line, col)
    if line is not None:
        assert f"at {line}:{col}" in message


def test_errors_carry_hints_and_are_value_errors() -> None:
    with pytest.raises(ValueError, match=r"hint: close the string"):
        parse('FILTER a = "x')
    with pytest.raises(FilterQLError, match="backticks"):
        parse("FILTER from = 1 AND `in` = 2")


def test_non_string_input_is_rejected() -> None:
    with pytest.raises(FilterQLError, match="expected FilterQL text"):
        parse(b"FILTER *")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Evaluation truth tables
# --------------------------------------------------------------------------------------------------

PROFILE = {
    "email": "Ann@Example.com",
    "score": "83",
    "score_num": 83,
    "ratio": 0.42,
    "ratio_str": "0.42",
    "zip": "05401",
    "flag": True,
    "flag_str": "true",
    "zero": 0,
    "off": False,
    "empty": "",
    "none": None,
    "nolist": [],
    "tags": ["red", "blue"],
    "nums": ["1", "20", "300"],
    "mixed": [5, "7"],
    "scores": {"momentum": "12", "recency": 40},
    "flat.dotted": "flat",
    "first name": "Ann",
    "actioncounts": {"Web hit": 10},
    "city": "Portland",
}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # equality, type tolerant, case-sensitive
        ('email = "Ann@Example.com"', True),
        ('email = "ann@example.com"', False),
        ("score = 83", True),
        ('score = "83"', True),
        ("score = 83.0", True),
        ("score_num = 83", True),
        ('score_num = "83"', True),
        ('score_num = "83.0"', True),
        ("ratio = 0.42", True),
        ("ratio_str = 0.42", True),
        ('zip = "05401"', True),
        ("zip = 5401", True),
        ("flag = true", True),
        ('flag = "true"', True),
        ("flag_str = true", True),
        ("flag = false", False),
        ("off = false", True),
        ("zero = 0", True),
        # inequality: present and different; missing never matches
        ('email != "x"', True),
        ('email != "Ann@Example.com"', False),
        ('missing != "x"', False),
        ('empty != "x"', False),
        ('none != "x"', False),
        ('NOT missing = "x"', True),
        ('tags != "green"', True),
        ('tags != "red"', False),
        # null
        ("missing = null", True),
        ("email = null", False),
        ("email != null", True),
        ("empty = null", True),
        # numeric ordering on strings and numbers
        ("score > 80", True),
        ("score > 100", False),
        ('score > "9"', True),
        ("score >= 83", True),
        ("score < 83", False),
        ("score <= 83", True),
        ("ratio_str > 0.4", True),
        ("score_num < 100", True),
        ("missing > 1", False),
        ("missing < 1", False),
        ("email > 5", False),
        # string ordering when the literal is not a number
        ('city > "Boston"', True),
        ('city < "Boston"', False),
        # lists: any element
        ('tags = "blue"', True),
        ('tags = "green"', False),
        ("nums > 250", True),
        ("nums > 500", False),
        ("mixed = 7", True),
        ('mixed = "5"', True),
        ("nolist = 1", False),
        # EXISTS
        ("EXISTS email", True),
        ("EXISTS missing", False),
        ("EXISTS empty", False),
        ("EXISTS none", False),
        ("EXISTS nolist", False),
        ("EXISTS zero", True),
        ("EXISTS off", True),
        ("EXISTS scores.momentum", True),
        ("EXISTS scores.nothing", False),
        ("NOT EXISTS missing", True),
        # IN / NOT IN
        ('city IN ("Portland", "Boston")', True),
        ('city IN ("portland")', False),
        ('score IN ("1", 83)', True),
        ("score_num IN (83)", True),
        ('score_num IN ("83")', True),
        ('tags IN ("green", "red")', True),
        ('city NOT IN ("Boston")', True),
        ('city NOT IN ("Portland")', False),
        ('missing IN ("x")', False),
        ('missing NOT IN ("x")', True),
        ("flag IN (true)", True),
        ('flag IN ("true")', True),
        # CONTAINS
        ('email CONTAINS "Example"', True),
        ('email CONTAINS "example"', False),
        ('tags CONTAINS "red"', True),
        ('tags CONTAINS "re"', False),
        ("nums CONTAINS 20", True),
        ('scores CONTAINS "momentum"', True),
        ('missing CONTAINS "x"', False),
        ('email NOT CONTAINS "zzz"', True),
        # LIKE: * wildcard, case-insensitive, whole value
        ('email LIKE "ann@*"', True),
        ('email LIKE "*@EXAMPLE.COM"', True),
        ('email LIKE "*example*"', True),
        ('email LIKE "a*@*.com"', True),
        ('email LIKE "ann"', False),
        ('email LIKE "ann@example.com"', True),
        ('email LIKE "b*"', False),
        ('email LIKE "*"', True),
        ('tags LIKE "bl*"', True),
        ('score LIKE "8*"', True),
        ('email LIKE "a.n*"', False),
        ('missing LIKE "*"', False),
        ('email NOT LIKE "b*"', True),
        # INTERSECTS
        ('tags INTERSECTS ("green", "blue")', True),
        ('tags INTERSECTS ("green")', False),
        ('city INTERSECTS ("Portland")', True),
        ('tags NOT INTERSECTS ("green")', True),
        ("nums INTERSECTS (300)", True),
        # BETWEEN (inclusive)
        ("score BETWEEN 80 AND 90", True),
        ("score BETWEEN 83 AND 83", True),
        ("score BETWEEN 84 AND 90", False),
        ("nums BETWEEN 2 AND 19", False),
        ("nums BETWEEN 2 AND 20", True),
        ("score NOT BETWEEN 1 AND 10", True),
        # map access
        ("scores.momentum > 10", True),
        ("scores.recency = 40", True),
        ("scores.momentum.deeper = 1", False),
        ('flat.dotted = "flat"', True),
        ('`first name` = "Ann"', True),
        ("`actioncounts.Web hit` = 10", True),
        ("actioncounts.`Web hit` >= 10", True),
        # constants and match all
        ("*", True),
        ("true", True),
        ("OR(false, AND(true, false))", False),
    ],
)
def test_truth_table(condition: str, expected: bool) -> None:
    assert parse(f"FILTER {condition}").matches(PROFILE, now=NOW) is expected


def test_profile_must_be_a_mapping() -> None:
    with pytest.raises(TypeError, match="profile must be a mapping"):
        parse("FILTER *").matches(["email"])  # type: ignore[arg-type]


def test_empty_profile_only_matches_match_all_and_negations() -> None:
    assert parse("FILTER *").matches({})
    assert parse("FILTER NOT EXISTS email").matches({})
    assert not parse('FILTER email != "x"').matches({})
    assert not parse('FILTER email LIKE "*"').matches({})


# --------------------------------------------------------------------------------------------------
# Dates and date math
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("now", NOW),
        ("NOW", NOW),
        ("now-30d", NOW - timedelta(days=30)),
        ("now+2h", NOW + timedelta(hours=2)),
        ("now-90m", NOW - timedelta(minutes=90)),
        ("now-45s", NOW - timedelta(seconds=45)),
        ("now-2w", NOW - timedelta(weeks=2)),
        ("now-3M", datetime(2024, 3, 15, 12, tzinfo=UTC)),
        ("now+1y", datetime(2025, 6, 15, 12, tzinfo=UTC)),
        ("now-1d+2h", NOW - timedelta(hours=22)),
        ("now-1d/d", datetime(2024, 6, 14, tzinfo=UTC)),
        ("now/M", datetime(2024, 6, 1, tzinfo=UTC)),
        ("now/w", datetime(2024, 6, 10, tzinfo=UTC)),
        ("now-30D", NOW - timedelta(days=30)),
        ("nowhere", None),
        ("2024-01-01", None),
        ("", None),
    ],
)
def test_parse_date_math(expr: str, expected: datetime | None) -> None:
    assert parse_date_math(expr, NOW) == expected


def test_date_math_month_end_clamps_and_naive_now_is_utc() -> None:
    assert parse_date_math("now-1M", datetime(2024, 3, 31, 8, tzinfo=UTC)) == datetime(2024, 2, 29, 8, tzinfo=UTC)
    assert parse_date_math("now-1y", datetime(2024, 2, 29)) == datetime(2023, 2, 28, tzinfo=UTC)


@pytest.mark.parametrize("expr", ["now-3x", "now-", "now--1d", "now-1d/q", "now 1d"])
def test_parse_date_math_rejects_malformed(expr: str) -> None:
    with pytest.raises(FilterQLError, match="date math"):
        parse_date_math(expr, NOW)


TEN_DAYS_AGO = NOW - timedelta(days=10)
FORTY_DAYS_AGO = NOW - timedelta(days=40)


@pytest.mark.parametrize(
    "value",
    [
        TEN_DAYS_AGO.isoformat(),
        TEN_DAYS_AGO.strftime("%Y-%m-%dT%H:%M:%SZ"),
        TEN_DAYS_AGO.strftime("%Y-%m-%dT%H:%M:%S.123456789Z"),
        TEN_DAYS_AGO.strftime("%Y-%m-%d %H:%M:%S"),
        TEN_DAYS_AGO.astimezone(timezone(timedelta(hours=-7))).isoformat(),
        int(ts(TEN_DAYS_AGO)),
        int(ts(TEN_DAYS_AGO) * 1000),
        str(int(ts(TEN_DAYS_AGO))),
        str(int(ts(TEN_DAYS_AGO) * 1000)),
        ts(TEN_DAYS_AGO),
        TEN_DAYS_AGO,
        TEN_DAYS_AGO.replace(tzinfo=None),
        [FORTY_DAYS_AGO.isoformat(), TEN_DAYS_AGO.isoformat()],
    ],
)
def test_date_value_formats(value: object) -> None:
    profile = {"last": value}
    assert parse('FILTER last > "now-30d"').matches(profile, now=NOW)
    assert not parse('FILTER last > "now-5d"').matches(profile, now=NOW)
    assert parse('FILTER last BETWEEN "now-11d" AND "now-9d"').matches(profile, now=NOW)
    assert parse('FILTER last > "2024-06-01"').matches(profile, now=NOW)
    assert not parse('FILTER last > "2024-06-10T00:00:00Z"').matches(profile, now=NOW)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ('d < "now-30d"', True),
        ('d > "now-30d"', False),
        ("d > 1700000000000", True),  # epoch ms literal against an ISO value
        ("d > 1700000000", True),  # epoch seconds literal
        ("d < 1700000000", False),
        ('d = "2023-12-01T00:00:00Z"', True),
        ('d = "2023-12-01"', True),
        ('d = "12/01/2023"', True),
        ('d != "2023-12-02"', True),
        ('d > "not a date"', False),
        ('missing_date > "now-1y"', False),
        ('garbage > "now-1y"', False),
    ],
)
def test_date_comparisons(condition: str, expected: bool) -> None:
    profile = {"d": "2023-12-01T00:00:00Z", "garbage": "soon"}
    assert parse(f"FILTER {condition}").matches(profile, now=NOW) is expected


def test_date_math_follows_now() -> None:
    flt = parse('FILTER seen > "now-1d"')
    profile = {"seen": "2024-06-15T00:00:00Z"}
    assert flt.matches(profile, now=NOW)
    assert not flt.matches(profile, now=NOW + timedelta(days=2))
    assert flt.matches(profile, now=datetime(2024, 6, 15, 6))  # naive now is UTC


def test_default_now_is_wall_clock() -> None:
    recent = datetime.now(UTC) - timedelta(minutes=5)
    assert parse('FILTER seen > "now-1h"').matches({"seen": recent.isoformat()})
    assert not parse('FILTER seen > "now-1m"').matches({"seen": recent.isoformat()})


def test_timewindow_counts_recent_timestamps() -> None:
    visits = [(NOW - timedelta(days=d)).isoformat() for d in (1, 2, 3, 10)]
    assert parse("FILTER timewindow(visits, 3, 7)").matches({"visits": visits}, now=NOW)
    assert not parse("FILTER timewindow(visits, 4, 7)").matches({"visits": visits}, now=NOW)
    by_key = {"a": ts(NOW - timedelta(days=1)) * 1000, "b": ts(NOW - timedelta(days=30)) * 1000}
    assert parse("FILTER timewindow(visits, 1, 7)").matches({"visits": by_key}, now=NOW)
    assert not parse("FILTER timewindow(visits, 1, 7)").matches({}, now=NOW)


@pytest.mark.parametrize(
    ("geo", "expected"),
    [
        ("45.52,-122.68", True),  # Portland downtown
        ({"lat": 45.50, "lon": -122.65}, True),
        ([45.53, -122.66], True),
        (["47.61,-122.33", "45.52,-122.67"], True),  # Seattle, Portland
        ("47.61,-122.33", False),  # Seattle, ~230 km away
        ("nowhere", False),
        (None, False),
    ],
)
def test_geodistance(geo: object, expected: bool) -> None:
    flt = parse('FILTER geodistance(geo, "45.515,-122.678", 25)')
    assert flt.matches({"geo": geo}) is expected


# --------------------------------------------------------------------------------------------------
# INCLUDE
# --------------------------------------------------------------------------------------------------


def make_resolver(defs: dict[str, str], calls: list[str] | None = None):
    segments = {slug: parse(text) for slug, text in defs.items()}

    def resolve(slug: str) -> ParsedFilter | None:
        if calls is not None:
            calls.append(slug)
        return segments.get(slug)

    return resolve


def test_include_resolves_other_segments() -> None:
    resolve = make_resolver({"adults": "FILTER age >= 18", "us": 'FILTER country = "US" ALIAS us'})
    flt = parse("FILTER AND(INCLUDE adults, INCLUDE us, NOT INCLUDE us_blocked)")
    with pytest.raises(FilterQLError, match="unknown segment 'us_blocked'"):
        flt.matches({"age": 30, "country": "US"}, include=resolve)
    flt = parse("FILTER AND(INCLUDE adults, INCLUDE us)")
    assert flt.matches({"age": "30", "country": "US"}, include=resolve)
    assert not flt.matches({"age": 12, "country": "US"}, include=resolve)
    assert not flt.matches({"age": 30, "country": "FR"}, include=resolve)


def test_include_nested_and_negated() -> None:
    resolve = make_resolver({"a": "FILTER x = 1", "b": "FILTER OR(INCLUDE a, y = 1)"})
    flt = parse("FILTER NOT INCLUDE b")
    assert flt.matches({"x": 2, "y": 2}, include=resolve)
    assert not flt.matches({"x": 1}, include=resolve)


@pytest.mark.parametrize("resolver", [None, make_resolver({})])
def test_include_unknown_segment_raises_at_match_time(resolver) -> None:
    flt = parse("FILTER INCLUDE ghost")
    with pytest.raises(FilterQLError, match="unknown segment 'ghost'") as info:
        flt.matches({}, include=resolver)
    assert (info.value.line, info.value.col) == (1, 16)


def test_include_resolver_must_return_parsed_filter() -> None:
    with pytest.raises(FilterQLError, match="expected a ParsedFilter"):
        parse("FILTER INCLUDE x").matches({}, include=lambda slug: "FILTER *")


@pytest.mark.parametrize(
    "defs",
    [
        {"a": "FILTER INCLUDE a ALIAS a"},
        {"a": "FILTER INCLUDE b ALIAS a", "b": "FILTER INCLUDE a ALIAS b"},
        {"a": "FILTER AND(x = 1, INCLUDE b)", "b": "FILTER OR(y = 1, INCLUDE c)", "c": "FILTER NOT INCLUDE a"},
    ],
)
def test_include_cycles_are_detected(defs: dict[str, str]) -> None:
    resolve = make_resolver(defs)
    with pytest.raises(FilterQLError, match="INCLUDE cycle detected"):
        parse("FILTER INCLUDE a").matches({"x": 1, "y": 2}, include=resolve)


def test_include_cycle_through_the_top_level_filter() -> None:
    top = parse("FILTER INCLUDE helper ALIAS top")
    segments = {"top": top, "helper": parse("FILTER INCLUDE top ALIAS helper")}
    with pytest.raises(FilterQLError, match=r"cycle detected: top -> helper -> top"):
        top.matches({}, include=segments.get)


def test_diamond_include_is_not_a_cycle() -> None:
    resolve = make_resolver(
        {"a": "FILTER AND(INCLUDE b, INCLUDE c)", "b": "FILTER INCLUDE d", "c": "FILTER INCLUDE d", "d": "FILTER x = 1"}
    )
    assert parse("FILTER INCLUDE a").matches({"x": 1}, include=resolve)


def test_matcher_resolves_each_include_once_per_scan() -> None:
    calls: list[str] = []
    resolve = make_resolver({"adults": "FILTER age >= 18"}, calls)
    match = parse("FILTER INCLUDE adults").matcher(include=resolve)
    results = [match({"age": age}) for age in (10, 20, 30, 40)]
    assert results == [False, True, True, True]
    assert calls == ["adults"]


def test_matcher_anchors_date_math_to_one_now() -> None:
    match = parse('FILTER seen > "now-1d"').matcher(now=NOW)
    assert match({"seen": "2024-06-15T00:00:00Z"})
    assert not match({"seen": "2024-06-13T00:00:00Z"})


# --------------------------------------------------------------------------------------------------
# JSON AST round trip
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "FILTER *",
        'FILTER AND(email = "a\\"b", score >= 5.5, NOT tags INTERSECTS ("x", "y"), OR(INCLUDE vip, c LIKE "a*"))',
        'FILTER AND(`first name` = "Ann", `actioncounts.Web hit` > 3, `from` = 1, n BETWEEN 1 AND 2)',
        'FILTER AND(x = null, flag = true, EXISTS e, c CONTAINS "q", c NOT IN (1, 2.5, "z"))',
        'FILTER AND(geodistance(g, "1,2", 3), timewindow(v, 1, 2), OR(true, false), INCLUDE "odd id")',
    ],
)
def test_ast_round_trip(text: str) -> None:
    original = parse(text)
    rebuilt = from_ast(original.to_ast())
    assert rebuilt.to_ast() == original.to_ast()


def test_format_ast_with_clauses() -> None:
    text = format_ast({"op": "=", "args": [{"ident": "email"}, {"val": "a"}]}, table="user", alias="s", name="N")
    flt = parse(text)
    assert (flt.table, flt.alias, flt.name) == ("user", "s", "N")
    assert flt.matches({"email": "a"})


@pytest.mark.parametrize(
    ("tree", "fragment"),
    [
        ({"op": "frob", "args": []}, "unknown AST op"),
        ({"args": []}, 'needs an "op"'),
        ({"op": "=", "args": [{"ident": "a"}]}, "takes 2 arguments"),
        ({"op": "=", "args": [{"val": 1}, {"val": 1}]}, 'needs {"ident"'),
        ({"op": "=", "args": [{"ident": "a"}, {"val": [1]}]}, "must be a string, number"),
        ({"op": "and", "args": []}, "at least one argument"),
        ("FILTER *", "must be an object"),
    ],
)
def test_from_ast_rejects_bad_trees(tree: object, fragment: str) -> None:
    with pytest.raises(FilterQLError, match="Failed parsing segment QL") as info:
        from_ast(tree)  # type: ignore[arg-type]
    assert fragment in str(info.value)
