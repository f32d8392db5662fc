"""Errors raised by audience exports; each message says what to change."""

from __future__ import annotations

from airflow_provider_lytics.errors import LyticsArgumentError


class ExportError(Exception):
    """Base class of every export failure."""


class ExportConfigError(ExportError, LyticsArgumentError):
    """An export argument is unusable (unknown format, missing fields, bad template...)."""


class ExportStateError(ExportError):
    """The incremental state cannot be read or does not match this export's configuration."""


class ExportReconciliationError(ExportError):
    """Rows written differ from rows scanned: the export is not trustworthy and its state is not advanced."""


class ExportAbortedError(ExportError):
    """A pipeline stage stopped because another stage failed first."""


class ExportLeaseError(ExportError):
    """Another run holds the incremental export's lease (one run at a time), or this run lost its lease."""
