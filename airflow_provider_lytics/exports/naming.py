"""Export file names from a template: ``{TIMESTAMP}`` (as Lytics jobs name files) plus a few more placeholders.

Placeholders (upper case, single braces, so they never clash with Jinja's ``{{ }}``, which Airflow renders first):

* ``{TIMESTAMP}``: run start in UTC, formatted with ``timestamp_format`` (default ``20240131T060000Z``);
* ``{AUDIENCE}``: the segment slug/id, or ``adhoc`` for a FilterQL export;
* ``{CHANGE}``: ``full``, ``added``, ``changed``, ``removed`` or ``changes`` (one file with a change column);
* ``{PART}``: split part number, 4 digits (``0001``), only when splitting;
* ``{EXT}``: the extension chain (``csv.gz.gpg``).

Where a needed placeholder is missing, the value is appended before the extension (``_added``, ``_part0001``);
the extension chain is appended unless the template has ``{EXT}`` or already ends with the data extension.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from datetime import datetime

from airflow_provider_lytics.exports.errors import ExportConfigError

PLACEHOLDERS = ("TIMESTAMP", "AUDIENCE", "CHANGE", "PART", "EXT")
DEFAULT_TEMPLATE = "lytics_{AUDIENCE}_{CHANGE}_{TIMESTAMP}"
DEFAULT_TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_TOKEN = re.compile(r"\{([A-Za-z_]+)\}")
_SAFE = re.compile(r"[^A-Za-z0-9_.\-]+")
FORMAT_EXTENSIONS = {"csv": "csv", "ndjson": "ndjson", "parquet": "parquet"}
COMPRESSION_EXTENSIONS = {"none": "", "gzip": "gz", "zip": "zip"}


def extension_chain(fmt: str, compression: str, encrypted: bool, armor: bool = False) -> str:
    """``csv``, ``csv.gz``, ``csv.gz.gpg`` (``.asc`` for ASCII-armored PGP)."""
    parts = [FORMAT_EXTENSIONS[fmt]]
    if COMPRESSION_EXTENSIONS[compression]:
        parts.append(COMPRESSION_EXTENSIONS[compression])
    if encrypted:
        parts.append("asc" if armor else "gpg")
    return ".".join(parts)


def safe_component(value: str) -> str:
    """A value made safe for a file name (slashes, spaces and quotes become ``_``)."""
    return _SAFE.sub("_", value).strip("._") or "x"


def validate_template(template: str) -> None:
    """Reject unknown placeholders and path tricks early (at DAG parse time where possible)."""
    if not template or not template.strip():
        raise ExportConfigError("file_name must not be empty: e.g. 'users_{TIMESTAMP}'")
    unknown = sorted({m.group(1) for m in _TOKEN.finditer(template)} - set(PLACEHOLDERS))
    if unknown:
        known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
        raise ExportConfigError(f"file_name {template!r} has unknown placeholder(s) {unknown}: use {known}")
    if template.startswith("/") or ".." in template.split("/"):
        raise ExportConfigError(f"file_name {template!r} must be a relative name inside the destination directory")


@dataclass(frozen=True)
class FileNamer:
    """Builds the file names of one export run."""

    template: str
    timestamp: datetime
    audience: str
    extension: str  # e.g. "csv.gz.gpg"
    timestamp_format: str = DEFAULT_TIMESTAMP_FORMAT

    def __post_init__(self) -> None:
        validate_template(self.template)
        try:
            self.timestamp.strftime(self.timestamp_format)
        except (ValueError, TypeError) as exc:
            raise ExportConfigError(
                f"timestamp_format {self.timestamp_format!r} is not a strftime format: {exc}"
            ) from None

    def name(self, change: str, part: int | None = None, *, with_change: bool = True) -> str:
        """File name for one output (``change``) and split ``part`` (``None`` when not splitting)."""
        template = self.template
        values = {
            "TIMESTAMP": self.timestamp.strftime(self.timestamp_format),
            "AUDIENCE": safe_component(self.audience),
            "CHANGE": change,
            "PART": f"{part:04d}" if part is not None else "",
            "EXT": self.extension,
        }
        has = {m.group(1) for m in _TOKEN.finditer(template)}
        suffix = ""
        if with_change and "CHANGE" not in has:
            suffix += f"_{change}"
        if part is not None and "PART" not in has:
            suffix += f"_part{part:04d}"
        text = _TOKEN.sub(lambda m: values[m.group(1)], template)
        text = re.sub(r"_{2,}", "_", text).replace("_.", ".")
        if "EXT" in has:
            stem, ext = _split_known_ext(text, self.extension)
            return f"{stem}{suffix}{ext}"
        base_ext = self.extension.split(".")[0]
        if text.endswith("." + base_ext):
            return f"{text[: -len(base_ext) - 1]}{suffix}.{self.extension}"
        return f"{text.rstrip('_')}{suffix}.{self.extension}"


def _split_known_ext(text: str, extension: str) -> tuple[str, str]:
    if text.endswith("." + extension):
        return text[: -len(extension) - 1], "." + extension
    return text, ""


def join(directory: str, name: str) -> str:
    """``directory/name`` with POSIX separators (remote paths), ``name`` alone when no directory."""
    return posixpath.join(directory, name) if directory else name
