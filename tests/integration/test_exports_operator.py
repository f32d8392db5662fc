"""LyticsAudienceExportOperator end to end: email through a local SMTP server, object storage, XCom result,
asset/dataset event extras and argument checks. Runs on Airflow 3 and 2.11 alike."""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
import socketserver
import threading
from email import message_from_bytes, policy
from types import SimpleNamespace

import pytest

from airflow_provider_lytics.operators.exports import LyticsAudienceExportOperator
from tests.exports.helpers import FIELDS, make_recipient_key, rows_of, seed, stop_agent, user
from tests.integration.sftp_fixtures import *  # noqa: F403
from tests.integration.sftp_fixtures import use_connection

N = 40


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321, no TLS/auth) to receive one message per connection."""

    def handle(self) -> None:
        server = self.server
        self.wfile.write(b"220 test smtp\r\n")
        mail: dict = {"rcpt": []}
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode().strip()
            upper = cmd.upper()
            if upper.startswith(("EHLO", "HELO")):
                self.wfile.write(b"250-test\r\n250 8BITMIME\r\n")
            elif upper.startswith("MAIL FROM"):
                mail["from"] = cmd.split(":", 1)[1].strip(" <>")
                self.wfile.write(b"250 ok\r\n")
            elif upper.startswith("RCPT TO"):
                mail["rcpt"].append(cmd.split(":", 1)[1].strip(" <>"))
                self.wfile.write(b"250 ok\r\n")
            elif upper == "DATA":
                self.wfile.write(b"354 go\r\n")
                data = bytearray()
                while True:
                    chunk = self.rfile.readline()
                    if chunk in (b".\r\n", b""):
                        break
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                mail["data"] = bytes(data)
                server.messages.append(mail)  # type: ignore[attr-defined]
                mail = {"rcpt": []}
                self.wfile.write(b"250 queued\r\n")
            elif upper == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server(monkeypatch):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    server.daemon_threads = True
    server.messages = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    conn = {"conn_type": "smtp", "host": "127.0.0.1", "port": server.server_address[1],
            "extra": {"from_email": "exports@example.com", "disable_ssl": True, "disable_tls": True}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_TEST", json.dumps(conn))
    yield server
    server.shutdown()
    server.server_close()


class _Events:
    def __init__(self) -> None:
        self.items: dict = {}

    def __getitem__(self, key):
        return self.items.setdefault(key, SimpleNamespace(extra=None))


class _TI:
    def __init__(self) -> None:
        self.pushed: dict = {}

    def xcom_push(self, key, value) -> None:
        self.pushed[key] = value


@pytest.fixture
def audience(emulator, lytics_conn_env):
    seed(emulator, [user(i) for i in range(N)])
    return emulator


def test_email_destination_sends_gzip_csv_attachment(audience, smtp_server):
    op = LyticsAudienceExportOperator(
        task_id="mail", segment="actives", fields=FIELDS, compression="gzip", destination="email",
        smtp_conn_id="smtp_test", email_to="a@example.com; b@example.com", email_subject="Weekly actives",
        manifest=True,
    )  # fmt: skip
    result = op.execute({"ti": _TI()})
    assert result["rows_written"] == N
    (mail,) = smtp_server.messages
    assert mail["from"] == "exports@example.com" and mail["rcpt"] == ["a@example.com", "b@example.com"]
    msg = message_from_bytes(mail["data"], policy=policy.default)
    assert msg["Subject"] == "Weekly actives"
    attachments = {part.get_filename(): part.get_content() for part in msg.iter_attachments()}
    data_name = next(n for n in attachments if n.endswith(".csv.gz"))
    lines = gzip.decompress(attachments[data_name]).decode().splitlines()
    assert lines[0] == ",".join(FIELDS) and len(lines) == N + 1
    assert any(n.endswith(".manifest.json") for n in attachments)


def test_email_limit_is_a_clear_error(audience, smtp_server):
    op = LyticsAudienceExportOperator(
        task_id="mail", segment="actives", fields=FIELDS, destination="email", smtp_conn_id="smtp_test",
        email_to=["a@example.com"], email_max_bytes=100,
    )  # fmt: skip
    with pytest.raises(Exception, match="over the email limit"):
        op.execute({})
    assert smtp_server.messages == []


HOSTILE = [
    "=cmd|' /C calc'!A0",
    "+SUM(A1:A9)",
    "-2+3",
    "@SUM(1)",
    '=HYPERLINK("http://x.example","y")',
    "\tx=1",
    "\r=1",
]
KEPT = ["-5", "+1.5e3", "Anna", "a=b", ""]


@pytest.mark.parametrize("neutralize", [True, False])
def test_csv_formula_injection_is_neutralized_in_email_attachment(emulator, lytics_conn_env, smtp_server, neutralize):
    values = HOSTILE + KEPT
    seed(emulator, [user(i, name=v) for i, v in enumerate(values)])
    op = LyticsAudienceExportOperator(
        task_id="mail", segment="actives", fields=["user_id", "first_name"], destination="email",
        smtp_conn_id="smtp_test", email_to="a@example.com", csv_neutralize_formulas=neutralize,
    )  # fmt: skip
    op.execute({"ti": _TI()})
    msg = message_from_bytes(smtp_server.messages[0]["data"], policy=policy.default)
    (data,) = [p.get_content() for p in msg.iter_attachments() if p.get_filename().endswith(".csv")]
    text = data if isinstance(data, str) else data.decode()
    got = {r["user_id"]: r["first_name"] for r in csv.DictReader(io.StringIO(text, newline=""))}
    for i, v in enumerate(values):
        want = "'" + v if neutralize and v in HOSTILE else v
        if not v:
            continue  # an empty value is not stored as a profile field
        assert got[f"u{i:06d}"] == want, v


def test_object_storage_incremental_result_xcom_and_asset_extra(audience, tmp_path):
    base = f"file://{tmp_path}/bucket/exports"
    kwargs = {
        "segment": "actives",
        "fields": FIELDS,
        "destination": "object_storage",
        "path": base,
        "mode": "backfill_then_incremental",
        "format": "ndjson",
        "file_name": "actives_{CHANGE}_{TIMESTAMP}_{{ ds_nodash }}",
        "timestamp_format": "%Y%m%d%H%M%S%f",
    }
    op = LyticsAudienceExportOperator(task_id="export", **kwargs)
    (outlet,) = op.outlets
    assert outlet.uri.rstrip("/") == "lytics-export://actives"
    op.file_name = "actives_{CHANGE}_{TIMESTAMP}_20240101"  # what Jinja renders
    ti, events = _TI(), _Events()
    first = op.execute({"ti": ti, "outlet_events": events})
    assert first["run_kind"] == "backfill" and ti.pushed["lytics_export_watermark"] == first["watermark"]
    (extra,) = [e.extra for e in events.items.values()]
    assert extra["run_kind"] == "backfill" and extra["counts"] == {"full": N} and len(extra["paths"]) == 1
    assert (tmp_path / "bucket/exports/.lytics_export_state/actives.state.sqlite.gz").is_file()
    seed(audience, [user(N + 1)])
    op2 = LyticsAudienceExportOperator(task_id="export", **{**kwargs, "file_name": "actives_{CHANGE}_{TIMESTAMP}"})
    second = op2.execute({"ti": _TI()})
    assert second["run_kind"] == "incremental" and second["counts"]["added"] == 1
    assert second["previous_watermark"] == first["watermark"]
    assert len(json.dumps(second)) < 4000  # a small XCom
    assert not [p for p in (tmp_path / "bucket/exports").iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"format": "xml"}, "Unknown format"),
        ({"mode": "sometimes"}, "Unknown mode"),
        ({"filter_ql": "FILTER * FROM user"}, "exactly one"),
        ({"file_name": "x_{WHEN}"}, "unknown placeholder"),
        ({"destination": "email", "mode": "incremental"}, "state_uri"),
    ],
)
def test_operator_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LyticsAudienceExportOperator(task_id="bad", segment="actives", fields=FIELDS, **kwargs)


@pytest.mark.skipif(shutil.which("gpg") is None, reason="needs the gpg binary")
def test_pgp_connection_sftp_split_files_decrypt_with_gpg_cli(audience, tmp_path, monkeypatch, emulator_target_fixture):
    public, home = make_recipient_key(tmp_path / "keys")
    try:
        monkeypatch.setenv(
            "AIRFLOW_CONN_PARTNER_PGP", json.dumps({"conn_type": "pgp", "extra": {"public_key": public}})
        )
        use_connection(monkeypatch, "partner_sftp", emulator_target_fixture.connection())
        op = LyticsAudienceExportOperator(
            task_id="enc", segment="actives", fields=FIELDS, compression="zip", pgp_conn_id="partner_pgp",
            destination="sftp", sftp_conn_id="partner_sftp", path=emulator_target_fixture.remote("in"),
            split_rows=15, file_name="actives_{TIMESTAMP}_{PART}",
        )  # fmt: skip
        result = op.execute({})
        names = [f["name"] for f in result["files"]]
        assert len(names) == 3 and all(n.endswith(".csv.zip.gpg") for n in names)
        ids = [r["user_id"] for n in names for r in rows_of(emulator_target_fixture.local("in") / n, gpg_home=home)]
        assert sorted(ids) == sorted(f"u{i:06d}" for i in range(N))
    finally:
        stop_agent(home)
