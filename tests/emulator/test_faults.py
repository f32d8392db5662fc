"""Fault injection: rule validation and bookkeeping in-process, every fault kind over real HTTP and raw sockets."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from airflow_provider_lytics.emulator.faults import FaultInjector, FaultRule, FaultRuleError

# -- rules and the injector -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "complaint"),
    [
        ({"kind": "status", "status": 429}, "needs 'route'"),
        ({"route": "/collect/*", "kind": "explode"}, "'kind' must be one of"),
        ({"route": "/collect/*", "kind": "status"}, "needs 'status'"),
        ({"route": "/collect/*", "kind": "status", "status": 418}, "needs 'status' in"),
        ({"route": "/collect/*", "kind": "latency"}, "needs 'latency'"),
        ({"route": "/collect/*", "kind": "latency", "latency": -1}, "needs 'latency'"),
        ({"route": "/collect/*", "kind": "drop_before", "status": 500}, "only applies to kind 'status'"),
        ({"route": "/collect/*", "kind": "drop_after", "retry_after": 3}, "only applies to kind 'status'"),
        ({"route": "/collect/*", "kind": "status", "status": 429, "times": 0}, "'times' must be an integer"),
        ({"route": "/collect/*", "kind": "status", "status": 429, "probability": 1.5}, "'probability'"),
        ({"route": "/collect/*", "kind": "status", "status": 429, "method": "FETCH"}, "'method' must be one of"),
        ({"route": "collect", "kind": "drop_before"}, "path pattern"),
        ({"route": "^/collect/(", "kind": "drop_before"}, "not a valid regular expression"),
        ({"route": "/x", "kind": "drop_before", "colour": "red"}, "unknown fault rule field(s) ['colour']"),
        (["not", "a", "dict"], "must be a JSON object"),
    ],
)
def test_bad_rules_name_the_field_to_fix(rule, complaint):
    with pytest.raises(FaultRuleError) as info:
        FaultInjector().add(rule)
    assert complaint in str(info.value)


def test_glob_regex_and_method_matching():
    glob = FaultRule.from_dict({"route": "/collect/*", "kind": "drop_before", "method": "post"})
    assert glob.method == "POST"
    assert glob.matches("POST", "/collect/bulk/users")
    assert not glob.matches("GET", "/collect/bulk/users")
    assert not glob.matches("POST", "/api/collect/x")
    regex = FaultRule.from_dict({"route": r"^/api/segment/[^/]+/scan$", "kind": "drop_before"})
    assert regex.matches("GET", "/api/segment/abc/scan")
    assert not regex.matches("GET", "/api/segment/abc/scan/more")


def test_times_counts_down_and_removes_the_rule():
    injector = FaultInjector()
    rule_id = injector.add({"route": "/collect/*", "kind": "status", "status": 503, "times": 2})
    assert injector.decide("GET", "/api/account") is None
    assert injector.decide("POST", "/collect/json/a").action.id == rule_id
    assert injector.list()[0]["hits"] == 1
    assert injector.decide("POST", "/collect/json/a").action.status == 503
    assert injector.decide("POST", "/collect/json/a") is None
    assert injector.list() == []


def test_first_terminal_rule_wins_and_latency_combines():
    injector = FaultInjector()
    injector.add({"route": "/collect/*", "kind": "latency", "latency": 0.2})
    first = injector.add({"route": "/collect/*", "kind": "status", "status": 429})
    injector.add({"route": "/collect/*", "kind": "status", "status": 500})
    injector.add({"route": "*", "kind": "latency", "latency": 0.3})
    decision = injector.decide("POST", "/collect/json/a")
    assert decision.action.id == first
    assert decision.latency == pytest.approx(0.5)


def test_probability_is_reproducible_with_a_seed():
    def pattern(seed: int) -> list[bool]:
        injector = FaultInjector()
        injector.add({"route": "*", "kind": "drop_before", "probability": 0.3, "seed": seed})
        return [injector.decide("GET", "/x") is not None for _ in range(200)]

    first = pattern(7)
    assert first == pattern(7)
    assert first != pattern(8)
    assert 30 <= sum(first) <= 90  # about 60 of 200


def test_probability_misses_do_not_use_up_times():
    injector = FaultInjector()
    injector.add({"route": "*", "kind": "drop_before", "probability": 0.5, "seed": 1, "times": 3})
    fired = sum(injector.decide("GET", "/x") is not None for _ in range(100))
    assert fired == 3


def test_concurrent_decisions_fire_exactly_times():
    injector = FaultInjector()
    injector.add({"route": "*", "kind": "status", "status": 500, "times": 500})
    fired: list[int] = []

    def worker() -> None:
        fired.append(sum(injector.decide("GET", "/x") is not None for _ in range(1000)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(fired) == 500


# -- over HTTP ------------------------------------------------------------------------------------------------------


def _add(server, *rules) -> list[str]:
    response = requests.post(f"{server.url}/_emulator/faults", json=list(rules), timeout=5)
    assert response.status_code == 201, response.text
    return response.json()["ids"]


def _collect(server, stream="events", body=b'{"a":1}', **kwargs):
    headers = {"Authorization": server.token, "Content-Type": "application/json"}
    return requests.post(f"{server.url}/collect/json/{stream}", data=body, headers=headers, timeout=5, **kwargs)


def _stats(server) -> dict:
    return requests.get(f"{server.url}/_emulator/stats", timeout=5).json()


def _by_status(server, method: str, route: str) -> dict:
    """{status: count} for one method + route template, from the stats endpoint."""
    rows = _stats(server)["requests"]
    return {r["status"]: r["count"] for r in rows if r["method"] == method and r["route"] == route}


def test_status_429_without_retry_after_then_recovers(emulator_shell):
    _add(emulator_shell, {"route": "/collect/*", "method": "POST", "kind": "status", "status": 429, "times": 2})
    codes = [_collect(emulator_shell).status_code for _ in range(3)]
    assert codes == [429, 429, 200]
    first = _collect(emulator_shell)  # the rule is gone
    assert first.status_code == 200
    assert len(emulator_shell.probe.processed) == 2  # faulted requests never reached the route
    assert _by_status(emulator_shell, "POST", "/collect/json/{stream}") == {429: 2, 200: 2}


def test_status_body_follows_the_api_family_and_retry_after_only_when_asked(emulator_shell):
    _add(
        emulator_shell,
        {"route": "/collect/*", "kind": "status", "status": 429, "times": 1},
        {"route": "/v2/*", "kind": "status", "status": 503, "retry_after": 2, "times": 1, "message": "try later"},
    )
    v1 = _collect(emulator_shell)
    assert v1.status_code == 429
    assert "Retry-After" not in v1.headers
    assert v1.json()["status"] == 429
    assert v1.json()["data"] is None
    assert v1.json()["message"] == "Too Many Requests"
    v2 = requests.get(f"{emulator_shell.url}/v2/thing/1", headers={"Authorization": emulator_shell.token}, timeout=5)
    assert v2.status_code == 503
    assert v2.headers["Retry-After"] == "2"
    body = v2.json()
    assert body["message"] == "try later"
    assert body["errors"][0]["code"] == "UNKNOWN-000"


def test_status_fault_on_a_large_upload_reaches_the_client_intact(emulator_shell):
    _add(emulator_shell, {"route": "/collect/*", "kind": "status", "status": 500, "times": 1})
    response = _collect(emulator_shell, body=b'{"a":1}\n' * 400_000)  # 3.2 MB the fault must drain
    assert response.status_code == 500
    assert response.json()["message"] == "Internal Server Error"


def test_latency_delays_then_passes_through(emulator_shell):
    _add(emulator_shell, {"route": "/collect/*", "kind": "latency", "latency": 0.3, "times": 1})
    started = time.perf_counter()
    assert _collect(emulator_shell).status_code == 200
    assert time.perf_counter() - started >= 0.3
    faults = requests.get(f"{emulator_shell.url}/_emulator/faults", timeout=5).json()
    assert faults["faults"] == []  # used up after one hit: later calls are not delayed
    assert _collect(emulator_shell).status_code == 200
    assert len(emulator_shell.probe.processed) == 2


def _raw_post(server, path: str, body: bytes) -> bytes:
    """Send one HTTP request on a raw socket and return all bytes received until the server closes."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {server.token}\r\n"
        f"Content-Type: application/json\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    received = b""
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    return received


def test_drop_before_closes_the_connection_without_processing(emulator_shell):
    _add(emulator_shell, {"route": "/collect/*", "kind": "drop_before", "times": 1})
    assert _raw_post(emulator_shell, "/collect/json/events", b'{"a":1}') == b""
    assert emulator_shell.probe.processed == []
    # The next request is served normally and the stats count the dropped attempt.
    assert _raw_post(emulator_shell, "/collect/json/events", b'{"a":2}').startswith(b"HTTP/1.1 200")
    assert _by_status(emulator_shell, "POST", "/collect/json/{stream}") == {"dropped": 1, 200: 1}


def test_drop_after_processes_the_request_but_loses_the_response(emulator_shell):
    _add(emulator_shell, {"route": "/collect/*", "kind": "drop_after", "times": 1})
    assert _raw_post(emulator_shell, "/collect/json/events", b'{"a":1}') == b""
    assert emulator_shell.probe.processed == [("POST", "/collect/json/events", b'{"a":1}')]
    assert _by_status(emulator_shell, "POST", "/collect/json/{stream}") == {"dropped": 1}
    assert _stats(emulator_shell)["events"]["events"] == {"received": 1, "rejected": 0, "batches": 1}


def test_requests_client_sees_a_connection_error_on_drops(emulator_shell):
    _add(emulator_shell, {"route": "/collect/*", "kind": "drop_after", "times": 1})
    with pytest.raises(requests.ConnectionError):
        _collect(emulator_shell)
    assert len(emulator_shell.probe.processed) == 1


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_drops_work_with_both_http_implementations(http):
    from airflow_provider_lytics.emulator.backend import DEFAULT_ACCOUNT, Backend
    from airflow_provider_lytics.emulator.persistence import StateDB
    from airflow_provider_lytics.emulator.server import EmulatorServer
    from tests.conftest import ShellProbe

    class Idle:
        def close(self) -> None:
            """Nothing to release."""

        def reset(self) -> None:
            """Nothing to forget."""

    backend = Backend(db=StateDB(), store=Idle(), jobs=Idle(), faults=FaultInjector(), tokens={"t": DEFAULT_ACCOUNT})
    probe = ShellProbe()
    with EmulatorServer(backend=backend, routes=probe.routes(), http=http) as server:
        backend.faults.add({"route": "/collect/*", "kind": "drop_after", "times": 1})
        backend.faults.add({"route": "/collect/json/b", "kind": "drop_before", "times": 1})
        assert _raw_post(server, "/collect/json/a", b"{}") == b""
        assert _raw_post(server, "/collect/json/b", b"{}") == b""
        assert _raw_post(server, "/collect/json/c", b"{}").startswith(b"HTTP/1.1 200")
    assert [path for _, path, _ in probe.processed] == ["/collect/json/a", "/collect/json/c"]
    backend.close()


def test_admin_fault_endpoints(emulator_shell):
    url = f"{emulator_shell.url}/_emulator/faults"
    bad = requests.post(url, json={"route": "/collect/*", "kind": "status", "status": 404}, timeout=5)
    assert bad.status_code == 400
    assert "needs 'status' in [429, 500, 502, 503, 504]" in bad.json()["message"]
    assert requests.post(url, data=b"{not json", timeout=5).status_code == 400
    first, second = _add(
        emulator_shell,
        {"route": "/collect/*", "kind": "drop_before"},
        {"route": "/v2/*", "kind": "latency", "latency": 1},
    )
    assert [f["id"] for f in requests.get(url, timeout=5).json()["faults"]] == [first, second]
    assert requests.delete(f"{url}/{first}", timeout=5).status_code == 204
    assert requests.delete(f"{url}/{first}", timeout=5).status_code == 404
    assert [f["id"] for f in requests.get(url, timeout=5).json()["faults"]] == [second]
    assert requests.delete(url, timeout=5).json() == {"faults": []}
    assert _collect(emulator_shell).status_code == 200


def test_admin_routes_are_never_faulted(emulator_shell):
    _add(emulator_shell, {"route": "*", "kind": "drop_before"})
    assert requests.get(f"{emulator_shell.url}/_emulator/health", timeout=5).status_code == 200
    with pytest.raises(requests.ConnectionError):
        _collect(emulator_shell)
