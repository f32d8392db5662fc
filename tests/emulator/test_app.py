"""The emulator shell over real HTTP: auth variants, envelopes, 404/405, account selection, admin routes, stats."""

from __future__ import annotations

import concurrent.futures
import json
import os
import time

import pytest
import requests

from airflow_provider_lytics.emulator.backend import DEFAULT_ACCOUNT


def get(server, path: str, *, token: str | None = None, headers: dict | None = None, **params):
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = token
    return requests.get(f"{server.url}{path}", headers=all_headers, params=params, timeout=5)


# -- authentication ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["header", "access_token", "key"])
def test_each_token_source_is_accepted(emulator_shell, where):
    token = emulator_shell.token
    if where == "header":
        response = get(emulator_shell, "/api/account/current", token=token)
    else:
        response = get(emulator_shell, "/api/account/current", **{where: token})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["id"] == DEFAULT_ACCOUNT.id


def test_header_wins_over_query_parameters(emulator_shell):
    response = get(emulator_shell, "/api/account/current", token="wrong", access_token=emulator_shell.token)
    assert response.status_code == 401
    response = get(emulator_shell, "/api/account/current", token=emulator_shell.token, key="wrong")
    assert response.status_code == 200


def test_access_token_is_preferred_to_key(emulator_shell):
    assert get(emulator_shell, "/api/account", access_token=emulator_shell.token, key="wrong").status_code == 200
    assert get(emulator_shell, "/api/account", access_token="wrong", key=emulator_shell.token).status_code == 401


@pytest.mark.parametrize(
    ("path", "family"), [("/api/account/current", "v1"), ("/collect/json/s", "v1"), ("/v2/thing/1", "v2")]
)
def test_unknown_token_gets_401_in_the_path_family(emulator_shell, path, family):
    response = get(emulator_shell, path, token="not-a-token")
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == 401
    assert body["message"] == "Not authorized"
    if family == "v1":
        assert body["data"] is None
        assert "errors" not in body
    else:
        assert body["errors"][0]["code"] == "UNAUTHORIZED-017"
    assert "not-a-token" not in response.text


def test_missing_token_says_where_to_put_it(emulator_shell):
    response = get(emulator_shell, "/api/account")
    assert response.status_code == 401
    message = response.json()["message"]
    assert message.startswith("Not authorized")
    assert "Authorization header" in message and "access_token=" in message and "key=" in message


def test_bearer_prefix_is_refused_with_a_hint_even_for_a_valid_token(emulator_shell):
    response = get(emulator_shell, "/api/account", token=f"Bearer {emulator_shell.token}")
    assert response.status_code == 401
    assert "raw API token" in response.json()["message"]
    assert "without a 'Bearer ' prefix" in response.json()["message"]
    assert emulator_shell.token not in response.text


def test_route_sees_the_account_in_request_state(emulator_shell):
    response = get(emulator_shell, "/v2/thing/7", token=emulator_shell.token)
    assert response.status_code == 200
    assert response.json()["data"] == {"account": DEFAULT_ACCOUNT.id}
    assert response.json()["_meta"] == {}


# -- account selection and account routes -----------------------------------------------------------------------


@pytest.mark.parametrize("account_id", [DEFAULT_ACCOUNT.id, str(DEFAULT_ACCOUNT.aid)])
def test_account_id_selects_a_reachable_account(emulator_shell, account_id):
    response = get(emulator_shell, "/v2/thing/1", token=emulator_shell.token, account_id=account_id)
    assert response.status_code == 200
    assert response.json()["data"]["account"] == DEFAULT_ACCOUNT.id


@pytest.mark.parametrize(("path", "family"), [("/api/account/current", "v1"), ("/v2/thing/1", "v2")])
def test_unknown_account_id_is_404(emulator_shell, path, family):
    response = get(emulator_shell, path, token=emulator_shell.token, account_id="someone-else")
    assert response.status_code == 404
    body = response.json()
    assert "someone-else" in body["message"]
    if family == "v2":
        assert body["errors"][0]["code"] == "ACCOUNT-NOTFOUND-021"
    else:
        assert body["data"] is None
    assert emulator_shell.probe.processed == []


def test_account_list_current_and_resolve(emulator_shell):
    token = emulator_shell.token
    listed = get(emulator_shell, "/api/account", token=token).json()
    assert listed["status"] == 200 and listed["message"] == "success"
    assert [a["id"] for a in listed["data"]] == [DEFAULT_ACCOUNT.id]
    account = listed["data"][0]
    assert account["aid"] == DEFAULT_ACCOUNT.aid
    for ref in ("current", DEFAULT_ACCOUNT.id, str(DEFAULT_ACCOUNT.aid)):
        doc = get(emulator_shell, f"/api/account/{ref}", token=token)
        assert doc.json()["data"] == account
        assert token not in doc.text  # the API token is never echoed back
    assert token not in get(emulator_shell, "/api/account", token=token).text
    missing = get(emulator_shell, "/api/account/ffff", token=token)
    assert missing.status_code == 404
    assert missing.json()["message"] == "Account 'ffff' not found"


# -- 404 / 405 / 500 --------------------------------------------------------------------------------------------


def test_unknown_paths_get_404_envelopes(emulator_shell):
    v1 = get(emulator_shell, "/api/nothing/here", token=emulator_shell.token)
    assert v1.status_code == 404
    assert v1.json()["data"] is None and "GET /api/nothing/here" in v1.json()["message"]
    v2 = get(emulator_shell, "/v2/nothing", token=emulator_shell.token)
    assert v2.status_code == 404
    assert v2.json()["errors"][0]["code"] == "NOTFOUND-003"


def test_wrong_verb_gets_405_with_allow(emulator_shell):
    response = requests.delete(
        f"{emulator_shell.url}/collect/json/s", headers={"Authorization": emulator_shell.token}, timeout=5
    )
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json()["status"] == 405
    assert "allowed: POST" in response.json()["message"]
    assert emulator_shell.probe.processed == []


def test_route_errors_become_500_envelopes_and_are_counted(emulator_shell):
    response = get(emulator_shell, "/api/boom", token=emulator_shell.token)
    assert response.status_code == 500
    assert response.json()["message"] == "Internal emulator error (RuntimeError); see the emulator log"
    rows = emulator_shell.stats.snapshot()["requests"]
    assert rows == [{"method": "GET", "route": "/api/boom", "status": 500, "count": 1}]
    assert get(emulator_shell, "/api/account", token=emulator_shell.token).status_code == 200


# -- admin routes and stats ---------------------------------------------------------------------------------------


def test_admin_routes_need_no_token(emulator_shell):
    health = requests.get(f"{emulator_shell.url}/_emulator/health", timeout=5)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert requests.get(f"{emulator_shell.url}/_emulator/stats", timeout=5).status_code == 200
    assert requests.get(f"{emulator_shell.url}/_emulator/nope", timeout=5).status_code == 404


def test_stats_count_method_route_status_and_stream_events(emulator_shell):
    headers = {"Authorization": emulator_shell.token}
    for body in (b'{"a":1}\n{"a":2}', b'{"a":3}'):
        requests.post(f"{emulator_shell.url}/collect/json/web", data=body, headers=headers, timeout=5)
    requests.post(f"{emulator_shell.url}/collect/json/web?dryrun=true", data=b"{}", headers=headers, timeout=5)
    requests.post(f"{emulator_shell.url}/collect/json/app", data=b"{}", timeout=5)  # 401: not received
    get(emulator_shell, "/v2/thing/1", token=emulator_shell.token)
    get(emulator_shell, "/v2/thing/2", token=emulator_shell.token)
    get(emulator_shell, "/nowhere", token=emulator_shell.token)
    stats = emulator_shell.stats.snapshot()
    rows = {(r["method"], r["route"], r["status"]): r["count"] for r in stats["requests"]}
    assert rows == {
        ("POST", "/collect/json/{stream}", 200): 3,
        ("POST", "/collect/json/{stream}", 401): 1,
        ("GET", "/v2/thing/{id}", 200): 2,
        ("GET", "<unmatched>", 404): 1,
    }
    assert stats["total"] == 7
    assert stats["events"] == {"web": {"received": 3, "rejected": 0, "batches": 2}}
    over_http = requests.get(f"{emulator_shell.url}/_emulator/stats", timeout=5).json()
    assert over_http["events"] == stats["events"]


def test_concurrent_requests_are_all_counted(emulator_shell):
    def call(i: int) -> int:
        return get(emulator_shell, f"/v2/thing/{i}", token=emulator_shell.token).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(call, range(200))) == {200}
    rows = emulator_shell.stats.snapshot()["requests"]
    assert rows == [{"method": "GET", "route": "/v2/thing/{id}", "status": 200, "count": 200}]


def test_reset_clears_faults_and_stats(emulator_shell):
    requests.post(
        f"{emulator_shell.url}/_emulator/faults", json={"route": "/v2/*", "kind": "drop_before"}, timeout=5
    ).raise_for_status()
    get(emulator_shell, "/api/account", token=emulator_shell.token)
    response = requests.post(f"{emulator_shell.url}/_emulator/reset", timeout=5)
    assert response.status_code == 200
    assert emulator_shell.backend.faults.list() == []
    assert emulator_shell.stats.snapshot()["total"] == 0
    assert get(emulator_shell, "/v2/thing/1", token=emulator_shell.token).status_code == 200


@pytest.mark.parametrize(
    ("query", "complaint"), [("", "integer query parameters"), ("?users=0", "between 1 and"), ("?users=x", "integer")]
)
def test_seed_rejects_bad_parameters(emulator_shell, query, complaint):
    response = requests.post(f"{emulator_shell.url}/_emulator/seed{query}", timeout=5)
    assert response.status_code == 400
    assert complaint in response.json()["message"]


def test_server_starts_and_stops_fast():
    from airflow_provider_lytics.emulator.backend import Backend
    from airflow_provider_lytics.emulator.faults import FaultInjector
    from airflow_provider_lytics.emulator.persistence import StateDB
    from airflow_provider_lytics.emulator.server import EmulatorServer

    class Idle:
        def close(self) -> None:
            """Nothing to release."""

        def reset(self) -> None:
            """Nothing to forget."""

    backend = Backend(db=StateDB(), store=Idle(), jobs=Idle(), faults=FaultInjector(), tokens={"t": DEFAULT_ACCOUNT})
    started = time.perf_counter()
    server = EmulatorServer(backend=backend, routes=[]).start()
    start_s = time.perf_counter() - started
    assert requests.get(f"{server.url}/_emulator/health", timeout=5).status_code == 200
    stopped = time.perf_counter()
    server.stop()
    stop_s = time.perf_counter() - stopped
    assert start_s < 2 and stop_s < 2, (start_s, stop_s)  # no fixed poll or grace period
    assert not server.running
    backend.close()


def test_port_in_use_is_a_clear_error(emulator_shell):
    from airflow_provider_lytics.emulator.server import EmulatorServer, EmulatorStartError

    port = int(emulator_shell.url.rsplit(":", 1)[1])
    with pytest.raises(EmulatorStartError, match=f"port {port} on 127.0.0.1 is already in use"):
        EmulatorServer(port=port).start()


# -- the full emulator (data plane and jobs mounted) ----------------------------------------------------------------


def test_full_emulator_mounts_the_lytics_surface(emulator):
    headers = {"Authorization": emulator.token}
    posted = requests.post(
        f"{emulator.url}/collect/json/web", json=[{"email": "a@example.com"}], headers=headers, timeout=5
    )
    assert posted.json()["data"]["message_count"] == 1
    assert requests.get(f"{emulator.url}/v2/job", headers=headers, timeout=5).status_code == 200
    assert requests.get(f"{emulator.url}/api/account/current", headers=headers, timeout=5).status_code == 200
    stats = requests.get(f"{emulator.url}/_emulator/stats", timeout=5).json()
    assert stats["events"]["web"]["received"] == 1


def test_drop_after_ingests_the_batch_the_client_never_hears_about(emulator):
    requests.post(
        f"{emulator.url}/_emulator/faults",
        json={"route": "/collect/json/*", "method": "POST", "kind": "drop_after", "times": 1},
        timeout=5,
    ).raise_for_status()
    batch = [{"email": f"lost{i}@example.com"} for i in range(5)]
    with pytest.raises(requests.ConnectionError):
        requests.post(
            f"{emulator.url}/collect/json/lost", json=batch, headers={"Authorization": emulator.token}, timeout=5
        )
    assert emulator.backend.store.stream_event_count("lost") == 5


def test_reset_endpoint_forgets_data(emulator):
    headers = {"Authorization": emulator.token}
    requests.post(f"{emulator.url}/collect/json/web", json={"email": "gone@example.com"}, headers=headers, timeout=5)
    assert emulator.backend.store.stream_event_count("web") == 1
    assert requests.post(f"{emulator.url}/_emulator/reset", timeout=30).status_code == 200
    assert emulator.backend.store.stream_event_count("web") == 0
    assert emulator.backend.db.count_events() == 0
    assert requests.get(f"{emulator.url}/_emulator/stats", timeout=5).json()["total"] == 0


def test_seed_endpoint_builds_a_population(emulator):
    response = requests.post(f"{emulator.url}/_emulator/seed", params={"users": 30, "seed": 5}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["counts"]
    scan = requests.post(
        f"{emulator.url}/api/segment/scan",
        data="FILTER * FROM user",
        params={"limit": 100},
        headers={"Authorization": emulator.token, "Content-Type": "text/plain"},
        timeout=10,
    ).json()
    assert scan["total"] == 30


def test_lytics_conn_env_points_at_the_emulator(lytics_conn_env, emulator):
    conn = json.loads(os.environ["AIRFLOW_CONN_LYTICS_DEFAULT"])
    assert conn == lytics_conn_env
    assert conn["host"] == emulator.url and conn["password"] == emulator.token
    assert conn["extra"]["bulk_url"] == emulator.bulk_url != emulator.url


def test_bulk_host_takes_uploads_the_api_host_refuses(emulator):
    body = b"email,note\n" + b"".join(b"big%d@example.com,%s\n" % (i, b"x" * 3000) for i in range(3700))
    assert len(body) > 10 * 1024 * 1024
    headers = {"Authorization": emulator.token, "Content-Type": "application/csv"}
    refused = requests.post(f"{emulator.url}/collect/bulk/big", data=body, headers=headers, timeout=30)
    assert refused.status_code == 413
    accepted = requests.post(f"{emulator.bulk_url}/collect/bulk/big", data=body, headers=headers, timeout=60)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["data"]["message_count"] == 3700
