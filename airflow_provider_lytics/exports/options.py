"""The accepted values of the export options, checked when the export operator is built.

A module of plain tuples, apart from the engine modules that use them (:mod:`.encoders`, :mod:`.compress`,
:mod:`.destinations`, :mod:`.runner` re-export theirs), so that parsing a DAG file loads none of the engine.
"""

from __future__ import annotations

#: File formats (:mod:`.encoders`).
FORMATS = ("csv", "ndjson", "parquet")
#: Compression of each file (:mod:`.compress`).
COMPRESSIONS = ("none", "gzip", "zip")
#: Where files go (:mod:`.destinations`).
DESTINATIONS = ("local", "sftp", "object_storage", "email")
#: Full snapshot every run, changes since the previous run, or one full run and then changes (:mod:`.runner`).
MODES = ("full", "incremental", "backfill_then_incremental")
#: Incremental changes as one file per kind of change, or one file with a change column (:mod:`.runner`).
CHANGE_OUTPUTS = ("separate", "column")
#: Event exports: every event, or the events since the previous run (:mod:`.events`).
EVENT_MODES = ("full", "incremental")
