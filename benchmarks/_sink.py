"""A store-nothing HTTP sink for ``POST /collect/bulk/{stream}``: reads each body as fast as it arrives and drops it.

It answers like Lytics's collect API (the v1 envelope with ``message_count``: the body's lines, less the header row
for CSV) so that the import operator runs unchanged against it, and it checks the ``Authorization`` token. Its only
job is to be faster than any client, so that a benchmark against it measures the client: one thread per connection,
HTTP/1.1 keep-alive, ``Expect: 100-continue`` (curl sends it for large bodies), ``Content-Length`` or chunked
bodies, received into one reusable buffer.

    python benchmarks/_sink.py --port 8089 --token TOKEN    # prints "ready <port>" once listening
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading

_BUF = 1 << 20
_MAX_HEAD = 64 * 1024


class _Conn:
    """One client connection: buffered reads of the head, direct reads of the body."""

    def __init__(self, sock: socket.socket, token: str) -> None:
        self.sock, self.token = sock, token
        self.pending = b""
        self.buf = bytearray(_BUF)
        self.view = memoryview(self.buf)

    def _line(self) -> bytes | None:
        while b"\r\n" not in self.pending:
            if len(self.pending) > _MAX_HEAD:
                return None
            data = self.sock.recv(65536)
            if not data:
                return None
            self.pending += data
        line, _, self.pending = self.pending.partition(b"\r\n")
        return line

    def _discard(self, length: int) -> int:
        """Read and drop ``length`` body bytes; returns how many newlines they held."""
        lines = self.pending[:length].count(b"\n")
        taken = min(length, len(self.pending))
        self.pending = self.pending[taken:]
        length -= taken
        while length > 0:
            n = self.sock.recv_into(self.view, min(length, _BUF))
            if not n:
                raise ConnectionError("body cut short")
            lines += self.buf.count(b"\n", 0, n)
            length -= n
        return lines

    def _chunked(self) -> int:
        lines = 0
        while True:
            size_line = self._line()
            if size_line is None:
                raise ConnectionError("chunked body cut short")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while self._line():  # trailers, then the empty line
                    pass
                return lines
            lines += self._discard(size)
            self._line()  # the CRLF after the chunk

    def _reply(self, status: int, payload: dict, close: bool) -> None:
        body = json.dumps(payload).encode()
        reason = {200: "OK", 401: "Unauthorized", 404: "Not Found"}.get(status, "Error")
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n")  # fmt: skip
        self.sock.sendall(head.encode() + body)

    def serve(self) -> None:
        while True:
            request = self._line()
            if not request:
                return
            method, target, version = request.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while (line := self._line()) is not None and line:
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            close = version == "HTTP/1.0" or headers.get("connection", "").lower() == "close"
            if headers.get("expect", "").lower() == "100-continue":
                self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            if headers.get("transfer-encoding", "").lower() == "chunked":
                lines = self._chunked()
            else:
                lines = self._discard(int(headers.get("content-length") or 0))
            path = target.split("?", 1)[0]
            auth = headers.get("authorization") or ""
            if auth != self.token and f"access_token={self.token}" not in target and f"key={self.token}" not in target:
                self._reply(401, {"status": 401, "message": "missing or unknown API token", "data": None}, close)
            elif method == "POST" and path.startswith("/collect/bulk/"):
                csv = "csv" in headers.get("content-type", "")
                rows = max(lines - 1, 0) if csv else lines
                data = {"message_count": rows, "rejected_count": 0}
                self._reply(200, {"status": 200, "message": "success", "data": data}, close)
            else:
                self._reply(404, {"status": 404, "message": f"the sink only takes POST /collect/bulk, not {path}",
                                  "data": None}, close)  # fmt: skip
            if close:
                return


def _handle(sock: socket.socket, token: str) -> None:
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            _Conn(sock, token).serve()
        except (ConnectionError, ValueError, OSError):
            pass


def serve(port: int, token: str, ready: threading.Event | None = None) -> None:
    """Accept connections on 127.0.0.1:``port`` until the process ends (a thread per connection)."""
    with socket.create_server(("127.0.0.1", port), backlog=64) as server:
        print(f"ready {server.getsockname()[1]}", flush=True)
        if ready is not None:
            ready.set()
        while True:
            sock, _ = server.accept()
            threading.Thread(target=_handle, args=(sock, token), daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    try:
        serve(args.port, args.token)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
