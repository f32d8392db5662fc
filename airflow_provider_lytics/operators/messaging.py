"""Personalised profile messages: render Go templates per profile and deliver them (webhook, file or XCom).

Go templates and Jinja both use ``{{ }}``. The Go templates live in ``messages``, which is deliberately *not*
a templated field, so Airflow never runs Jinja over them and they arrive byte for byte as written. Run-specific
values (``{{ ds }}``, params) belong in the templated ``extra_data``, whose keys every Go template can read as
fields (``{{ .campaign }}``); a profile's own field wins over an ``extra_data`` key of the same name.

Profiles stream one scan page at a time and messages leave in batches, so memory stays flat whatever the
audience size. Per-profile failures (a template error for that profile, a batch the webhook refused) are
counted, sampled in the log and XCom, and written to ``results_path`` when given; they fail the task only
past ``max_failures`` / ``max_failure_rate``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, BaseOperator

from airflow_provider_lytics.errors import LyticsArgumentError
from airflow_provider_lytics.links import LyticsAudienceLink, publish_links
from airflow_provider_lytics.retry_policy import http_retry_from_kwargs
from airflow_provider_lytics.templating.syntax import check_message_templates

if TYPE_CHECKING:
    from airflow_provider_lytics.client.retry import RetryPolicy
    from airflow_provider_lytics.io.webhook import WebhookSender
    from airflow_provider_lytics.templating.messages import Preview

DELIVERIES = ("webhook", "file", "xcom")
FAILURE_SAMPLE = 10
NO_VALUE = "<no value>"


class _Results:
    """Counts outcomes, keeps a small failure sample, and streams one line per profile to ``results_path``."""

    def __init__(self, path: str | None, log: Any) -> None:
        self.log = log
        self.counts = {"profiles": 0, "rendered": 0, "delivered": 0, "failed": 0, "render_errors": 0}
        self.sample: list[dict[str, str]] = []
        self._tmp = Path(f"{path}.part") if path else None
        self.path = path
        self._out: IO[str] | None = None
        if self._tmp is not None:
            self._tmp.parent.mkdir(parents=True, exist_ok=True)
            self._out = self._tmp.open("w", encoding="utf-8")

    def record(self, key: str, status: str, reason: str = "") -> None:
        if status == "delivered":
            self.counts["delivered"] += 1
        else:
            self.counts["failed"] += 1
            if status == "render_error":
                self.counts["render_errors"] += 1
            if len(self.sample) < FAILURE_SAMPLE:
                self.sample.append({"key": key, "status": status, "reason": reason})
                self.log.warning("Profile %s not delivered (%s): %s", key, status, reason)
        if self._out is not None:
            line = {"key": key, "status": status, **({"reason": reason} if reason else {})}
            self._out.write(json.dumps(line, ensure_ascii=False) + "\n")

    def close(self, keep: bool) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
            if keep:
                self._tmp.replace(self.path)  # type: ignore[union-attr, arg-type]
            else:
                self._tmp.unlink(missing_ok=True)  # type: ignore[union-attr]


class LyticsProfileMessageOperator(BaseOperator):
    """Render named Go templates (title, subtitle, body...) for each profile and deliver the messages.

    Profiles come from exactly one of: a saved audience (``segment`` id or slug), an ad-hoc FilterQL audience
    (``filter_ql``), a list of mappings (``profiles``, e.g. an upstream task's output) or an NDJSON file
    (``profiles_path``).

    :param messages: ``{"title": "Hey, {{ .first_name | default \\"there\\" }}", ...}``: Go templates, never
        Jinja-rendered. Validated when the DAG is parsed and again when the task starts.
    :param delivery: ``"webhook"`` (POST JSON to ``http_conn_id``), ``"file"`` (NDJSON at ``output_path``) or
        ``"xcom"`` (return the messages; capped at ``max_xcom_messages``).
    :param key_field: profile field that identifies the profile in each message and in the results.
    :param include_fields: profile fields copied into each message next to the rendered texts.
    :param extra_data: values available to every template as fields (templated: use it for ``{{ ds }}``).
    :param batch_size: messages per webhook request (a batch is a JSON array, or ``{envelope_key: [...]}``);
        with 1, each request body is the message object itself.
    :param rate_limit: maximum webhook requests per second.
    :param http_retry_policy: attempts and back-off of each webhook request (``retry_policy=`` is Airflow's task
        retry policy; a client ``RetryPolicy`` passed there still works, deprecated).
    :param preview_profiles: sample profiles rendered (and logged) before any delivery; an error stops the task.
    :param skip_incomplete: treat a message that prints ``<no value>`` (a field missing without a default) as
        a failure for that profile instead of sending it.
    :param missing_key: ``"error"`` makes any missing field a per-profile render error (Go's missingkey=error).
    :param max_failures: fail the task (after stopping delivery) once more profiles than this have failed.
    :param max_failure_rate: fail the task at the end if failed/profiles exceeds this fraction.
    :param results_path: NDJSON file with one ``{"key", "status", "reason"}`` line per profile.
    :return: a summary dict (counts, paths, a sample of failures): never the message payloads, except in
        ``xcom`` delivery mode.
    """

    template_fields: Sequence[str] = (
        "segment",
        "filter_ql",
        "profiles",
        "profiles_path",
        "extra_data",
        "output_path",
        "results_path",
        "endpoint",
        "http_conn_id",
        "lytics_conn_id",
    )
    template_fields_renderers = {"extra_data": "json", "profiles": "json", "filter_ql": "sql"}
    ui_color = "#F2C94C"
    operator_extra_links = (LyticsAudienceLink(),)

    def __init__(
        self,
        *,
        messages: Mapping[str, str],
        segment: str | None = None,
        filter_ql: str | None = None,
        profiles: Iterable[Mapping[str, Any]] | str | None = None,
        profiles_path: str | None = None,
        fields: Sequence[str] | None = None,
        key_field: str = "email",
        include_fields: Sequence[str] = (),
        extra_data: Mapping[str, Any] | None = None,
        delivery: str = "xcom",
        http_conn_id: str | None = None,
        endpoint: str = "",
        batch_size: int = 50,
        rate_limit: float | None = None,
        http_retry_policy: RetryPolicy | None = None,
        envelope_key: str | None = None,
        output_path: str | None = None,
        results_path: str | None = None,
        preview_profiles: Sequence[Mapping[str, Any]] | None = None,
        skip_incomplete: bool = False,
        missing_key: str = "default",
        max_failures: int | None = None,
        max_failure_rate: float | None = None,
        max_xcom_messages: int = 100,
        lytics_conn_id: str = "lytics_default",
        **kwargs: Any,
    ) -> None:
        http_retry_policy = http_retry_from_kwargs("LyticsProfileMessageOperator", http_retry_policy, kwargs)
        super().__init__(**kwargs)
        sources = [s for s in (segment, filter_ql, profiles, profiles_path) if s is not None]
        if len(sources) != 1:
            raise LyticsArgumentError("Pass exactly one profile source: segment, filter_ql, profiles or profiles_path")
        if delivery not in DELIVERIES:
            raise LyticsArgumentError(f"delivery must be one of {', '.join(DELIVERIES)}; got {delivery!r}")
        if delivery == "webhook" and not http_conn_id:
            raise LyticsArgumentError(
                "delivery='webhook' needs http_conn_id (an Airflow HTTP connection to the receiver)"
            )
        if delivery == "file" and not output_path:
            raise LyticsArgumentError("delivery='file' needs output_path (where to write the NDJSON messages)")
        if batch_size < 1:
            raise LyticsArgumentError(f"batch_size must be at least 1, got {batch_size}")
        if max_failure_rate is not None and not 0 <= max_failure_rate <= 1:
            raise LyticsArgumentError(f"max_failure_rate is a fraction between 0 and 1, got {max_failure_rate}")
        clash = set(messages) & ({key_field} | set(include_fields))
        if clash:
            raise LyticsArgumentError(f"message names {sorted(clash)} clash with key_field/include_fields: rename them")
        check_message_templates(messages, missing_key=missing_key)  # syntax errors surface at DAG parse time
        self.messages = dict(messages)
        self.segment = segment
        self.filter_ql = filter_ql
        self.profiles = profiles
        self.profiles_path = profiles_path
        self.fields = list(fields) if fields else None
        self.key_field = key_field
        self.include_fields = list(include_fields)
        self.extra_data = extra_data
        self.delivery = delivery
        self.http_conn_id = http_conn_id
        self.endpoint = endpoint
        self.batch_size = batch_size
        self.rate_limit = rate_limit
        self.http_retry_policy = http_retry_policy
        self.envelope_key = envelope_key
        self.output_path = output_path
        self.results_path = results_path
        self.preview_profiles = list(preview_profiles) if preview_profiles else []
        self.skip_incomplete = skip_incomplete
        self.missing_key = missing_key
        self.max_failures = max_failures
        self.max_failure_rate = max_failure_rate
        self.max_xcom_messages = max_xcom_messages
        self.lytics_conn_id = lytics_conn_id

    # -- validation -----------------------------------------------------------------------------------------
    def preview(self, samples: Iterable[Mapping[str, Any]] | None = None) -> list[Preview]:
        """Render the messages against sample profiles (default: ``preview_profiles``); usable in DAG tests."""
        from airflow_provider_lytics.templating.messages import MessageTemplates

        templates = MessageTemplates(self.messages, missing_key=self.missing_key)
        return templates.preview(self._with_extra(s) for s in (samples if samples is not None else
                                                                  self.preview_profiles))  # fmt: skip

    def _check_preview(self) -> None:
        if not self.preview_profiles:
            return
        problems = []
        for i, item in enumerate(self.preview()):
            for name, text in item.rendered.items():
                self.log.info("Preview %d %s: %s", i, name, text)
            problems += [f"sample {i}: {reason}" for reason in item.errors.values()]
        if problems:
            raise AirflowException("Message templates failed on the preview profiles: " + "; ".join(problems))

    # -- sources --------------------------------------------------------------------------------------------
    def _profiles(self) -> Iterator[Mapping[str, Any]]:
        if self.segment is not None or self.filter_ql is not None:
            from airflow_provider_lytics.hooks.lytics import LyticsHook

            hook = LyticsHook(self.lytics_conn_id)
            if self.segment is not None:
                yield from hook.scan(self.segment, fields=self.fields)
            else:
                yield from hook.scan(filter_ql=self.filter_ql, fields=self.fields)
            return
        if self.profiles_path is not None:
            with open(self.profiles_path, encoding="utf-8") as src:
                for lineno, line in enumerate(src, start=1):
                    if line.strip():
                        yield _as_profile(json.loads(line), f"{self.profiles_path}:{lineno}")
            return
        profiles = self.profiles
        if isinstance(profiles, str):
            try:
                profiles = json.loads(profiles)
            except ValueError as err:
                raise LyticsArgumentError(
                    f"profiles is a string but not JSON ({err}): pass a list of mappings"
                ) from None
        for i, item in enumerate(profiles or ()):  # type: ignore[union-attr]
            yield _as_profile(item, f"profiles[{i}]")

    def _with_extra(self, profile: Mapping[str, Any]) -> Mapping[str, Any]:
        if not self.extra_data:
            return profile
        return {**self.extra_data, **profile}

    # -- delivery -------------------------------------------------------------------------------------------
    def _sender(self) -> WebhookSender:
        from airflow.providers.common.compat.sdk import BaseHook

        from airflow_provider_lytics.hooks.base import mask
        from airflow_provider_lytics.io.webhook import WebhookSender, settings_from_connection

        conn = BaseHook.get_connection(str(self.http_conn_id))  # checked at construction for webhook delivery
        if conn.password:
            mask(conn.password)
        settings = settings_from_connection(conn, self.endpoint)
        for name, value in settings.headers.items():
            if name.lower() in ("authorization", "x-api-key", "api-key", "cookie"):
                mask(value)
        single = self.batch_size == 1 and not self.envelope_key
        self.log.info("Delivering to %s in batches of %d%s", settings.safe_url, self.batch_size,
                      f" at most {self.rate_limit:g} requests/s" if self.rate_limit else "")  # fmt: skip
        return WebhookSender(settings, rate_limit=self.rate_limit, retry_policy=self.http_retry_policy,
                             envelope_key=self.envelope_key, single=single)  # fmt: skip

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_provider_lytics.templating.messages import MessageTemplates

        templates = MessageTemplates(self.messages, missing_key=self.missing_key)
        publish_links(context, self.lytics_conn_id, audience=self.segment)
        self._check_preview()
        results = _Results(self.results_path, self.log)
        sender = self._sender() if self.delivery == "webhook" else None
        out_tmp = Path(f"{self.output_path}.part") if self.delivery == "file" else None
        out: IO[str] | None = None
        collected: list[dict[str, Any]] = []
        batch: list[tuple[str, dict[str, Any]]] = []
        success = False

        def flush() -> None:
            if not batch:
                return
            if sender is not None:
                outcome = sender.send([message for _, message in batch])
                for key, _ in batch:
                    results.record(key, "delivered" if outcome.ok else "delivery_failed", outcome.reason)
            else:
                for key, message in batch:
                    if out is not None:
                        out.write(json.dumps(message, ensure_ascii=False, default=str) + "\n")
                    else:
                        collected.append(message)
                    results.record(key, "delivered")
            batch.clear()
            self._check_max_failures(results)

        try:
            if out_tmp is not None:
                out_tmp.parent.mkdir(parents=True, exist_ok=True)
                out = out_tmp.open("w", encoding="utf-8")
            for profile in self._profiles():
                results.counts["profiles"] += 1
                key = str(profile.get(self.key_field) or f"#{results.counts['profiles']}")
                rendered, reason = templates.try_render(self._with_extra(profile))
                if rendered is not None and self.skip_incomplete:
                    incomplete = [name for name, text in rendered.items() if NO_VALUE in text]
                    if incomplete:
                        rendered, reason = None, f"{', '.join(incomplete)} print <no value>: a field is missing"
                if rendered is None:
                    results.record(key, "render_error", reason or "")
                    self._check_max_failures(results)
                    continue
                results.counts["rendered"] += 1
                if self.delivery == "xcom" and results.counts["rendered"] > self.max_xcom_messages:
                    raise AirflowException(
                        f"More than max_xcom_messages={self.max_xcom_messages} messages: XCom is for small "
                        "results; use delivery='file' (or 'webhook') for audiences this size"
                    )
                message = {self.key_field: profile.get(self.key_field)}
                message.update({f: profile.get(f) for f in self.include_fields})
                message.update(rendered)
                batch.append((key, message))
                if len(batch) >= self.batch_size:
                    flush()
            flush()
            success = True
        finally:
            if out is not None:
                out.close()
                if success:
                    out_tmp.replace(self.output_path)  # type: ignore[union-attr, arg-type]
                else:
                    out_tmp.unlink(missing_ok=True)  # type: ignore[union-attr]
            results.close(keep=True)
            if sender is not None:
                sender.close()
        summary = self._summary(results, sender)
        self.log.info("Messages: %s", {k: v for k, v in summary.items() if k != "messages"})
        rate = results.counts["failed"] / results.counts["profiles"] if results.counts["profiles"] else 0.0
        if self.max_failure_rate is not None and rate > self.max_failure_rate:
            raise AirflowException(
                f"{results.counts['failed']} of {results.counts['profiles']} profiles failed ({rate:.1%}), above "
                f"max_failure_rate={self.max_failure_rate:.1%}; first failures: {results.sample[:3]}"
            )
        if self.delivery == "xcom":
            summary["messages"] = collected
        return summary

    def _check_max_failures(self, results: _Results) -> None:
        if self.max_failures is not None and results.counts["failed"] > self.max_failures:
            raise AirflowException(
                f"Stopped after {results.counts['failed']} failed profiles (max_failures={self.max_failures}); "
                f"first failures: {results.sample[:3]}"
            )

    def _summary(self, results: _Results, sender: WebhookSender | None) -> dict[str, Any]:
        summary: dict[str, Any] = dict(results.counts)
        summary["failures_sample"] = results.sample
        if sender is not None:
            summary["requests"] = sender.requests_sent
        if self.output_path and self.delivery == "file":
            summary["output_path"] = self.output_path
        if self.results_path:
            summary["results_path"] = self.results_path
        return summary


def _as_profile(item: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise AirflowException(f"{where} is a {type(item).__name__}, not a profile object: pass JSON objects")
    return item
