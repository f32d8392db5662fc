"""OpenLineage for imports, exports and enrichment: which files and Lytics streams or audiences a task read and wrote.

Airflow's OpenLineage listener (``apache-airflow-providers-openlineage``, the ``[openlineage]`` extra) calls an
operator's ``get_openlineage_facets_on_complete`` after a successful run; without that provider nothing here is
imported. Names follow the OpenLineage naming conventions where one exists:

- Lytics: namespace ``lytics://<API host>``, names ``stream/<stream>`` and ``audience/<slug or id>`` (an ad-hoc
  FilterQL audience is ``audience/adhoc-<12 hex of its SHA-1>``);
- files: the folder the task read from or wrote to, as a stable dataset across runs (file names carry
  timestamps): ``file`` + local path, ``sftp://<host>:<port>`` + path, ``s3://<bucket>`` + key prefix, and so
  on for Airflow object storage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

#: one dataset as (namespace, name)
DatasetRef = tuple[str, str]


def lytics_namespace(api_url: str) -> str:
    return f"lytics://{urlsplit(api_url).netloc or api_url}"


def stream_ref(api_url: str, stream: str) -> DatasetRef:
    return lytics_namespace(api_url), f"stream/{stream}"


def audience_ref(api_url: str, segment: str | None, filter_ql: str | None = None) -> DatasetRef:
    if segment:
        return lytics_namespace(api_url), f"audience/{segment}"
    digest = hashlib.sha1(str(filter_ql).encode(), usedforsecurity=False).hexdigest()[:12]
    return lytics_namespace(api_url), f"audience/adhoc-{digest}"


def uri_ref(uri: str) -> DatasetRef:
    """A folder or file URI (``file:///x``, ``sftp://host:22/x``, ``s3://bucket/x``) or a local path."""
    parts = urlsplit(uri)
    if not parts.scheme or parts.scheme == "file" or len(parts.scheme) == 1:  # bare path (or a Windows drive)
        return "file", parts.path if parts.scheme == "file" else uri
    return f"{parts.scheme}://{parts.netloc}", parts.path or "/"


def sftp_ref(host: str, port: int | None, path: str) -> DatasetRef:
    return f"sftp://{host}:{port or 22}", path if path.startswith("/") else f"/{path}"


def operator_lineage(
    inputs: Iterable[DatasetRef], outputs: Iterable[DatasetRef], *, output_rows: int | None = None
) -> Any:
    """``OperatorLineage`` for the listener; ``output_rows`` becomes an output statistics facet."""
    from airflow.providers.common.compat.openlineage.facet import (
        InputDataset,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
    )
    from airflow.providers.openlineage.extractors import OperatorLineage

    out_facets: dict[str, Any] = {"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=output_rows)}
    return OperatorLineage(
        inputs=[InputDataset(namespace=ns, name=name) for ns, name in dict.fromkeys(inputs)],
        outputs=[
            OutputDataset(namespace=ns, name=name, outputFacets=out_facets if output_rows is not None else {})
            for ns, name in dict.fromkeys(outputs)
        ],
    )
