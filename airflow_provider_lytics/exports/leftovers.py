"""Remove what a killed export run left behind: its private temporary folder and its ``.part`` files.

A run's temporary folder is ``<tmp>/lytics-export-<export>-<random>``, with an ``owner`` file naming the export
and holding an exclusive ``flock`` for as long as the run lives. The kernel drops the lock when the process dies
(even with ``kill -9``), so a later run removes exactly the folders of its own export whose lock it can take:
never one a live run holds.

Partial files (``.<final name>.<random>.part``) on the destination are removed only by a run that holds the
export's lease (incremental modes): no other run of that export can be writing then. Only names of this export
qualify: the file name template's fixed prefix (with ``{AUDIENCE}`` filled in) and the extension chain, or the
export's own state and lease files.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING

from airflow_provider_lytics.exports.naming import safe_component

if TYPE_CHECKING:
    from airflow_provider_lytics.exports.destinations import Destination

log = logging.getLogger(__name__)
PREFIX = "lytics-export-"
_OWNER = "owner"
_VARIABLE = re.compile(r"\{(TIMESTAMP|CHANGE|PART|EXT)\}")


MAIL_OWNER = "(email staging)"


class RunFolder:
    """This run's private temporary folder, locked while the run lives."""

    def __init__(self, export_name: str, *, prefix: str | None = None) -> None:
        self.export_name = export_name
        self.path = Path(tempfile.mkdtemp(prefix=prefix or f"{PREFIX}{safe_component(export_name)}-"))
        self._lock: IO[str] | None = open(self.path / _OWNER, "w", encoding="utf-8")  # noqa: SIM115
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._lock.write(export_name)
        self._lock.flush()

    def remove(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        shutil.rmtree(self.path, ignore_errors=True)


def remove_dead_folders(export_name: str, *, base: str | None = None) -> list[str]:
    """Remove temporary folders of ``export_name`` (and email staging folders) whose run is dead."""
    root = Path(base or tempfile.gettempdir())
    removed = []
    candidates = [(f, export_name) for f in root.glob(f"{PREFIX}{safe_component(export_name)}-*")]
    candidates += [(f, MAIL_OWNER) for f in root.glob(f"{PREFIX}mail-*")]
    for folder, expected in candidates:
        owner = folder / _OWNER
        try:
            with open(owner, encoding="utf-8") as fh:
                if fh.read() != expected:
                    continue  # another export whose name shares this prefix
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live run holds it
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(str(folder))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
    if removed:
        log.warning("Removed %d temporary folder(s) of killed runs of export %r", len(removed), export_name)
    return removed


def part_pattern(template: str, audience: str, extension: str) -> re.Pattern[str] | None:
    """Names of this export's partial files, or ``None`` when the template has no fixed prefix to match on."""
    head = _VARIABLE.split(template, maxsplit=1)[0].replace("{AUDIENCE}", safe_component(audience))
    head = head.rsplit("/", 1)[-1]
    if not head.strip("_-. "):
        return None
    return re.compile(rf"\.{re.escape(head)}.*\.{re.escape(extension)}\.[0-9a-f]+\.part")


def remove_dead_parts(dest: Destination, template: str, audience: str, extension: str) -> list[str]:
    """Remove this export's ``.part`` files in the destination directory (call only while holding the lease)."""
    pattern = part_pattern(template, audience, extension)
    subdir = template.rsplit("/", 1)[0] if "/" in template else ""
    if pattern is None or _VARIABLE.search(subdir):
        return []
    removed = []
    for name in dest.list_names(subdir):
        if pattern.fullmatch(name):
            path = f"{subdir}/{name}" if subdir else name
            with contextlib.suppress(Exception):
                dest.delete(path)
                removed.append(path)
    if removed:
        log.warning("Removed %d partial file(s) of killed runs: %s", len(removed), ", ".join(removed))
    return removed


def remove_dead_state_parts(dest: Destination, state_dir: str, export_name: str) -> list[str]:
    """Remove partial uploads of this export's state and lease files (call only while holding the lease)."""
    safe = re.escape(safe_component(export_name))
    pattern = re.compile(rf"\.{safe}\.(state\.sqlite\.gz|lease\.json)\.[0-9a-f]+\.part|{safe}\.lease\.json\.stale\..+")
    removed = []
    for name in dest.list_names(state_dir):
        if pattern.fullmatch(name):
            with contextlib.suppress(Exception):
                dest.delete(f"{state_dir}/{name}")
                removed.append(name)
    return removed
