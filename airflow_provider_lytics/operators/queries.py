"""LQL queries as code: validate, test against sample records, and upsert by ALIAS only what changed.

Rows imported into a stream become profile fields only through an LQL query reading that stream; this
operator keeps those queries in the DAG's repository. Every query is validated and tested before any is
written, so a bad file changes nothing in Lytics.
"""

from __future__ import annotations

import glob
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, BaseOperator

from airflow_provider_lytics.errors import LyticsArgumentError

if TYPE_CHECKING:
    from airflow_provider_lytics.hooks.lytics import LyticsHook

_COMMENT = re.compile(r"(--|//)[^\n]*")
_ALIAS = re.compile(r"\bALIAS\s+(`[^`]+`|\"[^\"]+\"|[A-Za-z0-9_.\-]+)", re.IGNORECASE)
#: A test written in the .lql file itself: ``-- @test {"record": {...}, "expect": {...}}``.
_INLINE_TEST = re.compile(r"^\s*--\s*@test\s+(.+)$", re.MULTILINE)


@dataclass
class QuerySource:
    """One query to manage: its text, where it came from, its alias and the sample tests it must pass."""

    text: str
    origin: str
    alias: str
    tests: list[dict[str, Any]] = field(default_factory=list)


def query_alias(text: str, origin: str) -> str:
    """The ``ALIAS`` of an LQL text (comments ignored); raises ``ValueError`` naming the file without one."""
    found = _ALIAS.findall(_COMMENT.sub("", text))
    if len(found) != 1:
        what = "no ALIAS" if not found else f"{len(found)} ALIAS clauses"
        raise ValueError(
            f"{origin}: the query has {what}; give it exactly one 'ALIAS <name>' (queries are synced by alias)"
        )
    return found[0].strip('`"')


def inline_tests(text: str, origin: str) -> list[dict[str, Any]]:
    tests = []
    for raw in _INLINE_TEST.findall(text):
        try:
            test = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"{origin}: '-- @test' line is not JSON ({exc}): {raw[:80]}") from None
        tests.append(test)
    return tests


def _check_test(test: Any, origin: str) -> dict[str, Any]:
    if (
        not isinstance(test, Mapping)
        or not isinstance(test.get("record"), Mapping)
        or not isinstance(test.get("expect"), Mapping)
    ):
        raise ValueError(f'{origin}: a test must be {{"record": {{field: value}}, "expect": {{field: value}}}}')
    return dict(test)


def load_sources(
    queries: Sequence[str | Mapping[str, Any]], base: Path, tests: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[QuerySource]:
    """Read every query: paths and globs (relative to ``base``, the DAG folder) or ``{"text"|"path", "tests"}``."""
    sources: list[QuerySource] = []
    for entry in queries:
        if isinstance(entry, str):
            entry = {"path": entry}
        if not isinstance(entry, Mapping) or ("text" in entry) == ("path" in entry):
            raise LyticsArgumentError('each query is a path/glob or a mapping with exactly one of "text" or "path"')
        found: list[tuple[str, str]] = []
        if "text" in entry:
            found.append((str(entry["text"]), "inline query"))
        else:
            pattern = Path(str(entry["path"]))
            pattern = pattern if pattern.is_absolute() else base / pattern
            paths = sorted(glob.glob(str(pattern)))  # noqa: PTH207 (the pattern may be absolute)
            if not paths:
                raise LyticsArgumentError(f"no LQL file matches {pattern}")
            found.extend((Path(p).read_text(encoding="utf-8"), str(p)) for p in paths)
        for text, origin in found:
            alias = query_alias(text, origin)
            listed = [*inline_tests(text, origin), *entry.get("tests", ()), *tests.get(alias, ())]
            sources.append(QuerySource(text, origin, alias, [_check_test(t, origin) for t in listed]))
    aliases = [s.alias for s in sources]
    repeated = sorted({a for a in aliases if aliases.count(a) > 1})
    if repeated:
        raise ValueError(f"several queries share the ALIAS {', '.join(repeated)}; each alias must be unique")
    return sources


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, list):
        return isinstance(actual, list) and [str(v) for v in actual] == [str(v) for v in expected]
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and {k: str(v) for k, v in actual.items()} == {
            k: str(v) for k, v in expected.items()
        }
    if expected is None:
        return actual is None
    if isinstance(expected, bool):
        expected = "true" if expected else "false"
    if isinstance(expected, float) and expected.is_integer():
        expected = int(expected)
    return actual is not None and str(actual) == str(expected)


def _normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


class LyticsQuerySyncOperator(BaseOperator):
    """Keep Lytics LQL queries identical to ``.lql`` files (or texts) kept with the DAG.

    Every query is validated (``POST /api/query/_validate``) and run against its sample records
    (``POST /api/query/_test``), and each expected field value is compared; any failure fails the task before
    anything is written. Then a query is upserted by its ``ALIAS`` only when Lytics has no query of that alias
    or its text differs, so a second run sends nothing. Returns ``{"created", "updated", "unchanged", "tests"}``
    and pushes ``lytics_query_drift`` (one line per changed query) to XCom.

    :param queries: paths or globs of ``.lql`` files (relative to the DAG file's folder), or mappings
        ``{"path": ...}`` / ``{"text": "SELECT ..."}`` with optional ``"tests"``.
    :param tests: sample tests by alias: ``[{"record": {...}, "expect": {field: value}}]``. A file may also hold
        its own tests as ``-- @test {"record": ..., "expect": ...}`` lines.
    :param check_only: validate, test and report drift, but write nothing.
    """

    template_fields: Sequence[str] = ("queries", "tests", "lytics_conn_id")
    ui_color = "#7B61FF"

    def __init__(
        self,
        *,
        queries: Sequence[str | Mapping[str, Any]] | str,
        tests: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        check_only: bool = False,
        lytics_conn_id: str = "lytics_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.queries = [queries] if isinstance(queries, str) else list(queries)
        self.tests = dict(tests or {})
        self.check_only = check_only
        self.lytics_conn_id = lytics_conn_id

    def hook(self) -> LyticsHook:
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        return LyticsHook(self.lytics_conn_id)

    def _base(self, context: Mapping[str, Any]) -> Path:
        dag = context.get("dag") or (self.dag if self.has_dag() else None)
        fileloc = getattr(dag, "fileloc", None)
        return Path(fileloc).parent if fileloc else Path.cwd()

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any]:
        from airflow_provider_lytics.client.errors import LyticsBadRequestError

        try:
            sources = load_sources(self.queries, self._base(context), self.tests)
        except LyticsArgumentError:
            raise
        except (OSError, ValueError) as exc:
            raise AirflowException(f"LQL queries cannot be read: {exc}") from None
        if not sources:
            raise LyticsArgumentError("no LQL queries given: pass .lql paths or texts in 'queries'")
        hook = self.hook()
        problems: list[str] = []
        for source in sources:
            try:
                hook.validate_query(source.text)
            except LyticsBadRequestError as exc:
                problems.append(f"{source.origin} ({source.alias}): invalid LQL: {exc}")
                continue
            problems.extend(self._run_tests(hook, source))
        ran = sum(len(s.tests) for s in sources)
        if problems:
            raise AirflowException("LQL queries failed validation or their tests; nothing was changed:\n  "
                                   + "\n  ".join(problems))  # fmt: skip
        self.log.info("%d LQL queries valid; %d sample tests passed", len(sources), ran)
        existing = {q.get("alias"): q for q in hook.list_queries()}
        summary: dict[str, Any] = {"created": [], "updated": [], "unchanged": [], "tests": ran,
                                   "check_only": self.check_only}  # fmt: skip
        drift: list[str] = []
        for source in sources:
            current = existing.get(source.alias)
            if current is not None and _normalise(str(current.get("text", ""))) == _normalise(source.text):
                summary["unchanged"].append(source.alias)
                continue
            if current is None:
                drift.append(f"{source.alias}: missing -> created from {source.origin}")
                summary["created"].append(source.alias)
            else:
                import difflib  # only when a query changed: not at DAG parse time

                old, new = _normalise(str(current.get("text", ""))), _normalise(source.text)
                lines = list(
                    difflib.unified_diff(old.splitlines(), new.splitlines(), "lytics", source.origin, lineterm="")
                )
                added = sum(1 for d in lines if d.startswith("+") and not d.startswith("+++"))
                removed = sum(1 for d in lines if d.startswith("-") and not d.startswith("---"))
                drift.append(
                    f"{source.alias}: text differs (+{added}/-{removed} lines) -> updated from {source.origin}"
                )
                self.log.info("LQL query %s drifted:\n%s", source.alias, "\n".join(lines))
                summary["updated"].append(source.alias)
            if not self.check_only:
                hook.upsert_query(source.text)
        self.log.info("LQL queries: %s", {k: v for k, v in summary.items() if k != "check_only"})
        ti = context.get("ti") or context.get("task_instance")
        if ti is not None:
            ti.xcom_push(key="lytics_query_drift", value=drift)
        return summary

    def _run_tests(self, hook: LyticsHook, source: QuerySource) -> list[str]:
        problems = []
        for number, test in enumerate(source.tests, 1):
            entity = hook.test_query(source.text, test["record"])
            for name, expected in test["expect"].items():
                actual = entity.get(name)
                if not _same(actual, expected):
                    problems.append(f"{source.origin} ({source.alias}) test {number}: {name} is {actual!r}, "
                                    f"expected {expected!r}")  # fmt: skip
        return problems
