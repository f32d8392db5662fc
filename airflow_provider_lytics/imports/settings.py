"""How an import reads, validates and sends: :class:`ImportSettings`, checked when the operator is built.

Kept apart from :mod:`.runner` (which re-exports it) so that building an import operator while a DAG file is
parsed validates its options without loading the readers, the sender and the rest of the engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_lytics.client.retry import RetryPolicy
from airflow_provider_lytics.imports.batching import (
    API_HOST_MAX_BATCH_BYTES,
    DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_ROWS,
    check_batch_limits,
)
from airflow_provider_lytics.imports.formats import normalize_delimiter
from airflow_provider_lytics.imports.validate import BATCH_RECORD_LIMIT, check_constants

#: Default policy for batch uploads: more patient than interactive calls, still bounded.
UPLOAD_RETRY_POLICY = RetryPolicy(max_attempts=8, base_delay=0.5, max_delay=30.0, max_total=600.0)


@dataclass
class ImportSettings:
    """How to read, validate and send. Defaults suit the bulk host."""

    stream: str
    file_format: str | None = None
    compression: str = "infer"
    encoding: str = "utf-8"
    delimiter: str = ","
    quotechar: str = '"'
    columns: Sequence[str] | None = None
    has_header: bool = True
    constant_fields: Mapping[str, Any] | None = None
    timestamp_field: str | None = None
    batch_bytes: int | None = None  # default: 8 MB on the bulk host, just under 10 MB on the API host
    batch_rows: int = DEFAULT_BATCH_ROWS
    gzip_batches: bool = False
    use_bulk_host: bool = True
    max_in_flight: int = 1
    max_record_bytes: int = BATCH_RECORD_LIMIT
    max_rejected_rows: int | None = None
    max_rejected_fraction: float | None = None
    progress_interval: float = 30.0
    dry_run: bool = False
    dry_run_sample: int = 1000
    send_filename: bool = True
    tmp_dir: str | None = None
    retry_policy: RetryPolicy = field(default=UPLOAD_RETRY_POLICY)

    def __post_init__(self) -> None:
        name = self.stream
        if not name or not isinstance(name, str) or "/" in name or name.strip() != name or "{{" in name:
            raise ValueError(f"stream must be a Lytics stream name such as 'crm_users', got {self.stream!r}")
        self.delimiter = normalize_delimiter(self.delimiter)
        self.constant_fields = check_constants(self.constant_fields)
        if self.batch_bytes is None:
            self.batch_bytes = DEFAULT_BATCH_BYTES if self.use_bulk_host else API_HOST_MAX_BATCH_BYTES
        check_batch_limits(self.batch_bytes, self.batch_rows, self.use_bulk_host)
        if not 1 <= self.max_in_flight <= 16:
            raise ValueError(f"max_in_flight must be between 1 and 16, got {self.max_in_flight}")
        if self.max_rejected_rows is not None and self.max_rejected_rows < 0:
            raise ValueError(f"max_rejected_rows must be 0 or more, got {self.max_rejected_rows}")
        if self.max_rejected_fraction is not None and not 0 <= self.max_rejected_fraction <= 1:
            raise ValueError(f"max_rejected_fraction must be between 0 and 1, got {self.max_rejected_fraction}")
        if self.dry_run_sample < 1:
            raise ValueError(f"dry_run_sample must be at least 1, got {self.dry_run_sample}")
