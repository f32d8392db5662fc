"""The export's scan process: pages an audience over HTTP and forwards each page body to the export.

Why a process: the export encodes, compresses, encrypts and uploads in the worker's Python process while the
scan runs. In one process they share the interpreter lock, so every page request waits behind encoding work
and the scan (the export's slowest stage) slows down by tens of percent. Here the scan runs on its own
interpreter, imports only ``requests`` and this package's transport (no Airflow, well under a second to
start), and the export process only decodes the page bodies it receives.

Protocol (the parent is :mod:`airflow_provider_lytics.exports.scan_process`):

- stdin: one JSON document with the connection settings (token included: it never travels in argv or the
  environment), the retry policy and the scan arguments;
- stdout: frames of ``kind (1 byte) + length (4 bytes, big endian) + payload``: ``P`` a page body exactly as
  Lytics sent it, ``L`` a log record (JSON ``level``, ``msg``), ``E`` the error that ended the scan (JSON),
  ``D`` done (JSON: the child's pages, CPU seconds and peak RSS, for the task log). Nothing else is ever
  written to stdout.

The child stops by itself at the last page, at the first error, or when the parent goes away (broken pipe).
"""

from __future__ import annotations

import json
import logging
import os
import struct
import sys
import time
from typing import IO, Any

_HEADER = struct.Struct(">cI")
PAGE, LOG, ERROR, DONE = b"P", b"L", b"E", b"D"


def write_frame(out: IO[bytes], kind: bytes, payload: bytes = b"") -> None:
    out.write(_HEADER.pack(kind, len(payload)))
    if payload:
        out.write(payload)
    out.flush()


def read_frame(src: IO[bytes]) -> tuple[bytes, bytes]:
    """The next frame from the child; ``(DONE, b"")`` on end of stream (a child that died says nothing more)."""
    header = src.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return b"", b""
    kind, size = _HEADER.unpack(header)
    payload = src.read(size) if size else b""
    if len(payload) < size:
        return b"", b""
    return kind, payload


def describe_error(exc: BaseException) -> dict[str, Any]:
    """An error as JSON the parent turns back into the same typed exception (no secrets in any field)."""
    from airflow_provider_lytics.client.errors import LyticsApiError, LyticsConfigError, LyticsTransportError

    if isinstance(exc, LyticsApiError):
        return {
            "kind": "api",
            "status": exc.status,
            "message": exc.message,
            "method": exc.method,
            "path": exc.path,
            "request_id": exc.request_id,
            "codes": list(exc.codes),
            "attempts": exc.attempts,
            "retry_after": exc.retry_after,
        }
    if isinstance(exc, LyticsTransportError):
        return {
            "kind": "transport",
            "message": str(exc),
            "method": exc.method,
            "path": exc.path,
            "attempts": exc.attempts,
            "connect_phase": exc.connect_phase,
        }
    if isinstance(exc, LyticsConfigError):
        return {"kind": "config", "message": str(exc)}
    return {"kind": "other", "message": f"{type(exc).__name__}: {exc}"}


class _FrameLogHandler(logging.Handler):
    """Send log records (retry warnings) to the parent, which logs them in the task log."""

    def __init__(self, out: IO[bytes]) -> None:
        super().__init__()
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = json.dumps({"level": record.levelno, "msg": record.getMessage()}).encode()
            write_frame(self.out, LOG, msg)
        except Exception:  # a log line must never break the scan
            pass


def _peak_rss_mb(usage: Any) -> float:
    """This process's own peak RSS: ``VmHWM`` (``ru_maxrss`` also counts the parent's pages from before exec)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return usage.ru_maxrss / 1024


def run(config: dict[str, Any], out: IO[bytes]) -> None:
    """Scan as ``config`` says, writing frames to ``out``."""
    import resource

    from airflow_provider_lytics.client.config import LyticsSettings
    from airflow_provider_lytics.client.envelope import scan_continuation
    from airflow_provider_lytics.client.http import new_session, scan_requests, send
    from airflow_provider_lytics.client.retry import RetryPolicy

    log = logging.getLogger("airflow_provider_lytics.exports.scan_worker")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(_FrameLogHandler(out))
    try:
        settings = LyticsSettings(**config["settings"])
        policy = RetryPolicy(**config["retry"])
        scan = config["scan"]
        page_request = scan_requests(
            scan.get("segment"), scan.get("filter_ql"), fields=scan.get("fields"), limit=scan.get("limit", 100)
        )
        session = new_session(settings)
        cursor = scan.get("start")
        pages = 0
        while True:
            method, path, params, kwargs = page_request(cursor)
            body = send(session, settings, policy, method, path, params=params, **kwargs, log=log,
                        sleep=time.sleep, clock=time.monotonic, raw=True)  # fmt: skip
            next_cursor, has_rows = scan_continuation(body)  # type: ignore[arg-type]
            write_frame(out, PAGE, body)  # type: ignore[arg-type]
            pages += 1
            if not next_cursor or not has_rows:  # the end, by the same rule as iter_scan
                break
            cursor = next_cursor
    except BrokenPipeError:
        return
    except BaseException as exc:  # the parent re-raises it as the same typed error
        write_frame(out, ERROR, json.dumps(describe_error(exc)).encode())
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats = {"pages": pages, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": _peak_rss_mb(usage)}
    write_frame(out, DONE, json.dumps(stats).encode())


def main() -> int:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # nothing but frames may reach the parent's pipe, not even a stray print
    sys.stdout = sys.stderr
    config = json.loads(sys.stdin.buffer.readline())
    try:
        run(config, out)
    except BrokenPipeError:
        pass
    try:
        out.close()
    except BrokenPipeError:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
