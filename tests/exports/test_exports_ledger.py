"""Ledger dedupe when a page mixes new and already-seen members (a restart after the audience changed)."""

from __future__ import annotations

from airflow_provider_lytics.exports.ledger import MemberLedger, fingerprint, pack_state, unpack_state


def test_new_members_before_a_seen_one_are_kept(tmp_path):
    ledger = MemberLedger(tmp_path)
    assert ledger.classify([("a", b""), ("b", b"")]) == ["added", "added"]
    # after a restart: two new members, then a seen one, a new one, an id twice in the page, a seen one
    page = [("n1", b""), ("n2", b""), ("a", b""), ("n3", b""), ("n3", b""), ("b", b""), ("n4", b"")]
    assert ledger.classify(page) == ["added", "added", None, "added", None, None, "added"]
    assert ledger.count() == 6
    assert ledger.classify([("n4", b""), ("n5", b"")]) == [None, "added"]
    ledger.close()


def test_mixed_page_against_a_previous_state(tmp_path):
    cols = ["email"]
    (tmp_path / "a").mkdir()
    first = MemberLedger(tmp_path / "a")
    first.classify([("1", fingerprint({"email": "x"}, cols)), ("2", fingerprint({"email": "y"}, cols))])
    pack_state(first.finish({"watermark": "W1"}), tmp_path / "s.gz")
    (tmp_path / "b").mkdir()
    unpack_state(tmp_path / "s.gz", tmp_path / "b" / "prev.sqlite")
    second = MemberLedger(tmp_path / "b", tmp_path / "b" / "prev.sqlite")
    fx, fz = fingerprint({"email": "x"}, cols), fingerprint({"email": "z"}, cols)
    assert second.classify([("1", fx)]) == ["unchanged"]
    # "3" is new, "1" already seen in this run, "2" changed, "1" again
    assert second.classify([("3", fx), ("1", fx), ("2", fz), ("1", fx)]) == ["added", None, "changed", None]
    assert list(second.removed()) == []
    second.close()


def test_page_insert_keeps_ids_exactly(tmp_path):
    ledger = MemberLedger(tmp_path)
    odd = ['ä"q\\', "1", "01", " x ", "emoji \U0001f600", "a,b"]
    assert ledger.classify([(i, b"") for i in odd]) == ["added"] * len(odd)
    rows = ledger._conn.execute("SELECT id, typeof(id), fp, typeof(fp) FROM members ORDER BY id").fetchall()
    assert sorted(odd) == [r[0] for r in rows]
    assert {(r[1], r[2], r[3]) for r in rows} == {("text", b"", "blob")}
    assert ledger.classify([("01", b""), ("1 ", b"")]) == [None, "added"]
    ledger.close()
