"""Data-plane routes over HTTP: collect, segments, sizes, scans, entity, schema and streams."""

from __future__ import annotations

import gzip
import json
import threading
import urllib.parse

import requests
from starlette.testclient import TestClient

from airflow_provider_lytics.emulator import routes_data
from airflow_provider_lytics.emulator.backend import Backend

CSV = {"Content-Type": "application/csv"}
TEXT = {"Content-Type": "text/plain"}


def _csv(n: int, start: int = 0) -> str:
    return "email,user_id,score\n" + "".join(f"user{i}@example.com,u{i},{i}\n" for i in range(start, start + n))


# -- /collect/json -----------------------------------------------------------------------------------------------
def test_collect_json_object_and_array(client: TestClient, backend: Backend) -> None:
    r = client.post("/collect/json/web", json={"_uid": "c1", "page": "/"})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == 200 and body["message"] == "success" and body["request_id"]
    assert body["data"] == {
        "message_count": 1, "rejected_count": 0, "content-type": "application/json", "droperrors": False,
        "dryrun": False, "timestamp_field": "", "filename": "",
    }  # fmt: skip
    r = client.post(
        "/collect/json/web?timestamp_field=seen&filename=batch-7.json",
        json=[{"_uid": "c1", "email": "A@B.C", "seen": "2024-05-01T00:00:00Z"}, {"_uid": "c2", "page": "/x"}],
    )
    data = r.json()["data"]
    assert (data["message_count"], data["timestamp_field"], data["filename"]) == (2, "seen", "batch-7.json")
    assert backend.store.stream_event_count("web") == 3
    assert backend.store.lookup("email", "a@b.c")["_uids"] == ["c1"]


def test_collect_json_dryrun_and_rejections(client: TestClient, backend: Backend) -> None:
    r = client.post("/collect/json/s?dryrun=true", json=[{"email": "a@b.c"}, {"email": "d@e.f"}])
    assert r.json()["data"]["dryrun"] is True and r.json()["data"]["message_count"] == 2
    assert backend.store.stream_event_count("s") == 0
    big_single = {"email": "a@b.c", "blob": "x" * 5000}
    r = client.post("/collect/json/s", json=big_single)
    assert (r.json()["data"]["message_count"], r.json()["data"]["rejected_count"]) == (0, 1)
    batch = [big_single, {"email": "b@b.c", "blob": "y" * 17000}, {"email": "c@b.c", "items": [{"sku": 1}]}, 5]
    r = client.post("/collect/json/s", json=batch)
    assert (r.json()["data"]["message_count"], r.json()["data"]["rejected_count"]) == (1, 3)  # 5 KB is fine in a batch
    assert backend.store.stream_event_count("s") == 1


def test_collect_json_that_does_not_parse_is_a_400(client: TestClient, backend: Backend) -> None:
    r = client.post(
        "/collect/json/s", content=b'[{"email": "a@b.c"}, {"email": ', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"] and r.json()["data"] is None
    r = client.post("/collect/json/bad%20name", json={"email": "a@b.c"})
    assert r.status_code == 400 and "stream name" in r.json()["message"]
    assert backend.store.stream_event_count("s") == 0


def test_api_host_body_limit_and_bulk_host(client: TestClient, backend: Backend, monkeypatch) -> None:
    huge = b"x" * (10 * 1024 * 1024 + 1)
    r = client.post("/collect/bulk/s", content=huge, headers=CSV)
    assert r.status_code == 413 and "bulk host" in r.json()["message"]
    monkeypatch.setattr(routes_data, "API_HOST_BODY_LIMIT", 200)
    body = _csv(10)
    assert len(body) > 200
    assert client.post("/collect/bulk/s", content=body, headers=CSV).status_code == 413
    chunked = client.post("/collect/bulk/s", content=iter([body[:100].encode(), body[100:].encode()]), headers=CSV)
    assert chunked.status_code == 413  # no Content-Length: the body is measured before anything is stored
    assert backend.store.stream_event_count("s") == 0
    r = client.post("/collect/bulk/s", content=body, headers={**CSV, "X-Lytics-Host": "bulk"})
    assert r.status_code == 200 and r.json()["data"]["message_count"] == 10
    r = client.post("/collect/bulk/s", content=body, headers={**CSV, "Host": "bulk.lytics.io"})
    assert r.status_code == 200
    assert backend.store.stream_event_count("s") == 20


# -- /collect/bulk -----------------------------------------------------------------------------------------------
def test_bulk_csv_options(client: TestClient, backend: Backend) -> None:
    r = client.post("/collect/bulk/crm?filename=users.csv", content=_csv(5), headers=CSV)
    data = r.json()["data"]
    assert (data["message_count"], data["content-type"], data["filename"]) == (5, "application/csv", "users.csv")
    tab = "x1@e.com\tvip\n\nx2@e.com\tbasic\n"
    r = client.post(
        "/collect/bulk/crm?headers=email,tier&delimiter=t", content=tab, headers={"Content-Type": "text/csv"}
    )
    assert r.json()["data"]["message_count"] == 2
    assert backend.store.lookup("email", "x1@e.com")["tier"] == "vip"
    append = urllib.parse.quote(json.dumps({"source": "import", "batch": 7}))
    r = client.post(f"/collect/bulk/crm?delimiter=|&append={append}", content="email|tier\nx3@e.com|a\n", headers=CSV)
    assert r.json()["data"]["message_count"] == 1
    assert backend.store.lookup("email", "x3@e.com")["source"] == "import"
    r = client.post("/collect/bulk/crm?headers=[email,tier]&delimiter=;", content="x4@e.com;b\n", headers=CSV)
    assert backend.store.lookup("email", "x4@e.com")["tier"] == "b"
    nested = urllib.parse.quote(json.dumps({"items": [{"sku": 1}]}))
    r = client.post(f"/collect/bulk/crm?headers=user_id&append={urllib.parse.quote(json.dumps({'user_id': 5}))}",
                    content="u-1\n", headers=CSV)  # fmt: skip
    assert r.status_code == 200 and backend.store.lookup("user_id", "5") is not None  # append wins over the column
    for query, message in (("delimiter=%23", "delimiter"), ("append=notjson", "append"), ("dryrun=perhaps", "dryrun"),
                           (f"append={nested}", "inside an array")):  # fmt: skip
        r = client.post(f"/collect/bulk/crm?{query}", content=_csv(1), headers=CSV)
        assert r.status_code == 400 and message in r.json()["message"]


def test_bulk_csv_bad_rows_abort_or_are_dropped(client: TestClient, backend: Backend) -> None:
    body = "email,score\na@b.c,1\nb@b.c,2,extra\nc@b.c,3\n"
    r = client.post("/collect/bulk/crm", content=body, headers=CSV)
    assert r.status_code == 400
    assert "line 3" in r.json()["message"] and "droperrors=true" in r.json()["message"]
    r = client.post("/collect/bulk/crm?droperrors=true", content=body, headers=CSV)
    data = r.json()["data"]
    assert (data["message_count"], data["rejected_count"], data["droperrors"]) == (2, 1, True)
    r = client.post("/collect/bulk/crm", content="email,,score\n", headers=CSV)
    assert r.status_code == 400 and "empty column name" in r.json()["message"]


def test_bulk_gzip_declared_or_sniffed(client: TestClient, backend: Backend) -> None:
    packed = gzip.compress(_csv(30).encode())
    r = client.post("/collect/bulk/z", content=packed, headers={**CSV, "Content-Encoding": "gzip"})
    assert r.json()["data"]["message_count"] == 30
    r = client.post("/collect/bulk/z", content=packed, headers=CSV)  # magic bytes only
    assert r.json()["data"]["message_count"] == 30
    r = client.post("/collect/bulk/z", content=b"\x1f\x8b\x08\x00broken", headers=CSV)
    assert r.status_code == 400 and "gzip" in r.json()["message"]


def test_bulk_json_bodies(client: TestClient, backend: Backend) -> None:
    ndjson = "".join(json.dumps({"email": f"n{i}@e.com"}) + "\n" for i in range(4))
    r = client.post("/collect/bulk/j", content=ndjson, headers={"Content-Type": "application/x-ndjson"})
    assert r.json()["data"]["message_count"] == 4
    r = client.post("/collect/bulk/j", content=json.dumps([{"email": "a1@e.com"}, {"email": "a2@e.com"}]),
                    headers={"Content-Type": "application/json"})  # fmt: skip
    assert r.json()["data"]["message_count"] == 2
    r = client.post("/collect/bulk/j", content=gzip.compress(ndjson.encode()))  # no Content-Type: sniffed
    assert r.json()["data"]["message_count"] == 4
    r = client.post("/collect/bulk/j", content=_csv(3))  # no Content-Type, not JSON: read as CSV
    assert r.json()["data"]["message_count"] == 3 and r.json()["data"]["content-type"] == "application/csv"
    r = client.post("/collect/bulk/j", content=gzip.compress(_csv(2).encode()))
    assert r.json()["data"]["message_count"] == 2
    r = client.post("/collect/bulk/j", content="<xml/>", headers={"Content-Type": "application/xml"})
    assert r.status_code == 415 and "application/csv" in r.json()["message"]


def test_streamed_upload_over_real_http() -> None:
    """A chunked bulk upload through uvicorn goes through the streaming path and lands completely."""
    from airflow_provider_lytics.emulator.server import EmulatorServer

    with EmulatorServer(tokens=["data-plane-token"]) as server:

        def body():
            yield b"email,user_id,score\n"
            for block in range(20):
                yield "".join(f"s{block}-{i}@e.com,u{block}-{i},{i}\n" for i in range(500)).encode()

        headers = {"Authorization": server.token, "Content-Type": "application/csv", "X-Lytics-Host": "bulk"}
        r = requests.post(f"{server.url}/collect/bulk/stream", data=body(), headers=headers, timeout=60)
        assert r.status_code == 200 and r.json()["data"]["message_count"] == 10_000

        def bad_early():
            yield b"email,score\na@b.c,1\nbroken,row,here\n"
            for _ in range(40):
                yield b"x@y.z,1\n" * 8000

        r = requests.post(f"{server.url}/collect/bulk/stream", data=bad_early(), headers=headers, timeout=60)
        assert r.status_code == 400 and "line 3" in r.json()["message"]  # a readable answer, not a reset
        headers = {"Authorization": server.token, "Content-Type": "text/plain"}
        r = requests.post(f"{server.url}/api/segment/scan?limit=100", data="FILTER score >= 0", headers=headers)
        assert r.json()["total"] == 10_000 and len(r.json()["data"]) == 100


def test_state_file_survives_a_server_restart_over_http(tmp_path) -> None:
    """Profiles written behind the response reach the state file when the server stops cleanly."""
    from airflow_provider_lytics.emulator.server import EmulatorServer

    path = str(tmp_path / "state.db")
    with EmulatorServer(db_path=path, tokens=["t"]) as server:
        headers = {"Authorization": "t", "Content-Type": "application/csv", "X-Lytics-Host": "bulk"}
        r = requests.post(f"{server.url}/collect/bulk/crm", data=_csv(3000), headers=headers, timeout=60)
        assert r.json()["data"]["message_count"] == 3000
        r = requests.post(f"{server.url}/collect/json/crm", json={"email": "user7@example.com", "plan": "pro"},
                          headers={"Authorization": "t"}, timeout=10)  # fmt: skip
        assert r.status_code == 200
    with EmulatorServer(db_path=path, tokens=["t"]) as server:
        found = requests.get(f"{server.url}/api/entity/user/email/user7@example.com", headers={"Authorization": "t"})
        data = found.json()["data"]
        assert data["plan"] == "pro" and data["score"] == "7" and data["_num_events"] == "2"
        assert server.backend.store.profile_count() == 3000 and server.backend.db.count_events("crm") == 3001


# -- segments ----------------------------------------------------------------------------------------------------
def _create(client: TestClient, ql: str, status: int = 201) -> dict:
    r = client.post("/api/segment", content=ql, headers=TEXT)
    assert r.status_code == status, r.text
    return r.json()["data"]


def test_segment_crud_v1(client: TestClient) -> None:
    seg = _create(client, 'FILTER score > 5 FROM user ALIAS big WITH name = "Big ones"')
    assert (seg["slug_name"], seg["name"], seg["table"], seg["kind"]) == ("big", "Big ones", "user", "segment")
    assert len(seg["id"]) == 32 and seg["ast"] and seg["created"].endswith("Z") and seg["invalid"] is False
    for key in ("account_id", "aid", "description", "segment_ql", "is_public", "tags", "updated", "invalid_reason"):
        assert key in seg
    same = _create(client, 'FILTER score > 6 FROM user ALIAS big WITH name = "Big ones"', status=200)  # upsert
    assert same["id"] == seg["id"] and "6" in same["segment_ql"]
    r = client.post("/api/segment", json={"name": "Small", "segment_ql": "FILTER score < 3", "slug_name": "small",
                                          "tags": ["t1"], "is_public": True, "description": "d"})  # fmt: skip
    small = r.json()["data"]
    assert r.status_code == 201 and small["tags"] == ["t1"] and small["is_public"] is True
    assert client.get("/api/segment/big").json()["data"]["id"] == seg["id"]
    assert client.get(f"/api/segment/{seg['id']}").json()["data"]["slug_name"] == "big"
    assert [s["slug_name"] for s in client.get("/api/segment").json()["data"]] == ["big", "small"]
    assert client.get("/api/segment?table=content").json()["data"] == []
    r = client.put(f"/api/segment/{small['id']}", json={"name": "Tiny", "segment_ql": "FILTER score < 2"})
    assert r.json()["data"]["name"] == "Tiny" and r.json()["data"]["slug_name"] == "small"
    assert client.delete(f"/api/segment/{small['id']}").status_code == 204
    assert client.get(f"/api/segment/{small['id']}").status_code == 404
    other = _create(client, "FILTER * ALIAS other")
    r = client.delete(f"/api/segment?ids={seg['id']},nope")
    assert r.status_code == 404 and "nope" in r.json()["message"]
    assert client.delete(f"/api/segment?ids={seg['id']}&ids={other['id']}").status_code == 204
    assert client.get("/api/segment").json()["data"] == []


def test_segment_from_json_ast(client: TestClient) -> None:
    client.post("/collect/json/s", json=[{"email": f"u{i}@e.com", "score": i} for i in range(10)])
    source = _create(client, "FILTER AND (score >= 3, score < 6) ALIAS source")
    r = client.post("/api/segment", json={"name": "From AST", "slug_name": "from_ast", "ast": source["ast"]})
    assert r.status_code == 201, r.text
    doc = r.json()["data"]
    assert doc["ast"] == source["ast"] and "score" in doc["segment_ql"]
    assert client.get("/api/segment/from_ast/size").json()["data"]["size"] == 3
    r = client.post("/api/segment", json={"name": "Bad AST", "ast": {"op": "nonsense"}})
    assert r.status_code == 400


def test_segment_validation_errors(client: TestClient) -> None:
    r = client.post("/api/segment", content="FILTER AND (a = ", headers=TEXT)
    assert r.status_code == 400 and r.json()["message"].startswith("Failed parsing segment QL")
    r = client.post("/api/segment", json={"name": "x" * 65, "segment_ql": "FILTER *"})
    assert r.status_code == 400 and "64" in r.json()["message"]
    r = client.post("/api/segment", json={"name": "no ql"})
    assert r.status_code == 400 and "segment_ql is required" in r.json()["message"]
    r = client.post("/api/segment", json={"name": "bad", "segment_ql": "FILTER *", "tags": "not-a-list"})
    assert r.status_code == 400 and "tags" in r.json()["message"]
    r = client.post("/api/segment/validate", content="FILTER AND (EXISTS email, score > 3) FROM user", headers=TEXT)
    assert r.status_code == 200 and r.json()["data"] is None
    r = client.post("/api/segment/validate", content="FILTER score >", headers=TEXT)
    assert r.status_code == 400 and r.json()["message"].startswith("Failed parsing segment QL")


def test_segment_v2_slug_rules_and_sizes(client: TestClient) -> None:
    client.post("/collect/json/s", json=[{"email": f"u{i}@e.com", "score": i} for i in range(10)])
    first = client.post("/v2/segment", json={"name": "Hi", "slug_name": "hi", "segment_ql": "FILTER score >= 5"})
    assert first.status_code == 201 and first.json()["data"]["slug_name"] == "hi"
    second = client.post("/v2/segment", json={"name": "Hi", "slug_name": "hi", "segment_ql": "FILTER score >= 8"})
    assert second.json()["data"]["slug_name"] == "hi_1"  # silently renamed, no 409
    r = client.put(f"/v2/segment/{second.json()['data']['id']}", json={"slug_name": "hi"})
    assert r.status_code == 400 and r.json()["message"] == "Slug is already used."
    assert r.json()["errors"][0]["code"] == "BADREQ-001"
    listed = client.get("/v2/segment?sizes=true").json()["data"]
    assert {s["slug_name"]: s["size"] for s in listed} == {"hi": 5, "hi_1": 2}
    got = client.get(f"/v2/segment/{first.json()['data']['id']}?sizes=true").json()["data"]
    assert got["size"] == 5
    assert client.get("/v2/segment/nope").status_code == 404


def test_segment_sizes_accept_every_list_syntax(client: TestClient) -> None:
    client.post("/collect/json/s", json=[{"email": f"u{i}@e.com", "score": i} for i in range(10)])
    a = _create(client, "FILTER score >= 5 ALIAS a")
    b = _create(client, "FILTER score >= 8 ALIAS b")
    assert client.get(f"/api/segment/{a['id']}/size").json()["data"]["size"] == 5
    one = client.get("/api/segment/b/sizes").json()["data"]
    assert (one["id"], one["slug_name"], one["name"], one["size"]) == (b["id"], "b", "b", 2)
    for query in (f"ids={a['id']},{b['id']}", f"ids=[{a['id']},{b['id']}]", f"ids={a['id']}&ids={b['id']}",
                  f"ids[]={a['id']}&ids[]={b['id']}", ""):  # fmt: skip
        data = client.get(f"/api/segment/sizes?{query}").json()["data"]
        assert {d["id"]: d["size"] for d in data} == {a["id"]: 5, b["id"]: 2}, query
    assert client.get("/api/segment/sizes?ids=missing").status_code == 404


def test_adhoc_size_is_throttled(client: TestClient) -> None:
    client.post("/collect/json/s", json=[{"email": f"u{i}@e.com", "score": i} for i in range(10)])
    r = client.post("/api/segment/size", content='FILTER score < 4 ALIAS q WITH name = "Q"', headers=TEXT)
    assert r.json()["data"] == {"id": "", "name": "Q", "slug_name": "q", "size": 4}
    r = client.post("/api/segment/size", content="FILTER score < 4", headers=TEXT)
    assert r.status_code == 429 and "10 seconds" in r.json()["message"]


# -- scan --------------------------------------------------------------------------------------------------------
def test_scan_paging_clamp_projection_and_cursor_alias(client: TestClient, backend: Backend) -> None:
    client.post("/collect/bulk/crm", content=_csv(230), headers=CSV)
    _create(client, "FILTER * ALIAS everyone")
    r = client.get("/api/segment/everyone/scan?limit=500")
    body = r.json()
    assert (body["status"], body["message"], body["total"], len(body["data"])) == (200, "success", 230, 100)
    seen = [row["_id"] for row in body["data"]]
    cursor = body["_next"]
    use_next_alias = True
    while cursor:
        param = "next" if use_next_alias else "start"
        use_next_alias = not use_next_alias
        page = client.get(f"/api/segment/everyone/scan?limit=100&{param}={cursor}").json()
        assert page["total"] == 230
        seen.extend(row["_id"] for row in page["data"])
        cursor = page["_next"]
    assert len(seen) == len(set(seen)) == 230
    assert page["_next"] == ""
    default = client.get("/api/segment/everyone/scan?fields=email,score&sortfield=score&sortorder=desc").json()
    assert len(default["data"]) == 20
    assert default["data"][0] == {"email": "user229@example.com", "score": "229"}
    r = client.get(f"/api/segment/{backend.store.segments.get('everyone')['id']}/scan?limit=x")
    assert r.status_code == 400 and "limit" in r.json()["message"]


def test_scan_cursor_expiry_is_a_400(client: TestClient, backend: Backend) -> None:
    now = [0.0]
    backend.store.scans.clock = lambda: now[0]
    client.post("/collect/bulk/crm", content=_csv(30), headers=CSV)
    page = client.post("/api/segment/scan?limit=10", content="FILTER *", headers=TEXT).json()
    now[0] += 601
    r = client.post(f"/api/segment/scan?limit=10&start={page['_next']}", content="FILTER *", headers=TEXT)
    assert r.status_code == 400 and "expired" in r.json()["message"] and "restart" in r.json()["message"]
    r = client.get("/api/segment/missing/scan")
    assert r.status_code == 404


def test_adhoc_scan_with_table_and_concurrent_ingest(client: TestClient, backend: Backend) -> None:
    client.post("/collect/bulk/crm", content=_csv(120), headers=CSV)
    first = client.post("/api/segment/scan?limit=40&table=user", content="FILTER score >= 0", headers=TEXT).json()
    assert first["total"] == 120
    writer = threading.Thread(target=lambda: backend.store.ingest("crm", [{"email": f"late{i}@e.com", "score": 1}
                                                                          for i in range(500)]))  # fmt: skip
    writer.start()
    seen = [row["_id"] for row in first["data"]]
    cursor = first["_next"]
    while cursor:
        page = client.post(f"/api/segment/scan?limit=40&start={cursor}", content="FILTER score >= 0", headers=TEXT)
        assert page.status_code == 200, page.text
        seen.extend(row["_id"] for row in page.json()["data"])
        cursor = page.json()["_next"]
    writer.join()
    assert len(seen) == len(set(seen)) == 120
    r = client.post("/api/segment/scan", content="FILTER score >= 0", headers=TEXT).json()
    assert r["total"] == 620
    assert client.post("/api/segment/scan", content="", headers=TEXT).status_code == 400


# -- entity / identity -------------------------------------------------------------------------------------------
def test_entity_found_not_found_quirk_and_variants(client: TestClient) -> None:
    client.post("/collect/json/web", json=[{"_uid": "ck-1", "email": "Ann+x@E.com", "score": 83}])
    _create(client, "FILTER score > 50 ALIAS engaged")
    email = urllib.parse.quote("ann+x@e.com", safe="")
    body = client.get(f"/api/entity/user/email/{email}").json()
    assert body["message"] == "success"
    assert body["data"]["score"] == "83" and body["data"]["segments"] == ["all", "engaged"]
    assert body["meta"] == {"name": "user", "format": "json", "by_fields": ["_uids", "email", "user_id", "external_id"],
                            "conflicts": None}  # fmt: skip
    trimmed = client.get(f"/api/entity/user/email/{email}?fields=email&segments=false&meta=false").json()
    assert trimmed["data"] == {"email": "ann+x@e.com"} and "meta" not in trimmed
    r = client.get("/api/entity/user/email/nobody@e.com")
    assert r.status_code == 200
    assert r.json()["message"] == "Not Found" and r.json()["data"] == {"segments": ["not_found", "all"]}
    assert client.get("/api/entity/user/" + urllib.parse.quote("ck-1", safe="")).json()["data"]["score"] == "83"
    r = client.get("/v2/identity/user/email/nobody@e.com")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "ENTITY-NOTFOUND-012"
    found = client.get(f"/v2/identity/user/email/{email}").json()["data"]
    assert found["entity"]["score"] == 83 and {"key": "_uids", "value": "ck-1"} in found["keys"]
    r = client.post("/v2/identity/lookup", json={"table": "user", "field": "_uid", "value": "ck-1"})
    assert r.json()["data"]["entity"]["email"] == "ann+x@e.com"
    assert client.post("/v2/identity/lookup", json=["bad"]).status_code == 400


# -- schema / streams --------------------------------------------------------------------------------------------
def test_schema_and_streams(client: TestClient) -> None:
    client.post("/collect/json/web", json=[{"_uid": "c1", "page": "/a", "tags": ["x", "y"]}])
    client.post("/collect/bulk/crm", content=_csv(3), headers=CSV)
    table = client.get("/api/schema/user").json()["data"]
    columns = {c["as"]: c for c in table["columns"]}
    assert table["by_fields"] == ["_uids", "email", "user_id", "external_id"]
    assert columns["email"]["is_by"] is True and columns["email"]["froms"] == ["crm"]
    assert columns["_uids"]["is_by"] is True and columns["tags"]["type"] == "[]string"
    assert columns["page"]["is_by"] is False and {"as", "is_by", "type", "froms"} <= set(columns["page"])
    assert set(client.get("/api/schema").json()["data"]) == {"user", "content"}
    assert client.get("/api/schema/nope").status_code == 404
    streams = {s["stream"]: s for s in client.get("/api/schema/_streams").json()["data"]}
    assert streams["crm"]["ct"] == 3 and streams["crm"]["last_msg_ts"].isdigit()
    fields = {f["name"]: f for f in streams["crm"]["fields"]}
    assert fields["email"]["card"] == 3 and len(fields["email"]["sample"]) == 3
    assert client.get("/v2/stream/names").json()["data"] == ["crm", "web"]
    listed = {s["slug"]: s for s in client.get("/v2/stream").json()["data"]}
    assert listed["web"]["count"] == 1 and listed["crm"]["avg_event_size"] > 0
    assert client.get("/v2/stream/crm").json()["data"]["count"] == 3
    r = client.get("/v2/stream/none")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "STREAM-NOTFOUND-014"
    v2_fields = {f["Field"]: f for f in client.get("/v2/schema/user/field").json()["data"]}
    assert v2_fields["email"]["IsIdentifier"] is True and v2_fields["email"]["IsPII"] is True
    assert client.get("/v2/schema/other/field").status_code == 404
