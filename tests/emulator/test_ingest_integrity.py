"""The emulator applies a request only when its whole body arrived (Lytics would not apply a truncated upload),
and a record nested too deep is the client's error (400), not a server error (500, retried as transient)."""

from __future__ import annotations

import json
import socket
import urllib.parse

import requests


def _send_truncated(url: str, token: str, path: str, body: bytes, missing: int) -> bytes:
    """POST ``body`` minus its last ``missing`` bytes while announcing the full Content-Length, then close."""
    parts = urllib.parse.urlsplit(url)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\nAuthorization: {token}\r\n"
        f"Content-Type: application/csv\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        sock.sendall(head + body[: len(body) - missing])
        sock.shutdown(socket.SHUT_WR)  # the client goes away: the body ends short
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def _csv(rows: int) -> bytes:
    lines = ["email,first_name"] + [f"user{i}@example.com,Name{i}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def test_truncated_bulk_upload_stores_nothing(emulator) -> None:
    body = _csv(60_000)  # ~2 MB: several ingest batches before the cut
    _send_truncated(emulator.bulk_url, emulator.token, "/collect/bulk/crm", body, missing=len(body) // 3)
    # a complete request afterwards is processed, and only it is stored
    ok = requests.post(
        f"{emulator.bulk_url}/collect/bulk/crm", data=_csv(10), timeout=60,
        headers={"Authorization": emulator.token, "Content-Type": "application/csv"},
    )  # fmt: skip
    assert ok.status_code == 200 and ok.json()["data"]["message_count"] == 10
    assert emulator.backend.store.profile_count() == 10


def test_truncated_json_collect_stores_nothing(emulator) -> None:
    body = json.dumps([{"email": f"u{i}@e.com"} for i in range(20_000)]).encode()
    parts = urllib.parse.urlsplit(emulator.url)
    head = (
        f"POST /collect/json/web HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\nAuthorization: {emulator.token}"
        f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        sock.sendall(head + body[:-1000])
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
    assert emulator.backend.store.profile_count() == 0


def test_deeply_nested_record_is_a_400(emulator) -> None:
    record = '{"email": "deep@e.com", "x": ' + '{"a": ' * 990 + "1" + "}" * 990 + "}"
    for path, base in (("/collect/json/web", emulator.url), ("/collect/bulk/web", emulator.bulk_url)):
        r = requests.post(
            f"{base}{path}", data=record, timeout=60,
            headers={"Authorization": emulator.token, "Content-Type": "application/json"},
        )  # fmt: skip
        assert r.status_code in (200, 400), (path, r.status_code, r.text[:200])
        if r.status_code == 200:
            assert r.json()["data"]["rejected_count"] == 1 and r.json()["data"]["message_count"] == 0
        else:
            assert "nest" in r.json()["message"]
    assert emulator.backend.store.profile_count() == 0
