"""Run the emulator in-process: uvicorn in a background thread on a socket bound before the thread starts.

Binding first gives a usable port at once (``port=0`` picks a free one) and turns "port in use" into an immediate,
clear :class:`EmulatorStartError` instead of a log line in another thread.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_lytics.emulator.faults import ABORT_EXTENSION

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

    from starlette.routing import BaseRoute

    from airflow_provider_lytics.emulator.app import RequestStats
    from airflow_provider_lytics.emulator.backend import Backend
    from airflow_provider_lytics.emulator.clock import EmulatorClock
    from airflow_provider_lytics.emulator.faults import ASGIApp, Receive, Scope, Send
    from airflow_provider_lytics.emulator.jobs import JobTimings

START_TIMEOUT = 10.0


class EmulatorStartError(RuntimeError):
    """The emulator could not start (e.g. the port is taken); the message says what to change."""


#: Header the data plane reads to apply bulk-host rules (no 10 MB body cap); set on the bulk listener's requests.
BULK_HOST_HEADER = (b"x-lytics-host", b"bulk")


class _ConnectionApp:
    """Per-connection wrapper: adds the :data:`ABORT_EXTENSION` callable and, on the bulk port, the bulk marker."""

    __slots__ = ("app", "bulk", "transport")

    def __init__(self, app: ASGIApp, transport: asyncio.BaseTransport, bulk: bool) -> None:
        self.app = app
        self.transport = transport
        self.bulk = bulk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("extensions", {})[ABORT_EXTENSION] = self.transport.abort  # type: ignore[attr-defined]
        if self.bulk:
            headers = [h for h in scope["headers"] if h[0].lower() != BULK_HOST_HEADER[0]]
            scope["headers"] = [*headers, BULK_HOST_HEADER]
        await self.app(scope, receive, send)


def protocol_class(http: str = "auto", bulk_ports: frozenset[int] = frozenset()) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol (``httptools`` when installed, else ``h11``) that can drop its connection.

    Connections accepted on one of ``bulk_ports`` are served as the bulk host (``bulk.lytics.io``).
    """
    base: type[Any]
    if http in ("auto", "httptools"):
        try:
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
        except ImportError:
            if http == "httptools":
                raise EmulatorStartError(
                    "http='httptools' needs the httptools package (pip install httptools)"
                ) from None
            from uvicorn.protocols.http.h11_impl import H11Protocol as base
    elif http == "h11":
        from uvicorn.protocols.http.h11_impl import H11Protocol as base
    else:
        raise EmulatorStartError(f"http must be 'auto', 'httptools' or 'h11', got {http!r}")

    class DroppableProtocol(base):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            local = transport.get_extra_info("sockname")
            bulk = bool(bulk_ports) and isinstance(local, tuple) and local[1] in bulk_ports
            self.app = _ConnectionApp(self.config.loaded_app, transport, bulk)

    DroppableProtocol.__name__ = DroppableProtocol.__qualname__ = f"Droppable{base.__name__}"
    return DroppableProtocol


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; raises :class:`EmulatorStartError` naming the port when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise EmulatorStartError(
                f"port {port} on {host} is already in use; choose another port (e.g. --port 0 for a free one) "
                "or stop the process using it"
            ) from None
        raise EmulatorStartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


class EmulatorServer:
    """The emulator on a real socket in this process; use as a context manager or call start()/stop()."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        db_path: str | None = None,
        tokens: list[str] | None = None,
        job_timings: JobTimings | None = None,
        backend: Backend | None = None,
        http: str = "auto",
        routes: Sequence[BaseRoute] | None = None,
        bulk_port: int | None = 0,
        clock: EmulatorClock | None = None,
    ) -> None:
        """``bulk_port`` opens a second listener playing ``bulk.lytics.io`` (0 = a free port, None = none);
        ``routes`` replaces the data-plane and jobs routes (to test the shell alone); ``clock`` is the emulator's
        time (default: real time; see :class:`~airflow_provider_lytics.emulator.clock.EmulatorClock`)."""
        if backend is not None and (db_path or tokens or job_timings or clock):
            raise ValueError("pass either backend or db_path/tokens/job_timings/clock, not both")
        self._clock = clock
        self.host = host
        self.port = port
        self._db_path = db_path
        self._tokens = tokens
        self._job_timings = job_timings
        self._backend = backend
        self._owns_backend = backend is None
        self._http = http
        self._routes = routes
        self.bulk_port = bulk_port
        self._bulk_socket: socket.socket | None = None
        self._server: Any = None
        self._app: Any = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    # -- public handle ---------------------------------------------------------------------------------------
    @property
    def backend(self) -> Backend:
        if self._backend is None:
            raise RuntimeError("the emulator has no backend yet; call start() first")
        return self._backend

    @property
    def url(self) -> str:
        if self._socket is None:
            raise RuntimeError("the emulator is not running; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def bulk_url(self) -> str:
        """The bulk host (large ``/collect/bulk`` uploads, no 10 MB cap); the API URL when there is no bulk port."""
        if self._bulk_socket is None:
            return self.url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.bulk_port}"

    @property
    def stats(self) -> RequestStats:
        """Request and ingest counters (also served at ``GET /_emulator/stats``)."""
        if self._app is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._app.state.stats

    @property
    def clock(self) -> EmulatorClock:
        """The emulator's clock (set/advance/freeze it here or over ``/_emulator/clock``)."""
        return self.backend.clock

    @property
    def token(self) -> str:
        return next(iter(self.backend.tokens))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> EmulatorServer:
        if self.running:
            return self
        import uvicorn

        from airflow_provider_lytics.emulator.app import create_app

        self._socket = bind_socket(self.host, self.port)
        self.port = self._socket.getsockname()[1]
        try:
            sockets = [self._socket]
            bulk_ports: frozenset[int] = frozenset()
            if self.bulk_port is not None:
                self._bulk_socket = bind_socket(self.host, self.bulk_port)
                self.bulk_port = self._bulk_socket.getsockname()[1]
                sockets.append(self._bulk_socket)
                bulk_ports = frozenset({self._bulk_socket.getsockname()[1]})
            if self._backend is None:
                from airflow_provider_lytics.emulator.backend import build_backend

                self._backend = build_backend(self._db_path, self._tokens, self._job_timings, self._clock)
            self._app = create_app(self._backend, routes=self._routes)
            config = uvicorn.Config(
                self._app,
                http=protocol_class(self._http, bulk_ports),
                lifespan="off",
                log_config=None,  # leave the embedding process's logging alone; warnings propagate to its root
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=1,
                timeout_keep_alive=30,
                date_header=False,  # the app's ClockMiddleware sends Date from the emulator's clock
            )
            self._server = uvicorn.Server(config)
            self._thread = threading.Thread(
                target=self._server.run, kwargs={"sockets": sockets}, name="lytics-emulator", daemon=True
            )
            self._thread.start()
            deadline = time.monotonic() + START_TIMEOUT
            while not self._server.started:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    raise EmulatorStartError("the emulator's HTTP server did not start; see the log above")
                time.sleep(0.005)
        except BaseException:
            self.stop()
            raise
        logging.getLogger(__name__).debug("Lytics emulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=START_TIMEOUT)
        for sock in (self._socket, self._bulk_socket):
            if sock is not None:
                sock.close()
        if self._owns_backend and self._backend is not None:
            self._backend.close()
            self._backend = None
        self._server = self._thread = self._socket = self._bulk_socket = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._socket is not None else "stopped"
        return f"EmulatorServer({where})"
