"""Run one audience scan in the light scan process and read its pages back (see :mod:`.scan_worker` for why).

Errors come back as the same typed exceptions the hook raises (an expired cursor is still a
:class:`~airflow_provider_lytics.client.errors.LyticsCursorExpiredError`, so the scanner's restart logic is
unchanged), and the child's retry warnings are logged here, in the task log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from airflow_provider_lytics.client.config import LyticsSettings
from airflow_provider_lytics.client.envelope import parse_success
from airflow_provider_lytics.client.errors import (
    LyticsConfigError,
    LyticsError,
    LyticsTransportError,
    error_class_for,
)
from airflow_provider_lytics.client.http import ScanPage
from airflow_provider_lytics.client.retry import RetryPolicy
from airflow_provider_lytics.exports import scan_worker

log = logging.getLogger(__name__)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
# what the child may see of the task's environment: where Python and its packages are, locale, temp dir,
# proxies and TLS trust. Not the rest: AIRFLOW_CONN_* and friends carry secrets the scan does not need.
_ENV_KEEP = frozenset({
    "PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH", "PYTHONHOME", "PYTHONIOENCODING",
    "PYTHONUTF8", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE",
    "SSL_CERT_DIR",
})  # fmt: skip


def child_environment(parent: dict[str, str]) -> dict[str, str]:
    """The scan process's environment: the allow-listed variables, locale and proxies, our package importable."""
    env = {
        k: v
        for k, v in parent.items()
        if k in _ENV_KEEP or k.startswith("LC_") or k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    return env


class ScanProcessUnavailableError(LyticsError):
    """The scan process could not start or died before its first word; the caller may scan in-process."""


def rebuild_error(doc: dict[str, Any]) -> LyticsError:
    """The typed exception the scan process described."""
    kind = doc.get("kind")
    if kind == "api":
        cls = error_class_for(int(doc["status"]), str(doc.get("message") or ""))
        return cls(
            int(doc["status"]),
            str(doc.get("message") or ""),
            method=doc.get("method") or "",
            path=doc.get("path") or "",
            request_id=doc.get("request_id"),
            codes=doc.get("codes") or (),
            attempts=int(doc.get("attempts") or 1),
            retry_after=doc.get("retry_after"),
        )
    if kind == "transport":
        return LyticsTransportError(
            str(doc.get("message")),
            method=doc.get("method") or "",
            path=doc.get("path") or "",
            attempts=int(doc.get("attempts") or 1),
            connect_phase=bool(doc.get("connect_phase")),
        )
    if kind == "config":
        return LyticsConfigError(str(doc.get("message")))
    return LyticsError(f"The scan process failed: {doc.get('message')}")


class ProcessScan:
    """Iterate the pages of one scan performed by a child process; ``close`` ends the child early.

    Raises :class:`ScanProcessUnavailableError` when the child cannot run at all (no usable interpreter, the
    package not importable there), before any page was produced, so the caller can fall back safely.
    """

    #: how the child is started (a test may point it elsewhere)
    command: tuple[str, ...] = (sys.executable, "-m", "airflow_provider_lytics.exports.scan_worker")

    def __init__(
        self,
        settings: LyticsSettings,
        retry_policy: RetryPolicy,
        *,
        segment: str | None = None,
        filter_ql: str | None = None,
        fields: Sequence[str] | None = None,
        limit: int = 100,
        start: str | None = None,
    ) -> None:
        self._config = {
            "settings": dataclasses.asdict(settings),
            "retry": dataclasses.asdict(retry_policy),
            "scan": {"segment": segment, "filter_ql": filter_ql, "fields": list(fields) if fields else None,
                     "limit": limit, "start": start},
        }  # fmt: skip
        self._proc: subprocess.Popen[bytes] | None = None
        #: the child's own report at the end of a complete scan: pages, cpu_s, peak_rss_mb
        self.child_stats: dict[str, Any] = {}

    def _spawn(self) -> subprocess.Popen[bytes]:
        try:
            proc = subprocess.Popen(
                list(self.command),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=child_environment(dict(os.environ)),
                close_fds=True,
            )
        except OSError as exc:
            raise ScanProcessUnavailableError(f"cannot start the scan process ({self.command[0]}): {exc}") from None
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(self._config).encode() + b"\n")  # the token goes through the pipe only
            proc.stdin.close()
        except BrokenPipeError:
            pass  # it died at once: reported below as "ended before its first page"
        return proc

    def __iter__(self) -> Iterator[ScanPage]:
        self._proc = proc = self._spawn()
        assert proc.stdout is not None
        heard = False
        try:
            while True:
                kind, payload = scan_worker.read_frame(proc.stdout)
                heard = heard or bool(kind)
                if kind == scan_worker.PAGE:
                    env = parse_success(200, payload)
                    records = env.data if isinstance(env.data, list) else []
                    yield ScanPage(records=records, next_cursor=env.next_cursor, total=env.total)
                elif kind == scan_worker.LOG:
                    record = json.loads(payload)
                    log.log(int(record.get("level", logging.INFO)), "%s", record.get("msg"))
                elif kind == scan_worker.ERROR:
                    raise rebuild_error(json.loads(payload))
                elif kind == scan_worker.DONE:
                    self.child_stats = json.loads(payload) if payload else {}
                    log.info(
                        "Scan process %d done: %s pages, %.1f s CPU, peak RSS %.0f MB", proc.pid,
                        self.child_stats.get("pages"), self.child_stats.get("cpu_s", 0.0),
                        self.child_stats.get("peak_rss_mb", 0.0),
                    )  # fmt: skip
                    with contextlib.suppress(subprocess.TimeoutExpired):  # every page is in: close() reaps it
                        proc.wait(timeout=30)
                    return
                else:
                    code = proc.wait()
                    if not heard:
                        raise ScanProcessUnavailableError(
                            f"the scan process ended before its first page (exit code {code}); its error is in the "
                            "task log"
                        )
                    raise LyticsError(f"The scan process ended unexpectedly (exit code {code}); see the task log")
        finally:
            self.close()

    def close(self) -> None:
        """Stop the child (if it still runs) and reap it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
