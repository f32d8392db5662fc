"""Content: import documents into the Lytics content corpus, and read users' topic affinities and recommendations.

``LyticsContentImportOperator`` sends documents (files, a DataFrame or a list) one ``POST /api/content/corpus``
each, with local checks, bounded concurrency, retries and a rejects file (see
:mod:`airflow_provider_lytics.content.importer`). ``LyticsContentRecommendationsOperator`` reads, for a list of
users or the members of an audience, their ``lytics_content`` topic affinities and content recommendations into an
NDJSON file, and returns a small summary for XCom.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import AirflowException, BaseOperator

from airflow_provider_lytics.errors import LyticsArgumentError

_MAX_USERS = 100_000
#: ``content.importer.MAX_CONCURRENCY``, restated: the importer is not imported while DAG files are parsed.
_MAX_CONCURRENCY = 32
_RANKS = ("affinity", "recent", "popular")


class LyticsContentImportOperator(BaseOperator):
    """Import content documents into Lytics (``POST /api/content/corpus``, one request per document).

    Input, exactly one of:

    :param path: a file, glob pattern or list of them (templated): CSV (header row with a ``url`` column; ``topics``
        as ``a|b``), NDJSON or a JSON array; ``.gz`` and ``.zip`` are read as such.
    :param dataframe: a callable returning a pandas DataFrame (one document per row), called at run time.
    :param documents: a list of document mappings (templated).

    :param file_format: ``csv``, ``ndjson`` or ``json`` when the file name does not say.
    :param concurrency: requests in flight at once (1-32). :param batch_size: documents read ahead.
    :param rate_limit: at most this many requests started per second (``None``: no limit).
    :param rejects_path: NDJSON file of every refused document with its source, line and reason (templated;
        written only when something was refused).
    :param max_rejected: fail the task when more documents than this were refused (``None``: never).
    :return: (XCom) counts (``read``, ``sent``, ``created``, ``updated``, ``rejected_here``,
        ``rejected_by_lytics``), ``topics`` (documents per topic) and ``rejects_path``.
    """

    template_fields: Sequence[str] = ("path", "documents", "rejects_path", "lytics_conn_id")
    template_fields_renderers = {"documents": "json"}
    ui_color = "#D6EAF8"

    def __init__(
        self,
        *,
        path: str | Sequence[str] | None = None,
        dataframe: Callable[[], Any] | None = None,
        documents: Sequence[Mapping[str, Any]] | None = None,
        file_format: str | None = None,
        compression: str = "infer",
        encoding: str = "utf-8",
        csv_delimiter: str = ",",
        concurrency: int = 4,
        batch_size: int = 100,
        rate_limit: float | None = None,
        rejects_path: str | None = None,
        max_rejected: int | None = None,
        lytics_conn_id: str = "lytics_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if sum(x is not None for x in (path, dataframe, documents)) != 1:
            raise LyticsArgumentError("give exactly one of path, dataframe or documents")
        if not 1 <= concurrency <= _MAX_CONCURRENCY:
            raise LyticsArgumentError(f"concurrency must be between 1 and {_MAX_CONCURRENCY}, got {concurrency}")
        if batch_size < 1:
            raise LyticsArgumentError(f"batch_size must be at least 1, got {batch_size}")
        if rate_limit is not None and not rate_limit > 0:
            raise LyticsArgumentError(f"rate_limit must be a positive number of requests per second, got {rate_limit}")
        if max_rejected is not None and max_rejected < 0:
            raise LyticsArgumentError(f"max_rejected must be 0 or more, got {max_rejected}")
        self.path, self.dataframe, self.documents = path, dataframe, documents
        self.file_format, self.compression, self.encoding = file_format, compression, encoding
        self.csv_delimiter = csv_delimiter
        self.concurrency, self.batch_size, self.rate_limit = concurrency, batch_size, rate_limit
        self.rejects_path, self.max_rejected = rejects_path, max_rejected
        self.lytics_conn_id = lytics_conn_id

    def _inputs(self, counts: Any) -> Iterator[Any]:
        from airflow_provider_lytics.content.documents import SourceDocument, check_document, read_documents
        from airflow_provider_lytics.content.importer import dataframe_documents
        from airflow_provider_lytics.imports.formats import normalize_delimiter
        from airflow_provider_lytics.imports.sources import expand_local

        if self.documents is not None:
            counts.files = 0
            for line, item in enumerate(self.documents, 1):
                doc, error = check_document(item)
                yield SourceDocument("documents", line, json.dumps(item, default=str)[:65536], doc, error)
        elif self.dataframe is not None:
            counts.files = 0
            yield from dataframe_documents(self.dataframe())
        else:
            sources = expand_local(self.path)  # type: ignore[arg-type]
            counts.files = len(sources)
            delimiter = normalize_delimiter(self.csv_delimiter)
            for source in sources:
                yield from read_documents(source, fmt=self.file_format, compression=self.compression,
                                          encoding=self.encoding, delimiter=delimiter)  # fmt: skip

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any]:
        from airflow_provider_lytics.client.errors import LyticsError
        from airflow_provider_lytics.content.importer import ContentImporter, ContentImportError
        from airflow_provider_lytics.hooks.lytics import LyticsHook
        from airflow_provider_lytics.imports.formats import ImportInputError
        from airflow_provider_lytics.imports.quarantine import QuarantineWriter

        rejects = QuarantineWriter(self.rejects_path) if self.rejects_path else QuarantineWriter(None)
        importer = ContentImporter(
            lambda: LyticsHook(self.lytics_conn_id), concurrency=self.concurrency, batch_size=self.batch_size,
            rate_limit=self.rate_limit, rejects=rejects, log=self.log,
        )  # fmt: skip
        try:
            counts = importer.run(self._inputs(importer.counts))
        except (ImportInputError, OSError) as exc:  # reaches Airflow as itself (see errors.py)
            rejects.abort()
            exc.add_note("content import could not read its input")
            raise
        except ContentImportError as exc:
            kept = rejects.close()
            self.log.error("Stopped after %s", exc.counts.as_dict())
            # the Lytics error that stopped it, if any, is what the retry policy must see (see errors.py)
            error: BaseException = exc.__cause__ if isinstance(exc.__cause__, LyticsError) else exc
            if error is not exc:
                error.add_note(str(exc))
            if kept:
                error.add_note(f"refused documents so far are in {kept}")
            raise error from None
        kept = rejects.close()
        if kept and not self.rejects_path:  # nowhere asked for: do not leave a temporary file behind
            Path(kept).unlink()
            kept = None
        result = {**counts.as_dict(), "rejects_path": kept, "rejected_samples": rejects.samples}
        self.log.info("Content import: %s", {k: v for k, v in result.items() if k != "rejected_samples"})
        refused = counts.rejected_here + counts.rejected_by_lytics
        if self.max_rejected is not None and refused > self.max_rejected:
            where = f" (see {kept})" if kept else ""
            raise AirflowException(f"{refused} document(s) were refused, more than max_rejected={self.max_rejected}"
                                   f"{where}; first reasons: {[s['reason'] for s in rejects.samples[:3]]}")  # fmt: skip
        return result


class LyticsContentRecommendationsOperator(BaseOperator):
    """Read users' topic affinities (``lytics_content``) and content recommendations into an NDJSON file.

    Users, exactly one of:

    :param users: identity values (templated), looked up by ``user_field`` (default ``email``).
    :param segment: an audience id or slug (templated): its members, up to ``max_users``.

    :param limit: recommendations per user. :param rank: ``affinity`` (default), ``recent`` or ``popular``.
    :param visited: include documents the user already viewed. :param topics: only documents on these topics.
    :param contentsegment: a ``FROM content`` segment the recommendations must come from.
    :param output_path: NDJSON file, one ``{field, value, affinities, top_topic, recommendations}`` per user.
    :return: (XCom) ``users``, ``with_affinities``, ``recommendations``, ``top_topics`` (users per top topic)
        and ``path``.
    """

    template_fields: Sequence[str] = ("users", "segment", "topics", "contentsegment", "output_path", "lytics_conn_id")
    ui_color = "#D6EAF8"

    def __init__(
        self,
        *,
        users: Sequence[str] | None = None,
        segment: str | None = None,
        user_field: str = "email",
        limit: int = 5,
        rank: str = "affinity",
        visited: bool = False,
        topics: Sequence[str] | None = None,
        contentsegment: str | None = None,
        max_users: int = 1000,
        output_path: str | None = None,
        lytics_conn_id: str = "lytics_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (users is None) == (segment is None):
            raise LyticsArgumentError("give exactly one of users (identity values) or segment (an audience)")
        if rank not in _RANKS:
            raise LyticsArgumentError(f"rank must be one of {', '.join(_RANKS)}, got {rank!r}")
        if not 1 <= max_users <= _MAX_USERS:
            raise LyticsArgumentError(f"max_users must be between 1 and {_MAX_USERS}, got {max_users}")
        self.users, self.segment, self.user_field = users, segment, user_field
        self.limit, self.rank, self.visited, self.topics = limit, rank, visited, topics
        self.contentsegment, self.max_users, self.output_path = contentsegment, max_users, output_path
        self.lytics_conn_id = lytics_conn_id

    def _people(self, hook: Any) -> Iterator[tuple[str, dict[str, float] | None]]:
        """``(identity value, affinities or None when unknown)`` per user."""
        from airflow_provider_lytics.hooks.lytics import parse_affinities

        if self.users is not None:
            users = self.users.split(",") if isinstance(self.users, str) else list(self.users)
            for value in [u.strip() for u in map(str, users) if str(u).strip()][: self.max_users]:
                yield str(value), hook.topic_affinities(self.user_field, str(value))
            return
        seen = 0
        for row in hook.scan(self.segment, fields=[self.user_field, "lytics_content"]):
            value = row.get(self.user_field)
            if value in (None, ""):
                continue
            yield str(value), parse_affinities(row.get("lytics_content"))
            seen += 1
            if seen >= self.max_users:
                return

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any]:
        from airflow_provider_lytics.client.errors import LyticsNotFoundError
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        hook = LyticsHook(self.lytics_conn_id)
        handle = None
        if self.output_path:
            Path(self.output_path).parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.output_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in finally
        users = with_affinities = recommended = unknown = 0
        top_topics: Counter = Counter()
        try:
            for value, affinities in self._people(hook):
                users += 1
                if affinities is None:
                    unknown += 1
                    recs: list[dict[str, Any]] = []
                else:
                    try:
                        recs = hook.content_recommendations(
                            self.user_field, value, limit=self.limit, rank=self.rank, visited=self.visited,
                            topics=self.topics, contentsegment=self.contentsegment,
                        )  # fmt: skip
                    except LyticsNotFoundError:
                        recs, unknown = [], unknown + 1
                top = next(iter(affinities), None) if affinities else None
                if top:
                    with_affinities += 1
                    top_topics[top] += 1
                recommended += len(recs)
                if handle is not None:
                    line = {"field": self.user_field, "value": value, "affinities": affinities or {},
                            "top_topic": top, "recommendations": [_brief(r) for r in recs]}  # fmt: skip
                    handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        finally:
            if handle is not None:
                handle.close()
            hook.close()
        summary = {"users": users, "unknown_users": unknown, "with_affinities": with_affinities,
                   "recommendations": recommended, "top_topics": dict(top_topics.most_common()),
                   "path": self.output_path}  # fmt: skip
        self.log.info("Content recommendations: %s", summary)
        return summary


def _brief(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: doc.get(k) for k in ("id", "url", "title", "topics", "confidence", "visited")}
