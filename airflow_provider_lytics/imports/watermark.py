"""Continuous imports: choose only files new since the last successful run, and remember the new watermark.

The watermark is a modification time (ISO timestamp) or, for dated file names (``users_2026-11-28.csv``), the
date in the name, the way Lytics's own SFTP import works. It lives in an Airflow Variable (works on Airflow 2.11
and 3.x, on any worker) and moves forward only after an import succeeded.

Stored with it are the paths already taken *at* the watermark: SFTP times are whole seconds and name dates
whole days, so a file landing in the same second (or with the same date) after a run is still picked up by the
next one, and the files already imported are not imported again. The Variable holds
``{"watermark": ..., "at_watermark": [...]}`` as JSON; a bare timestamp or date (written by earlier versions,
or set by hand) still works, with strictly-newer semantics.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from airflow_provider_lytics.io.sftp_select import RemoteFile, Selection, filter_files, newer_than

WATERMARK_KINDS = ("none", "mtime", "name")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_PARTIAL_SUFFIXES = (".part", ".tmp", ".filepart", ".partial")


def default_watermark_key(dag_id: str, task_id: str) -> str:
    return "lytics_import_watermark__" + "__".join(_UNSAFE.sub("_", p) for p in (dag_id, task_id))


def read_watermark(key: str) -> str | None:
    from airflow.providers.common.compat.sdk import Variable

    value = Variable.get(key, None)
    return str(value) if value not in (None, "") else None


def write_watermark(key: str, value: str) -> None:
    from airflow.providers.common.compat.sdk import Variable

    Variable.set(key, value)


def decode_state(stored: str | None) -> tuple[str | None, list[str] | None]:
    """``(watermark, paths taken at it)`` from a Variable value; ``None`` paths for a bare (older) watermark."""
    if not stored or not stored.lstrip().startswith("{"):
        return stored, None
    try:
        doc = json.loads(stored)
    except ValueError:
        raise ValueError(
            f"The stored watermark {stored[:80]!r} is not valid JSON: fix or delete the Variable"
        ) from None
    at = doc.get("at_watermark")
    return doc.get("watermark"), [str(p) for p in at] if isinstance(at, list) else None


def encode_state(selection: Selection) -> str | None:
    """The Variable value that records ``selection``'s watermark and the paths taken at it."""
    if selection.watermark is None:
        return None
    return json.dumps({"watermark": selection.watermark, "at_watermark": selection.at_watermark}, sort_keys=True)


def list_local(directory: str, *, glob: str | None = None, regex: str | None = None) -> list[RemoteFile]:
    """Regular files in a local directory (not recursive) as :class:`RemoteFile` items, filtered by name."""
    base = Path(directory)
    if not base.is_dir():
        raise FileNotFoundError(f"Local directory {directory} does not exist")
    files = []
    for entry in base.iterdir():
        if entry.is_file():
            st = entry.stat()
            files.append(RemoteFile(str(entry), st.st_size, st.st_mtime))
    files.sort(key=lambda f: f.name)
    return filter_files(files, glob=glob, regex=regex)


def select_new(
    files: Iterable[RemoteFile],
    stored: str | None,
    *,
    by: str = "mtime",
    date_format: str = "%Y-%m-%d",
    min_age_seconds: float = 0.0,
    now: float | None = None,
) -> Selection:
    """Files new since the ``stored`` state (oldest first), skipping partial uploads and files younger than
    ``min_age_seconds`` (a writer may still be appending); ``by="none"`` selects every file. Store
    :func:`encode_state` of the result once the files are imported."""
    if by not in WATERMARK_KINDS:
        raise ValueError(f"watermark_by must be one of {', '.join(WATERMARK_KINDS)}, got {by!r}")
    now = time.time() if now is None else now
    ready = [
        f for f in files
        if not f.name.endswith(_PARTIAL_SUFFIXES) and not f.name.startswith(".") and now - f.mtime >= min_age_seconds
    ]  # fmt: skip
    watermark, seen = decode_state(stored)
    if by == "none":
        return Selection(sorted(ready, key=lambda f: (f.mtime, f.name)), watermark)
    return newer_than(ready, watermark, by=by, date_format=date_format, seen=seen)  # type: ignore[arg-type]


def describe(selection: Selection) -> dict[str, Any]:
    return {"files": [f.path for f in selection.files], "watermark": selection.watermark}
