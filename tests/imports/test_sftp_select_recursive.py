"""Selection over nested listings (no server): relative paths, path patterns, newest and watermarks across folders,
and unchanged behaviour for flat listings and state written before recursion existed."""

from __future__ import annotations

import pytest

from airflow_provider_lytics.imports.watermark import select_new
from airflow_provider_lytics.io.sftp_errors import SftpConfigError
from airflow_provider_lytics.io.sftp_select import RemoteFile, filter_files, glob_match, newer_than, newest

BASE = "/inbox"


def _f(relative: str, mtime: float, size: int = 1) -> RemoteFile:
    return RemoteFile(f"{BASE}/{relative}", size, mtime, relative)


TREE = [
    _f("top.csv", 100),
    _f("2026/11/27/users.csv", 200),
    _f("2026/11/28/users.csv", 300),
    _f("2026/11/28/orders.csv", 300),
    _f("2026/11/28/.users.csv.1a2b3c.part", 400),
    _f("2026/11/28/users.csv.tmp", 400),
]


def test_flat_file_defaults_to_its_name_and_compares_equal() -> None:
    flat = RemoteFile("/inbox/a.csv", 1, 5.0)
    assert flat.relative == "a.csv"
    assert flat == RemoteFile("/inbox/a.csv", 1, 5.0, "a.csv")


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        ("2026/11/28/users.csv", "2026/*/*/users.csv", True),
        ("2026/11/28/users.csv", "2026/*/users.csv", False),  # '*' stays inside one folder
        ("2026/11/28/users.csv", "**/users.csv", True),
        ("users.csv", "**/users.csv", True),  # '**' may span no folder at all
        ("2026/11/28/users.csv", "2026/**", True),
        ("2026/11/28/users.csv", "2026/**/28/*.csv", True),
        ("2026/11/28/users.csv", "2027/**", False),
        ("2026/11/28/Users.csv", "**/users.csv", False),  # case-sensitive
    ],
)
def test_glob_match(path: str, pattern: str, expected: bool) -> None:
    assert glob_match(path, pattern) is expected


def test_name_patterns_match_at_any_depth_and_path_patterns_match_relative_paths() -> None:
    by_name = filter_files(TREE, glob="users.csv")
    assert [f.relative for f in by_name] == ["2026/11/27/users.csv", "2026/11/28/users.csv"]
    assert len({f.path for f in by_name}) == 2  # same name, distinct files
    assert [f.relative for f in filter_files(TREE, glob="2026/*/28/*.csv")] == [
        "2026/11/28/users.csv",
        "2026/11/28/orders.csv",
    ]
    assert [f.relative for f in filter_files(TREE, regex=r"\d{4}/\d{2}/27/.*")] == ["2026/11/27/users.csv"]
    assert [f.relative for f in filter_files(TREE, regex=r"users\.csv")] == [
        "2026/11/27/users.csv",
        "2026/11/28/users.csv",
    ]


def test_newest_across_folders_ties_broken_by_relative_path() -> None:
    tied = [_f("b/users.csv", 10), _f("a/users.csv", 10), _f("a/old.csv", 1)]
    assert newest(tied).relative == "b/users.csv"
    assert newest(list(reversed(tied))).relative == "b/users.csv"  # order of the listing does not matter


def test_mtime_watermark_across_folders_is_deterministic() -> None:
    files = [_f("b/x.csv", 200), _f("a/x.csv", 200), _f("c/y.csv", 100)]
    first = newer_than(files, None)
    assert [f.relative for f in first.files] == ["c/y.csv", "a/x.csv", "b/x.csv"]
    assert newer_than(files, first.watermark).files == []
    later = newer_than([*files, _f("d/new/x.csv", 300)], first.watermark)
    assert [f.relative for f in later.files] == ["d/new/x.csv"]


def test_name_watermark_reads_dated_folders() -> None:
    files = [_f("2026/11/28/users.csv", 1), _f("2026/11/27/users.csv", 2), _f("misc/users.csv", 3)]
    picked = newer_than(files, "2026-11-27", by="name", date_format="%Y/%m/%d")
    assert [f.relative for f in picked.files] == ["2026/11/28/users.csv"]
    assert picked.watermark == "2026-11-28" and picked.skipped == ["misc/users.csv"]
    # a date in the file name wins over the folder's (the last date in the path)
    named = newer_than([_f("2026-11-01/users_2026-11-30.csv", 1)], "2026-11-15", by="name")
    assert named.watermark == "2026-11-30"


def test_partial_uploads_in_sub_folders_are_never_selected() -> None:
    picked = select_new(TREE, None, by="mtime", now=10_000)
    assert [f.relative for f in picked.files] == [
        "top.csv",
        "2026/11/27/users.csv",
        "2026/11/28/orders.csv",
        "2026/11/28/users.csv",
    ]


def test_flat_selection_unchanged() -> None:
    """Files listed without recursion carry their name as relative path: same results as before."""
    flat = [RemoteFile(f"/in/users_2026-11-{d}.csv", 1, 100 - d) for d in (26, 27, 28)]
    picked = newer_than(flat, "2026-11-26", by="name")
    assert [f.name for f in picked.files] == ["users_2026-11-27.csv", "users_2026-11-28.csv"]
    assert filter_files(flat, glob="users_*.csv") == flat
    with pytest.raises(SftpConfigError, match="either"):
        filter_files(flat, glob="*", regex=".*")


def test_files_at_the_watermark_are_new_unless_already_taken():
    from airflow_provider_lytics.io.sftp_select import RemoteFile, newer_than

    a, b, old = (
        RemoteFile("/in/a.csv", 1, 1000.0),
        RemoteFile("/in/b.csv", 1, 1000.0),
        RemoteFile("/in/o.csv", 1, 900.0),
    )
    first = newer_than([a, old], None)
    assert [f.path for f in first.files] == ["/in/o.csv", "/in/a.csv"] and first.at_watermark == ["/in/a.csv"]
    second = newer_than([a, b, old], first.watermark, seen=first.at_watermark)
    assert [f.path for f in second.files] == ["/in/b.csv"] and second.watermark == first.watermark
    assert second.at_watermark == ["/in/a.csv", "/in/b.csv"]
    assert newer_than([a, b, old], second.watermark, seen=second.at_watermark).files == []
    assert newer_than([a, b, old], first.watermark).files == []  # no list (older state): strictly newer only


def test_dated_names_at_the_watermark_date_are_new_unless_already_taken():
    part1, part2 = RemoteFile("/in/users_2026-11-28_1.csv", 1, 1.0), RemoteFile("/in/users_2026-11-28_2.csv", 1, 2.0)
    first = newer_than([part1], "2026-11-27", by="name", seen=[])
    assert first.watermark == "2026-11-28" and first.at_watermark == [part1.path]
    second = newer_than([part1, part2], first.watermark, by="name", seen=first.at_watermark)
    assert second.files == [part2] and second.at_watermark == [part1.path, part2.path]


def test_stored_state_round_trips_and_reads_older_bare_watermarks():
    from airflow_provider_lytics.imports.watermark import decode_state, encode_state
    from airflow_provider_lytics.io.sftp_select import Selection

    stored = encode_state(Selection([], "2026-11-28T10:00:00+00:00", [], ["/in/a.csv"]))
    assert decode_state(stored) == ("2026-11-28T10:00:00+00:00", ["/in/a.csv"])
    assert decode_state("2026-11-28") == ("2026-11-28", None)
    assert decode_state(None) == (None, None)
    assert encode_state(Selection([], None)) is None
    with pytest.raises(ValueError, match="not valid JSON"):
        decode_state("{broken")
