"""The member ledger: dedupe within a run, diff against the previous run, and the state file for the next one.

The ledger is an SQLite database in a private temporary directory (bounded page cache, so memory stays flat at
any audience size; about 60 bytes of disk per member). Table ``members(id, fp)`` holds every member exported in
this run with a 16-byte fingerprint of its exported values. The previous run's database (the *state*) is
attached read-only as ``prev``; a page of scanned members is classified with two indexed lookups: already seen
in this run (a cursor-restart duplicate, dropped), new (``added``), fingerprint differs (``changed``) or equal
(``unchanged``). Members in ``prev`` but not in ``members`` were ``removed``.

When the run succeeds, the ledger itself becomes the next state: gzip-compressed (:func:`pack_state`) and
stored next to the exports. A failed run never stores it, so the state only advances with complete exports.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_provider_lytics.exports.errors import ExportStateError

STATE_FORMAT = "lytics-export-state/1"
_CACHE_KIB = 16 * 1024  # SQLite page cache per database: 16 MiB


def fingerprint(row: Mapping[str, Any], columns: Sequence[str]) -> bytes:
    """16-byte BLAKE2b of the exported values, in column order (a change in any exported field changes it)."""
    payload = json.dumps([row.get(c) for c in columns], ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=16).digest()


def pack_state(db_path: str | Path, out_path: str | Path) -> None:
    """gzip the ledger database into the state file (streamed)."""
    with open(db_path, "rb") as src, gzip.open(out_path, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def unpack_state(gz_path: str | Path, db_path: str | Path) -> None:
    """Restore a state file into an SQLite database file; raise :class:`ExportStateError` if it is not one."""
    try:
        with gzip.open(gz_path, "rb") as src, open(db_path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (OSError, EOFError) as exc:
        raise ExportStateError(
            f"the incremental state file is damaged ({exc}): pass reset_state=True to start again"
        ) from None


def _has_json_each() -> bool:
    try:
        sqlite3.connect(":memory:").execute("SELECT value FROM json_each('[1]')").fetchall()
    except sqlite3.Error:
        return False
    return True


# A page of ids as one JSON parameter: one statement (one lock release) per page instead of one per row.
_JSON_EACH = _has_json_each()
_ANY_SEEN = "SELECT EXISTS (SELECT 1 FROM members WHERE id IN (SELECT value FROM json_each(?)))"
_INSERT_IDS = "INSERT INTO members (id, fp) SELECT value, x'' FROM json_each(?)"


def _mark(old: bytes | None, fp: bytes) -> str:
    return "added" if old is None else ("unchanged" if old == fp else "changed")


class MemberLedger:
    """Dedupe and classify scanned members; see the module docstring."""

    def __init__(self, workdir: str | Path, previous_db: str | Path | None = None) -> None:
        self.path = Path(workdir) / "ledger.sqlite"
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, uri=True)
        c = self._conn
        c.execute("PRAGMA journal_mode=OFF")
        c.execute("PRAGMA synchronous=OFF")
        c.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        c.execute("PRAGMA temp_store=FILE")
        c.execute("CREATE TABLE members (id TEXT PRIMARY KEY, fp BLOB NOT NULL) WITHOUT ROWID")
        c.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        c.execute("ATTACH DATABASE ? AS aux", (str(Path(workdir) / "aux.sqlite"),))
        c.execute("PRAGMA aux.journal_mode=OFF")
        c.execute(
            "CREATE TABLE aux.membership (id TEXT NOT NULL, seg INTEGER NOT NULL, PRIMARY KEY (id, seg)) WITHOUT ROWID"
        )
        c.execute("BEGIN")
        self.has_previous = False
        self.previous_meta: dict[str, str] = {}
        if previous_db is not None:
            self._attach_previous(previous_db)

    def _attach_previous(self, previous_db: str | Path) -> None:
        try:
            self._conn.execute("ATTACH DATABASE ? AS prev", (Path(previous_db).resolve().as_uri() + "?mode=ro",))
            meta = dict(self._conn.execute("SELECT key, value FROM prev.meta"))
            self._conn.execute("SELECT id, fp FROM prev.members LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            raise ExportStateError(
                f"the incremental state is not a valid export state ({exc}): pass reset_state=True to start again"
            ) from None
        if meta.get("format") != STATE_FORMAT:
            raise ExportStateError(
                f"the incremental state has format {meta.get('format')!r}, expected {STATE_FORMAT!r}: "
                "pass reset_state=True to start again"
            )
        self.has_previous = True
        self.previous_meta = meta

    def previous_count(self) -> int:
        if not self.has_previous:
            return 0
        return int(self._conn.execute("SELECT count(*) FROM prev.members").fetchone()[0])

    # -- per page ------------------------------------------------------------------------------------------------
    def classify(self, entries: Sequence[tuple[str, bytes]], *, check_seen: bool = False) -> list[str | None]:
        """For each ``(id, fingerprint)``: ``added``/``changed``/``unchanged``, or ``None`` for a duplicate.

        Optimistic: a page is inserted without first looking up its ids (a scan pass has no duplicates). The
        insert stops at the first id already there (a page repeated after a cursor restart, or an id twice in the
        page): the rows before it are in and new, and the rest of the page is classified with a lookup. No
        rollback is involved (the ledger runs without a journal, where rollback is not reliable).
        """
        if not entries:
            return []
        prev: dict[str, bytes] = {}
        if self.has_previous:
            marks = ",".join("?" * len(entries))
            prev = dict(
                self._conn.execute(f"SELECT id, fp FROM prev.members WHERE id IN ({marks})", [e[0] for e in entries])
            )
        if check_seen:
            return self._classify_checked(entries, prev)
        inserted = self._insert_until_conflict(entries)
        if prev:
            head = [_mark(prev.get(member_id), fp) for member_id, fp in entries[:inserted]]
        else:
            head = ["added"] * inserted
        if inserted == len(entries):
            return head  # type: ignore[return-value]
        return [*head, *self._classify_checked(entries[inserted:], prev)]

    def _insert_until_conflict(self, entries: Sequence[tuple[str, bytes]]) -> int:
        """Insert in order; return how many rows went in before the first id already present (all: ``len``)."""
        conn = self._conn
        if _JSON_EACH and not any(e[1] for e in entries):  # no fingerprints (full runs): one statement per page
            ids = [e[0] for e in entries]
            payload = json.dumps(ids)
            if len(set(ids)) == len(ids) and not conn.execute(_ANY_SEEN, (payload,)).fetchone()[0]:
                conn.execute(_INSERT_IDS, (payload,))
                return len(ids)
        before = conn.total_changes
        try:
            conn.executemany("INSERT INTO members (id, fp) VALUES (?, ?)", entries)
        except sqlite3.IntegrityError:
            return conn.total_changes - before
        return len(entries)

    def _classify_checked(self, entries: Sequence[tuple[str, bytes]], prev: Mapping[str, bytes]) -> list[str | None]:
        """Classify with a lookup of the ids already in the ledger, then insert only the new ones."""
        ids = [e[0] for e in entries]
        marks = ",".join("?" * len(ids))
        seen = {r[0] for r in self._conn.execute(f"SELECT id FROM members WHERE id IN ({marks})", ids)}
        out: list[str | None] = []
        fresh: list[tuple[str, bytes]] = []
        for member_id, fp in entries:
            if member_id in seen:
                out.append(None)
                continue
            seen.add(member_id)
            fresh.append((member_id, fp))
            out.append(_mark(prev.get(member_id), fp))
        self._conn.executemany("INSERT INTO members (id, fp) VALUES (?, ?)", fresh)
        return out

    def removed(self) -> Iterator[str]:
        """Ids in the previous state that this run did not see (streamed)."""
        if not self.has_previous:
            return iter(())
        cur = self._conn.execute(
            "SELECT p.id FROM prev.members AS p WHERE NOT EXISTS (SELECT 1 FROM members AS m WHERE m.id = p.id)"
        )
        return (r[0] for r in cur)

    def count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM members").fetchone()[0])

    # -- audience membership columns ----------------------------------------------------------------------------
    def add_membership(self, seg: int, ids: Sequence[str]) -> None:
        self._conn.executemany("INSERT OR IGNORE INTO aux.membership (id, seg) VALUES (?, ?)", [(i, seg) for i in ids])

    def memberships(self, ids: Sequence[str]) -> dict[str, list[int]]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        found: dict[str, list[int]] = {}
        for member_id, seg in self._conn.execute(
            f"SELECT id, seg FROM aux.membership WHERE id IN ({marks}) ORDER BY seg", list(ids)
        ):
            found.setdefault(member_id, []).append(seg)
        return found

    # -- end -----------------------------------------------------------------------------------------------------
    def finish(self, meta: Mapping[str, Any]) -> Path:
        """Write ``meta``, commit and close; returns the database path (the next state, once packed)."""
        c = self._conn
        c.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [("format", STATE_FORMAT), *((k, v if isinstance(v, str) else json.dumps(v)) for k, v in meta.items())],
        )
        c.execute("COMMIT")
        if self.has_previous:
            c.execute("DETACH DATABASE prev")
        c.execute("DETACH DATABASE aux")
        c.close()
        return self.path

    def close(self) -> None:
        try:
            self._conn.close()
        except sqlite3.Error:
            pass
