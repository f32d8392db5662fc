"""The export's scan process, over real HTTP against the emulator: same pages as the hook, typed errors,
retry warnings in the task log, the token kept out of argv and environment, the child always reaped."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
import requests

from airflow_provider_lytics.client.errors import LyticsAuthError, LyticsCursorExpiredError, LyticsError
from airflow_provider_lytics.client.retry import RetryPolicy
from airflow_provider_lytics.exports.scan_process import ProcessScan, ScanProcessUnavailableError, child_environment
from airflow_provider_lytics.exports.scanner import AudienceScanner, scan_process_supported
from tests.exports.helpers import FIELDS, fast_hook, seed, user

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.02, jitter=False)


def _scan(hook, **kwargs) -> ProcessScan:
    kwargs.setdefault("segment", "actives")
    kwargs.setdefault("fields", FIELDS)
    return ProcessScan(hook.settings, FAST, **kwargs)


def test_pages_match_the_hook_scan(emulator, lytics_conn_env):
    seed(emulator, [user(i) for i in range(230)])
    hook = fast_hook()
    direct = [(p.records, p.total) for p in hook.scan_pages("actives", fields=FIELDS, limit=50)]
    via_child = [(p.records, p.total) for p in _scan(hook, limit=50)]
    assert via_child == direct
    assert [len(records) for records, _ in via_child] == [50, 50, 50, 50, 30]
    assert via_child[0][1] == 230


def test_adhoc_filter_ql_scan(emulator, lytics_conn_env):
    seed(emulator, [user(i, status="active" if i % 3 else "gone") for i in range(30)])
    rows = [
        r for p in _scan(fast_hook(), segment=None, filter_ql='FILTER status = "gone" FROM user') for r in p.records
    ]
    assert sorted(r["user_id"] for r in rows) == [f"u{i:06d}" for i in range(0, 30, 3)]


def test_errors_come_back_typed_and_without_the_token(emulator, lytics_conn_env, monkeypatch):
    seed(emulator, [user(i) for i in range(3)])
    hook = fast_hook()
    bad = type(hook.settings)(**{**hook.settings.__dict__, "token": "not-the-token-123"})
    with pytest.raises(LyticsAuthError) as info:
        list(ProcessScan(bad, FAST, segment="actives", fields=FIELDS))
    assert info.value.status == 401 and info.value.path == "/api/segment/actives/scan"
    assert "not-the-token-123" not in str(info.value)


def test_an_expired_cursor_is_the_same_exception_the_scanner_restarts_on(emulator, lytics_conn_env):
    from airflow_provider_lytics.emulator.scan import encode

    seed(emulator, [user(i) for i in range(3)])
    with pytest.raises(LyticsCursorExpiredError):
        list(_scan(fast_hook(), start=encode("0" * 32, 100)))


def test_retries_happen_in_the_child_and_are_logged_here(emulator, lytics_conn_env, caplog):
    seed(emulator, [user(i) for i in range(120)])
    rule = {"route": "/api/segment/*/scan", "method": "GET", "kind": "status", "status": 503, "times": 2}
    requests.post(f"{emulator.url}/_emulator/faults", json=rule, timeout=5).raise_for_status()
    with caplog.at_level(logging.INFO, logger="airflow_provider_lytics.exports.scan_process"):
        rows = [r for p in _scan(fast_hook()) for r in p.records]
    assert len(rows) == 120
    retries = [r for r in caplog.records if r.name.endswith("scan_process") and "503" in r.getMessage()]
    assert len(retries) == 2 and all(r.levelno == logging.WARNING for r in retries)


# 5,000 members in pages of 100 are about 500 KB of page bodies: far more than a pipe holds (64 KB), so a child
# whose pages are not read stays blocked, alive, until the test reads on, closes or kills it.
MANY = 5000


def test_token_is_not_in_the_child_command_line_or_environment(emulator, lytics_conn_env):
    seed(emulator, [user(i) for i in range(MANY)])
    hook = fast_hook()
    scan = _scan(hook)
    pages = iter(scan)
    next(pages)
    pid = scan._proc.pid
    assert scan._proc.poll() is None  # still running (blocked on the full pipe): /proc shows the live process
    token = hook.settings.token.encode()
    assert token not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert token not in Path(f"/proc/{pid}/environ").read_bytes()
    pages.close()


def test_child_environment_keeps_proxies_and_trust_but_no_airflow_secrets():
    env = child_environment(
        {"PATH": "/usr/bin", "HTTPS_PROXY": "http://proxy:3128", "no_proxy": "localhost", "LC_ALL": "C.UTF-8",
         "REQUESTS_CA_BUNDLE": "/etc/ca.pem", "AIRFLOW_CONN_LYTICS_DEFAULT": "lytics://:secret@",
         "AIRFLOW__CORE__FERNET_KEY": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    )  # fmt: skip
    assert set(env) == {"PATH", "HTTPS_PROXY", "no_proxy", "LC_ALL", "REQUESTS_CA_BUNDLE", "PYTHONPATH"}


def test_stopping_early_reaps_the_child(emulator, lytics_conn_env):
    seed(emulator, [user(i) for i in range(MANY)])
    scan = _scan(fast_hook())
    pages = iter(scan)
    next(pages)
    proc = scan._proc
    pages.close()
    assert proc.returncode is not None and scan._proc is None


def test_a_child_that_dies_is_reported(emulator, lytics_conn_env, monkeypatch):
    seed(emulator, [user(i) for i in range(MANY)])
    scan = _scan(fast_hook())
    pages = iter(scan)
    next(pages)
    scan._proc.kill()
    with pytest.raises(LyticsError, match="scan process ended unexpectedly"):
        for _ in pages:
            pass


def test_scanner_isolated_restarts_after_cursor_expiry(emulator, lytics_conn_env, monkeypatch):
    """The audience scanner's restart logic works unchanged through the child process."""
    from airflow_provider_lytics.emulator.scan import CursorError

    seed(emulator, [user(i) for i in range(250)])
    scans = emulator.backend.store.scans
    original, calls = scans.resume, [0]

    def resume(cursor, key=None):
        calls[0] += 1
        if calls[0] == 2:
            raise CursorError("scan cursor has expired")
        return original(cursor, key)

    monkeypatch.setattr(scans, "resume", resume)
    hook = fast_hook()
    scanner = AudienceScanner(hook, segment="actives", fields=FIELDS, isolate=True)
    rows = [r for page in scanner for r in page]
    scanner.close()
    assert scanner.stats.restarts == 1 and len({r["user_id"] for r in rows}) == 250


def test_only_the_stock_hook_is_isolated(lytics_conn_env):
    from airflow_provider_lytics.hooks.lytics import LyticsHook

    class Custom(LyticsHook):
        def request(self, *args, **kwargs):
            return super().request(*args, **kwargs)

    patched = LyticsHook()
    patched.scan_pages = lambda *a, **k: iter(())
    assert scan_process_supported(LyticsHook())
    assert not scan_process_supported(Custom()) and not scan_process_supported(patched)
    assert not scan_process_supported(object())


@pytest.mark.parametrize(
    "command",
    [
        ("/nonexistent/python",),  # no interpreter there
        (sys.executable, "-c", "import sys; sys.exit(3)"),  # starts, dies before its first page
    ],
)
def test_a_scan_process_that_cannot_run_falls_back_to_scanning_in_process(
    emulator, lytics_conn_env, monkeypatch, caplog, command
):
    seed(emulator, [user(i) for i in range(130)])
    monkeypatch.setattr(ProcessScan, "command", command)
    with pytest.raises(ScanProcessUnavailableError):
        list(_scan(fast_hook()))
    scanner = AudienceScanner(fast_hook(), segment="actives", fields=FIELDS, isolate=True)
    with caplog.at_level(logging.WARNING):
        rows = [r for page in scanner for r in page]
    scanner.close()
    assert len({r["user_id"] for r in rows}) == 130 and scanner.isolate is False
    assert any("scanning in this process instead" in r.getMessage() for r in caplog.records)
