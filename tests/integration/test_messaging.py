"""Profile messages end to end: Lytics emulator audience -> Go templates -> a real local webhook receiver.

The receiver is a ``ThreadingHTTPServer`` started per test; it records every request (time, headers, body)
and answers from a script, so batching, rate limiting, retries and per-profile failures are observed on the
wire rather than mocked.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import tracemalloc
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_lytics.client.retry import RetryPolicy
from airflow_provider_lytics.operators.messaging import LyticsProfileMessageOperator
from airflow_provider_lytics.templating import TemplateSyntaxError

SECRET = "s3cr3t-webhook-password"
MESSAGES = {
    "title": 'Hey, {{ .first_name | default "valued customer" }}',
    "body": '{{ if eq .status "subscribed" }}Thanks for subscribing!{{ else }}You should subscribe!{{ end }}',
}
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, jitter=False)


class Receiver:
    """A webhook receiver on loopback: records requests and replies with scripted statuses."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: list[tuple[int, dict]] = []  # consumed first; then `default`
        self.default: tuple[int, dict] = (200, {})
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.requests.append({"t": time.monotonic(), "path": self.path,
                                              "headers": dict(self.headers), "body": json.loads(body)})  # fmt: skip
                    status, headers = receiver.script.pop(0) if receiver.script else receiver.default
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                payload = b'{"ok": true}' if status < 400 else b'{"error": "refused by receiver"}'
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                """Keep test output quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def messages(self) -> list[dict]:
        out = []
        for req in self.requests:
            out += req["body"] if isinstance(req["body"], list) else [req["body"]]
        return out


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    rec = Receiver()
    rec.thread.start()
    conn = {"conn_type": "http", "host": "127.0.0.1", "port": rec.port, "schema": "http", "login": "airflow",
            "password": SECRET, "extra": {"X-Campaign": "spring", "timeout": 5}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_WEBHOOK", json.dumps(conn))
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def _profiles(n: int) -> list[dict]:
    return [
        {"email": f"user{i}@example.com", "status": "subscribed" if i % 2 else "unsubscribed",
         **({"first_name": f"Name{i}"} if i % 3 else {})}
        for i in range(n)
    ]  # fmt: skip


def _operator(**kwargs) -> LyticsProfileMessageOperator:
    defaults = {"task_id": "messages", "messages": MESSAGES, "delivery": "webhook", "http_conn_id": "alerts_webhook",
                "endpoint": "/hooks/alerts", "http_retry_policy": FAST_RETRY}  # fmt: skip
    return LyticsProfileMessageOperator(**{**defaults, **kwargs})


def test_audience_to_webhook_in_batches(lytics_conn_env, emulator, receiver, tmp_path) -> None:
    from airflow_provider_lytics.hooks.lytics import LyticsHook

    emulator.backend.store.ingest("crm", _profiles(25))
    LyticsHook().create_segment('FILTER EXISTS email FROM user ALIAS alert_audience WITH name = "Alerts"')
    results = tmp_path / "results.ndjson"
    op = _operator(segment="alert_audience", fields=["email", "first_name", "status"], batch_size=10,
                   include_fields=["status"], results_path=str(results))  # fmt: skip
    summary = op.execute({})

    assert summary["profiles"] == summary["delivered"] == 25 and summary["failed"] == 0
    assert summary["requests"] == len(receiver.requests) == 3
    assert [len(r["body"]) for r in receiver.requests] == [10, 10, 5]
    req = receiver.requests[0]
    assert req["path"] == "/hooks/alerts"
    assert req["headers"]["Content-Type"] == "application/json" and req["headers"]["X-Campaign"] == "spring"
    assert req["headers"]["Authorization"] == "Basic " + base64.b64encode(f"airflow:{SECRET}".encode()).decode()
    by_email = {m["email"]: m for m in receiver.messages()}
    assert by_email["user4@example.com"] == {"email": "user4@example.com", "status": "unsubscribed",
                                             "title": "Hey, Name4", "body": "You should subscribe!"}  # fmt: skip
    assert by_email["user3@example.com"]["title"] == "Hey, valued customer"
    assert by_email["user3@example.com"]["body"] == "Thanks for subscribing!"
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(lines) == 25 and {line["status"] for line in lines} == {"delivered"}
    assert SECRET not in json.dumps(summary) and SECRET not in results.read_text()


def test_adhoc_filterql_audience(lytics_conn_env, emulator, receiver) -> None:
    emulator.backend.store.ingest("crm", _profiles(12))
    summary = _operator(filter_ql='FILTER status = "subscribed" FROM user', batch_size=50).execute({})
    assert summary["delivered"] == 6 and len(receiver.requests) == 1
    assert {m["body"] for m in receiver.messages()} == {"Thanks for subscribing!"}


def test_rate_limit_spaces_requests(receiver, monkeypatch) -> None:
    """Request starts are spaced by the limiter (measured where they start: arrival times at the receiver also
    carry the server's scheduling under load, which no client can control)."""
    from airflow_provider_lytics.io import webhook

    starts: list[float] = []
    real_wait = webhook.RateLimiter.wait

    def recording_wait(self) -> None:
        real_wait(self)
        starts.append(time.monotonic())

    monkeypatch.setattr(webhook.RateLimiter, "wait", recording_wait)
    summary = _operator(profiles=_profiles(8), batch_size=1, rate_limit=20).execute({})
    assert summary["requests"] == 8 and len(receiver.requests) == 8
    # 20 requests/s: the i-th start is never earlier than i * 50 ms after the first (a late wake-up does not
    # push the schedule back, so two starts may be closer than 50 ms, but never ahead of the schedule)
    offsets = [t - starts[0] for t in starts]
    assert len(starts) == 8 and all(off >= i * 0.05 - 1e-3 for i, off in enumerate(offsets)), offsets
    assert isinstance(receiver.requests[0]["body"], dict)  # batch_size=1 sends the message object itself


def test_retry_after_is_honoured(receiver) -> None:
    receiver.script = [(429, {"Retry-After": "0.4"}), (503, {}), (200, {})]
    summary = _operator(profiles=_profiles(4), batch_size=4).execute({})
    assert summary["delivered"] == 4 and summary["requests"] == 3
    times = [r["t"] for r in receiver.requests]
    assert times[1] - times[0] >= 0.38  # waited for Retry-After, not the 10 ms back-off
    assert times[2] - times[1] < 0.3
    assert receiver.requests[0]["body"] == receiver.requests[2]["body"]


def test_refused_batches_are_per_profile_failures_not_fatal(receiver, tmp_path) -> None:
    receiver.script = [(200, {}), (400, {})]
    results = tmp_path / "out" / "results.ndjson"
    summary = _operator(profiles=_profiles(6), batch_size=3, results_path=str(results)).execute({})
    assert summary["delivered"] == 3 and summary["failed"] == 3 and summary["requests"] == 2  # 400: no retry
    failed = [json.loads(line) for line in results.read_text().splitlines() if '"delivery_failed"' in line]
    assert [f["key"] for f in failed] == ["user3@example.com", "user4@example.com", "user5@example.com"]
    assert "HTTP 400" in failed[0]["reason"] and "refused by receiver" in failed[0]["reason"]
    assert SECRET not in results.read_text() and SECRET not in json.dumps(summary)
    assert not list(results.parent.glob("*.part"))


def test_failure_threshold_fails_the_task(receiver) -> None:
    receiver.default = (503, {})
    with pytest.raises(AirflowException, match=r"Stopped after 2 failed profiles \(max_failures=1\)") as info:
        _operator(profiles=_profiles(6), batch_size=2, max_failures=1).execute({})
    assert len(receiver.requests) == FAST_RETRY.max_attempts  # one batch, retried, then the task stopped
    assert SECRET not in str(info.value)


def test_failure_rate_threshold(receiver) -> None:
    profiles = [*_profiles(3), {"email": "bad@example.com", "status": 7}]
    summary = _operator(profiles=profiles, max_failure_rate=0.5).execute({})
    assert summary["failed"] == summary["render_errors"] == 1
    assert summary["failures_sample"][0]["key"] == "bad@example.com"
    assert "incompatible types for comparison" in summary["failures_sample"][0]["reason"]
    with pytest.raises(AirflowException, match=r"above max_failure_rate=10\.0%"):
        _operator(profiles=profiles, max_failure_rate=0.1).execute({})


def test_skip_incomplete_and_missing_key_error(receiver) -> None:
    messages = {"title": "Hi {{ .first_name }}"}
    summary = _operator(messages=messages, profiles=_profiles(3), skip_incomplete=True).execute({})
    assert summary["delivered"] == 2 and summary["failed"] == 1
    assert "<no value>" in summary["failures_sample"][0]["reason"]
    summary = _operator(messages=messages, profiles=_profiles(3), missing_key="error").execute({})
    assert summary["render_errors"] == 1 and "no entry for key 'first_name'" in summary["failures_sample"][0]["reason"]


def test_file_delivery_streams_ndjson(tmp_path) -> None:
    source = tmp_path / "profiles.ndjson"
    source.write_text("".join(json.dumps(p) + "\n" for p in _profiles(5)))
    target = tmp_path / "messages" / "alerts.ndjson"
    op = LyticsProfileMessageOperator(task_id="f", messages=MESSAGES, profiles_path=str(source), delivery="file",
                                      output_path=str(target), extra_data={"campaign": "x"})  # fmt: skip
    summary = op.execute({})
    assert summary["output_path"] == str(target) and summary["delivered"] == 5
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert rows[1] == {"email": "user1@example.com", "title": "Hey, Name1", "body": "Thanks for subscribing!"}
    assert not list(target.parent.glob("*.part"))


def test_file_delivery_memory_stays_flat(tmp_path) -> None:
    source = tmp_path / "many.ndjson"
    with source.open("w") as out:
        for i in range(6_000):
            out.write(json.dumps({"email": f"u{i}@example.com", "first_name": "Ada", "status": "subscribed",
                                  "bio": "x" * 3000}) + "\n")  # fmt: skip
    op = LyticsProfileMessageOperator(
        task_id="m", messages=MESSAGES, profiles_path=str(source), delivery="file",
        output_path=str(tmp_path / "out.ndjson"), batch_size=500, include_fields=["bio"],
    )  # fmt: skip
    tracemalloc.start()
    try:
        summary = op.execute({})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary["delivered"] == 6_000
    assert peak < 4 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a {source.stat().st_size / 1e6:.1f} MB input"


def test_xcom_delivery_is_capped() -> None:
    op = LyticsProfileMessageOperator(task_id="x", messages=MESSAGES, profiles=_profiles(3), max_xcom_messages=2)
    with pytest.raises(AirflowException, match="use delivery='file'"):
        op.execute({})


def test_go_templates_survive_airflow_jinja_rendering(tmp_path) -> None:
    from airflow.providers.common.compat.sdk import DAG

    go_templates = {
        "title": (
            "{{- if and .first_name .last_name -}} Hey, {{ .first_name }} {{ .last_name }} {{- else -}} Hi {{- end }}"
        ),
        "body": "{{/* comment */}}{{ range $i, $t := .tags }}{{ $i }}:{{ $t | upper }} {{ end }}{% raw %}",
    }
    with DAG("jinja_safety", schedule=None):
        op = LyticsProfileMessageOperator(
            task_id="render", messages=go_templates, profiles="{{ params.profiles | tojson }}",
            extra_data={"run": "{{ ds }}"}, delivery="file", output_path=str(tmp_path / "{{ ds }}.ndjson"),
        )  # fmt: skip
    context = {"ds": "2026-11-28", "params": {"profiles": [{"email": "a@x", "first_name": "Ada", "last_name": "L",
                                                             "tags": ["x", "y"]}]}}  # fmt: skip
    op.render_template_fields(context)
    assert op.messages == go_templates  # not a templated field: byte for byte as written
    assert op.output_path == str(tmp_path / "2026-11-28.ndjson")
    assert op.extra_data == {"run": "2026-11-28"}
    op.execute(context)
    row = json.loads((tmp_path / "2026-11-28.ndjson").read_text())
    assert row == {"email": "a@x", "title": "Hey, Ada L", "body": "0:X 1:Y {% raw %}"}


def test_templates_are_validated_at_parse_time_and_previewed() -> None:
    with pytest.raises(TemplateSyntaxError, match=r"title:1:\d+: .*straight quotes"):
        LyticsProfileMessageOperator(task_id="v", messages={"title": "{{ if eq .s \u201cx\u201d }}y{{ end }}"},
                                     profiles=[])  # fmt: skip
    op = LyticsProfileMessageOperator(task_id="p", messages={"t": "{{ gt .ltv 100 }}"}, profiles=[{"ltv": 1.5}],
                                      preview_profiles=[{"ltv": 150}, {"ltv": 99.5}])  # fmt: skip
    previews = op.preview()
    assert previews[0].rendered == {"t": "true"} and "incompatible types" in previews[1].errors["t"]
    with pytest.raises(AirflowException, match="failed on the preview profiles: sample 1"):
        op.execute({})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"profiles": [], "segment": "x"}, "exactly one profile source"),
        ({"profiles": [], "delivery": "webhook"}, "needs http_conn_id"),
        ({"profiles": [], "delivery": "file"}, "needs output_path"),
        ({"profiles": [], "delivery": "sms"}, "delivery must be one of"),
        ({"profiles": [], "batch_size": 0}, "batch_size must be at least 1"),
        ({"profiles": [], "include_fields": ["title"]}, "clash"),
    ],
)
def test_bad_configuration_is_explained(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        LyticsProfileMessageOperator(task_id="bad", messages=MESSAGES, **kwargs)


def test_example_dag_end_to_end(lytics_conn_env, emulator, receiver, monkeypatch, tmp_path) -> None:
    import importlib.util
    from pathlib import Path

    from airflow_provider_lytics.hooks.lytics import LyticsHook
    from airflow_provider_lytics.templating import validate_templates

    path = Path(__file__).resolve().parents[2] / "dags" / "lytics_go_template_alerts.py"
    spec = importlib.util.spec_from_file_location("lytics_go_template_alerts", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    samples = [{**s, "campaign": "spring"} for s in module.SAMPLE_PROFILES]
    validate_templates(module.ALERT_TEMPLATES, samples, strict=True)  # the helper a DAG test calls

    conn = {"conn_type": "http", "host": f"http://127.0.0.1:{receiver.port}"}
    monkeypatch.setenv("AIRFLOW_CONN_LYTICS_ALERTS_WEBHOOK", json.dumps(conn))
    emulator.backend.store.ingest("crm", [
        {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace", "subscriber_status": "subscribed",
         "interests": ["poetry"], "ltv": 900},
        {"email": "bob@example.com", "ltv": 1200},
    ])  # fmt: skip
    LyticsHook().create_segment('FILTER EXISTS email FROM user ALIAS demo_high_value WITH name = "High value"')
    op = module.dag.get_task("send_alerts")
    params = {"audience_slug": "demo_high_value", "campaign": "autumn", "results_dir": str(tmp_path)}
    # An Airflow 3 run without a logical date (REST API / `airflow dags trigger`): only run_id and dag_run.
    run_after = datetime(2026, 11, 28, 6, 0, tzinfo=timezone.utc)
    run_id = "manual__2026-11-28T06:00:00+00:00"
    dag_run = SimpleNamespace(run_id=run_id, logical_date=None, run_after=run_after)
    context = {"run_id": run_id, "dag_run": dag_run, "params": params}
    op.render_template_fields(context)
    assert op.messages == module.ALERT_TEMPLATES
    assert op.results_path == str(tmp_path / "manual__2026-11-28T06_00_00_00_00" / "results.ndjson")
    summary = op.execute(context)
    assert summary["delivered"] == 2 and receiver.requests[0]["path"] == "/alerts"
    by_email = {m["email"]: m for m in receiver.messages()}
    assert by_email["ada@example.com"]["body"] == "Ada Lovelace, our autumn picks for you: Poetry."
    assert by_email["bob@example.com"] == {
        "email": "bob@example.com",
        "title": "Hey, valued customer",
        "subtitle": "You should subscribe!",
        "body": "Hello, our autumn picks for you: our bestsellers.",
    }


# -- webhook helper units -------------------------------------------------------------------------------------
class _Conn:
    def __init__(self, **kw) -> None:
        self.conn_id = kw.pop("conn_id", "hook")
        self.host = kw.pop("host", None)
        self.schema = kw.pop("schema", None)
        self.port = kw.pop("port", None)
        self.login = kw.pop("login", None)
        self.password = kw.pop("password", None)
        self.extra_dejson = kw.pop("extra", {})


def test_settings_from_http_connection() -> None:
    from airflow_provider_lytics.io.webhook import settings_from_connection

    extra = {"X-Token-Id": "1", "timeout": "7", "verify": "false"}
    conn = _Conn(host="hooks.example.com", port=8443, login="u", password=SECRET, extra=extra)
    s = settings_from_connection(conn, "/v1/alerts")
    assert s.url == "https://hooks.example.com:8443/v1/alerts" and s.auth == ("u", SECRET)
    assert s.headers == {"X-Token-Id": "1"} and s.timeout == 7.0 and s.verify is False
    assert SECRET not in repr(s) and s.safe_url == "https://hooks.example.com:8443/v1/alerts"
    s = settings_from_connection(_Conn(host="http://127.0.0.1/base/", schema="https", extra={"endpoint": "in"}))
    assert s.url == "http://127.0.0.1/base/in" and s.auth is None
    from airflow_provider_lytics.io.webhook import WebhookConfigError

    with pytest.raises(WebhookConfigError, match="has no host"):
        settings_from_connection(_Conn())
    with pytest.raises(WebhookConfigError, match="use http or https"):
        settings_from_connection(_Conn(host="h", schema="ftp"))
    with pytest.raises(WebhookConfigError, match="timeout"):
        settings_from_connection(_Conn(host="h", extra={"timeout": "soon"}))


def test_rate_limiter_spacing_with_a_fake_clock() -> None:
    from airflow_provider_lytics.io.webhook import RateLimiter, WebhookConfigError

    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(4, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.wait()
    assert slept == [0.25, 0.25, 0.25, 0.25]
    now[0] += 10  # idle time is not banked into a burst
    limiter.wait()
    limiter.wait()
    assert slept[-1] == 0.25
    with pytest.raises(WebhookConfigError, match="positive"):
        RateLimiter(0)


def test_unreachable_webhook_is_a_reported_failure() -> None:
    import socket

    from airflow_provider_lytics.io.webhook import WebhookSender, WebhookSettings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    sender = WebhookSender(WebhookSettings(url=f"http://user:{SECRET}@127.0.0.1:{port}/x?token={SECRET}"),
                           retry_policy=FAST_RETRY)  # fmt: skip
    result = sender.send([{"a": 1}])
    assert not result.ok and result.status is None and result.attempts == FAST_RETRY.max_attempts
    assert "ConnectionError" in result.reason and SECRET not in result.reason
