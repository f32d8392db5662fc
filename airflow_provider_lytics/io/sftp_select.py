r"""Choosing remote files: by glob or regex, the newest one, or all newer than a watermark.

Pure functions over :class:`RemoteFile` lists, so they are testable without a server. Every file carries its path
relative to the listed directory (``relative``: just the name for a flat listing, ``2026/11/28/users.csv`` for a
recursive one), so two ``users.csv`` in different folders stay distinct. Patterns follow one rule:

* a pattern without ``/`` matches the file *name*, at any depth (``users_*.csv``, like ``find -name``);
* a pattern with ``/`` matches the *relative path*: in a glob ``*`` and ``?`` stay inside one folder and a ``**``
  segment spans any number of folders (``2026/*/*/users_*.csv``, ``**/in/*.csv``); a regex must match the whole
  relative path (``\d{4}/\d{2}/\d{2}/users\.csv``).

Two watermark kinds:

* ``by="mtime"``: the file's modification time (SFTP gives whole seconds). The watermark is an ISO-8601 UTC
  timestamp string; files strictly newer are selected.
* ``by="name"``: a date inside the file's relative path, e.g. ``users_2026-11-28.csv`` with
  ``date_format="%Y-%m-%d"``, or dated folders ``2026/11/28/users.csv`` with ``date_format="%Y/%m/%d"`` (the last
  date in the path wins). The watermark is that date (or date-time) in ISO form; files with a strictly later date
  are selected. Files whose paths hold no date are ignored (and listed in ``Selection.skipped``).

Selections come back oldest first (ties by relative path, so the order is deterministic), so loads happen in order,
and carry the new watermark to store (unchanged when nothing new arrived).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Literal

from airflow_provider_lytics.io.sftp_errors import SftpConfigError

WatermarkKind = Literal["mtime", "name"]

_DIRECTIVES = {
    "%Y": r"\d{4}",
    "%y": r"\d{2}",
    "%m": r"\d{2}",
    "%d": r"\d{2}",
    "%H": r"\d{2}",
    "%M": r"\d{2}",
    "%S": r"\d{2}",
    "%j": r"\d{3}",
    "%%": "%",
}
_TIME_DIRECTIVES = ("%H", "%M", "%S")


@dataclass(frozen=True)
class RemoteFile:
    """A regular file on the server; ``relative`` is its path below the listed directory (default: the name)."""

    path: str
    size: int
    mtime: float
    relative: str = ""

    def __post_init__(self) -> None:
        if not self.relative:
            object.__setattr__(self, "relative", self.name)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def modified(self) -> datetime:
        return datetime.fromtimestamp(self.mtime, tz=timezone.utc)


@dataclass(frozen=True)
class Selection:
    """Files chosen by a watermark query, oldest first, and the watermark to store for next time."""

    files: list[RemoteFile]
    watermark: str | None
    skipped: list[str] = field(default_factory=list)
    #: paths of the files taken whose time (or date) equals ``watermark``: a file arriving later with the same
    #: whole-second mtime (or the same date in its name) is new, these are not (see ``seen`` of :func:`newer_than`)
    at_watermark: list[str] = field(default_factory=list)


def _subject(f: RemoteFile, pattern: str) -> str:
    """What a pattern is matched against: the relative path when it names folders, else the file name."""
    return f.relative if "/" in pattern else f.name


def glob_match(path: str, pattern: str) -> bool:
    """Case-sensitive glob match of a relative path, folder by folder; a ``**`` segment spans any depth."""
    return _match_parts(tuple(pattern.strip("/").split("/")), tuple(path.split("/")))


def _match_parts(pattern: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match_parts(rest, parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], head) and _match_parts(rest, parts[1:])


def filter_files(files: list[RemoteFile], *, glob: str | None = None, regex: str | None = None) -> list[RemoteFile]:
    """Keep files matching ``glob`` (case-sensitive) or fully matching ``regex``: against the name, or against the
    relative path when the pattern contains ``/`` (see the module docstring)."""
    if glob is not None and regex is not None:
        raise SftpConfigError("Give either 'glob' or 'regex', not both.")
    if glob is not None:
        return [f for f in files if glob_match(_subject(f, glob), glob)]
    if regex is not None:
        try:
            compiled = re.compile(regex)
        except re.error as exc:
            raise SftpConfigError(f"Invalid file name regex {regex!r}: {exc}") from None
        return [f for f in files if compiled.fullmatch(_subject(f, regex))]
    return list(files)


def newest(files: list[RemoteFile]) -> RemoteFile | None:
    """The most recently modified file (ties broken by relative path, the greater wins), or None."""
    return max(files, key=lambda f: (f.mtime, f.relative), default=None)


def date_regex(date_format: str) -> re.Pattern[str]:
    """Turn a strftime-style ``date_format`` into a regex that finds such a date inside a file name."""
    pattern = []
    i = 0
    while i < len(date_format):
        token = date_format[i : i + 2]
        if token in _DIRECTIVES:
            pattern.append(_DIRECTIVES[token])
            i += 2
        elif date_format[i] == "%":
            raise SftpConfigError(
                f"date_format {date_format!r} uses {token!r}; supported: {', '.join(sorted(_DIRECTIVES))}."
            )
        else:
            pattern.append(re.escape(date_format[i]))
            i += 1
    if not any(d in date_format for d in ("%Y", "%y", "%j")):
        raise SftpConfigError(f"date_format {date_format!r} must contain a year (%Y or %y).")
    return re.compile("(?<!\\d)(" + "".join(pattern) + ")(?!\\d)")


def name_date(name: str, date_format: str, compiled: re.Pattern[str] | None = None) -> datetime | None:
    """The date found in ``name`` (a file name or relative path; the last one if several), or None."""
    compiled = compiled or date_regex(date_format)
    for match in reversed(list(compiled.finditer(name))):
        try:
            return datetime.strptime(match.group(1), date_format)
        except ValueError:
            continue
    return None


def _parse_watermark(value: str | float | int | datetime | date | None, kind: WatermarkKind) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        parsed = datetime.fromtimestamp(float(value), tz=timezone.utc)
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise SftpConfigError(
                f"Watermark {value!r} is not an ISO-8601 date or timestamp (e.g. '2026-11-28' or "
                "'2026-11-28T06:00:00+00:00')."
            ) from None
    if kind == "mtime":
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return (
        parsed.replace(tzinfo=None) if parsed.tzinfo is None else parsed.astimezone(timezone.utc).replace(tzinfo=None)
    )


def _format_name_watermark(value: datetime, date_format: str) -> str:
    if any(d in date_format for d in _TIME_DIRECTIVES):
        return value.isoformat()
    return value.date().isoformat()


def newer_than(
    files: list[RemoteFile],
    watermark: str | float | int | datetime | date | None,
    *,
    by: WatermarkKind = "mtime",
    date_format: str = "%Y-%m-%d",
    seen: Collection[str] | None = None,
) -> Selection:
    """Files newer than ``watermark`` (all files when it is None), oldest first, plus the new watermark.

    SFTP times are whole seconds and name dates whole days, so a second file can arrive *at* the watermark
    after the first was taken. ``seen`` lists the paths already taken at exactly the watermark (the previous
    selection's ``at_watermark``): with it, files at the watermark that are not in it are new too. Without it
    (``None``: a watermark stored by an older version, or given by hand) only strictly newer files are.
    """
    if by not in ("mtime", "name"):
        raise SftpConfigError(f"Watermark kind must be 'mtime' or 'name', got {by!r}.")
    since = _parse_watermark(watermark, by)
    taken = set(seen) if seen is not None else None

    def is_new(key: datetime, f: RemoteFile) -> bool:
        if since is None or key > since:
            return True
        return key == since and taken is not None and f.path not in taken

    skipped: list[str] = []
    keyed: list[tuple[datetime, RemoteFile]] = []
    if by == "mtime":
        keyed = [(f.modified, f) for f in files]
    else:
        compiled = date_regex(date_format)
        for f in files:
            found = name_date(f.relative, date_format, compiled)
            if found is None:
                skipped.append(f.relative)
            else:
                keyed.append((found, f))
    chosen = sorted(((k, f) for k, f in keyed if is_new(k, f)), key=lambda pair: (pair[0], pair[1].relative))
    newest = chosen[-1][0] if chosen else since
    at = {f.path for k, f in chosen if k == newest}
    if taken and newest == since:
        at |= taken
    if newest is None:
        new: str | None = None
    elif not chosen and by == "mtime":  # keep the stored text when nothing moved
        new = (
            since.isoformat()
            if since is not None and isinstance(watermark, (datetime, date, int, float))
            else str(watermark)
        )
    elif by == "mtime":
        new = newest.isoformat()
    else:
        new = _format_name_watermark(newest, date_format)
    return Selection([f for _, f in chosen], new, skipped, sorted(at))
