"""Shared bits for the jobs tests: a minimal task context and a local webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeTI:
    """Just what the operators touch on a task instance: xcom_push and start_date."""

    def __init__(self, start_date: datetime | None = None) -> None:
        self.xcoms: dict[str, Any] = {}
        self.start_date = start_date or datetime.now(timezone.utc)
        self.try_number = 1

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def context(ti: FakeTI | None = None) -> dict[str, Any]:
    ti = ti or FakeTI()
    return {"ti": ti, "task_instance": ti}


class Receiver:
    """A real HTTP server on loopback recording webhook requests; ``responder`` picks each reply."""

    def __init__(self, responder: Callable[[int], tuple[int, dict[str, str]]] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.responder = responder or (lambda n: (200, {}))
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with outer._lock:
                    outer.requests.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": json.loads(raw) if raw else None,
                        }
                    )
                    status, headers = outer.responder(len(outer.requests))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = do_GET = do_PATCH = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[dict[str, Any]]:
        out = []
        for req in list(self.requests):
            body = req["body"]
            out.extend(body if isinstance(body, list) else [body])
        return out
