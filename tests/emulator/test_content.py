"""The emulator's content API over real HTTP: corpus upserts, documents, topics, affinities on profiles,
recommendations and content collections (``FROM content``), on a frozen emulator clock."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_lytics.emulator.content_docs import hashed_url, normalise_url

MARATHON = {
    "url": "https://www.Stride.example/blog/first-marathon/?utm_source=mail#top",
    "title": "First marathon plan",
    "text": "Run a marathon: long runs, a 10k tune-up, pace work and protein.",
}
GRAVEL = {"url": "stride.example/blog/gravel", "title": "Gravel bikes", "description": "Cycling on gravel roads"}
HIKE = {"url": "https://stride.example/blog/alps", "title": "Hiking the Alps", "text": "A mountain hike with a tent"}


class Api:
    """Thin client: ``call(method, path, **requests kwargs)`` -> (HTTP status, JSON body)."""

    def __init__(self, server) -> None:
        self.server = server
        self.session = requests.Session()
        self.session.headers["Authorization"] = server.token

    def call(self, method: str, path: str, **kwargs) -> tuple[int, dict]:
        resp = self.session.request(method, self.server.url + path, timeout=30, **kwargs)
        return resp.status_code, resp.json()

    def data(self, method: str, path: str, **kwargs):
        status, body = self.call(method, path, **kwargs)
        assert status < 300, body
        return body["data"]

    def doc(self, body: dict) -> dict:
        return self.data("POST", "/api/content/corpus", json=body)

    def views(self, *events: dict) -> None:
        assert self.data("POST", "/collect/json/web", json=list(events))["message_count"] == len(events)

    def entity(self, email: str) -> dict:
        return self.data("GET", f"/api/entity/user/email/{email}")

    def segment(self, ql: str) -> dict:
        return self.data("POST", "/api/segment", data=ql, headers={"Content-Type": "text/plain"})


@pytest.fixture
def api(emulator):
    emulator.backend.clock.set("2026-05-01T10:00:00Z")
    emulator.backend.clock.freeze(True)
    client = Api(emulator)
    yield client
    client.session.close()
    emulator.backend.clock.reset()


def _assert_v1_error(status: int, body: dict, expected: int, text: str) -> None:
    assert status == expected and body["status"] == expected and body["data"] is None and body["request_id"]
    assert text in body["message"], body["message"]


def test_urls_normalise_to_one_hashed_id():
    assert normalise_url("HTTPS://WWW.Example.COM:443/A/b/?q=1#f") == "www.example.com/A/b"
    assert normalise_url("example.com:8080/x/") == "example.com:8080/x"
    assert (
        hashed_url("http://example.com/x?utm=1") == hashed_url("example.com/x/") == hashed_url("https://example.com/x")
    )
    assert hashed_url("example.com/x") != hashed_url("example.com/y")
    assert hashed_url("example.com/x").isdigit() and int(hashed_url("example.com/x")) < 2**64


def test_corpus_upsert_classifies_and_stamps_with_the_emulator_clock(api, emulator):
    status, body = api.call("POST", "/api/content/corpus", json=MARATHON)
    assert status == 201 and body["status"] == 201
    doc = body["data"]
    assert doc["id"] == hashed_url(MARATHON["url"]) and doc["url"] == "www.stride.example/blog/first-marathon"
    assert doc["topic_relevances"] == {"running": 1.0, "nutrition": 0.333}  # run x3 (+marathon, 10k, pace); protein
    assert doc["topics"] == ["running", "nutrition"]
    assert (doc["created"], doc["updated"]) == ("2026-05-01T10:00:00Z", "2026-05-01T10:00:00Z")
    assert doc["sitename"] == "www.stride.example" and doc["path"] == ["blog", "first-marathon"]
    assert "text" not in doc
    emulator.backend.clock.advance(3600)
    change = {"id": doc["id"], "title": "Travel to a destination race", "topics": ["Events"]}
    status, body = api.call("POST", "/api/content/corpus", json=change)
    assert status == 200
    updated = body["data"]
    assert (updated["created"], updated["updated"]) == ("2026-05-01T10:00:00Z", "2026-05-01T11:00:00Z")
    assert updated["topic_relevances"] == {"events": 1.0, "running": 1.0, "nutrition": 0.333, "travel": 0.667}
    assert api.data("GET", "/api/content/doc", params={"ids": doc["id"]})["urls"] == [updated]


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ([MARATHON], 400, "one document per request"),
        ({"title": "no address"}, 400, 'needs "url"'),
        ({"url": "ftp://files.example/x"}, 400, "use http or https"),
        ({"url": "mailto:news@files.example"}, 400, "has scheme 'mailto'"),
        ({"url": "localhost/x"}, 400, "has no host name"),
        ({"url": "https://a.example/has space"}, 400, "whitespace"),
        ({"id": "12345"}, 404, "no document with id '12345'"),
        ({"url": "https://a.example/x", "id": "1"}, 400, "is not the hashed id"),
        ({"url": "https://a.example/x", "og-image": "i.png"}, 400, "attribute name 'og-image' is invalid"),
        ({"url": "https://a.example/x", "meta": {"k": "v"}}, 400, 'attribute "meta" must be'),
        ({"url": "https://a.example/x", "title": True}, 400, '"title" must be a string'),
        ({"url": "https://a.example/x", "text": "x" * 300_000}, 400, '"text" is longer than'),
    ],
)
def test_corpus_refuses_bad_documents_with_the_v1_error_shape(api, body, status, text):
    _assert_v1_error(*api.call("POST", "/api/content/corpus", json=body), status, text)
    assert api.data("GET", "/api/content/doc")["total"] == 0


def test_corpus_refuses_a_body_that_is_not_json(api):
    _assert_v1_error(*api.call("POST", "/api/content/corpus", data=b"{nope"), 400, "one JSON document")


def test_documents_by_url_id_or_most_recent(api, emulator):
    marathon = api.doc(MARATHON)
    emulator.backend.clock.advance(60)
    gravel = api.doc(GRAVEL)
    emulator.backend.clock.advance(60)
    hike = api.doc(HIKE)
    by_url = api.data(
        "GET", "/api/content/doc", params={"urls": "http://stride.example/blog/gravel/,nowhere.example/x"}
    )
    assert by_url == {"total": 1, "urls": [gravel]}
    both = api.data("GET", "/api/content/doc", params=[("ids", marathon["id"]), ("ids", hike["id"])])
    assert [d["id"] for d in both["urls"]] == [marathon["id"], hike["id"]]
    recent = api.data("GET", "/api/content/doc", params={"limit": 2})
    assert [d["id"] for d in recent["urls"]] == [hike["id"], gravel["id"]]
    _assert_v1_error(*api.call("GET", "/api/content/doc", params={"limit": "x"}), 400, "'limit' must be an integer")


def test_classify_is_a_dry_run(api):
    result = api.data("GET", "/api/content/doc/classify", params={"text": "bike and saddle", "url": "x.example/a"})
    assert result == {"url": "x.example/a", "topics": ["cycling"], "topic_relevances": {"cycling": 0.667}}
    assert api.data("POST", "/api/content/doc/classify", data=b"Trip to the beach")["topics"] == ["travel"]
    assert api.data("GET", "/api/content/doc")["total"] == 0
    _assert_v1_error(*api.call("GET", "/api/content/doc/classify"), 400, "send text=")


@pytest.mark.parametrize("documents_first", [True, False])
def test_page_views_give_profiles_topic_affinities_in_either_order(api, documents_first):
    def documents() -> None:
        for body in (MARATHON, GRAVEL, HIKE):
            api.doc(body)

    if documents_first:
        documents()
    api.views({"email": "ann@x.io", "url": "https://www.stride.example/blog/first-marathon?ref=nl"},
              {"email": "ann@x.io", "url": "http://stride.example/blog/gravel"},
              {"email": "bob@x.io", "url": "stride.example/blog/gravel/"},
              {"email": "cy@x.io", "url": "https://stride.example/unknown-page"},
              {"email": "dee@x.io", "url": "not a url at all"})  # fmt: skip
    if not documents_first:
        documents()
    ann = api.entity("ann@x.io")
    assert ann["hashedurls"] == [hashed_url(MARATHON["url"]), hashed_url(GRAVEL["url"])]
    assert ann["lytics_content"] == {"cycling": "0.5", "running": "0.5", "nutrition": "0.1665"}  # rendered as text
    assert api.entity("bob@x.io")["lytics_content"] == {"cycling": "1"}
    cy = api.entity("cy@x.io")
    assert cy["hashedurls"] == [hashed_url("stride.example/unknown-page")] and "lytics_content" not in cy
    assert "hashedurls" not in api.entity("dee@x.io")


def test_affinities_follow_identity_merges_and_reclassification(api):
    api.doc(MARATHON)
    api.doc(HIKE)
    api.views({"_uid": "cookie-1", "url": MARATHON["url"]}, {"email": "eve@x.io", "url": HIKE["url"]})
    assert api.entity("eve@x.io")["lytics_content"] == {"outdoors": "1"}  # hiking, mountain, hike, tent
    api.views({"_uid": "cookie-1", "email": "eve@x.io"})  # the same person: both fragments merge
    merged = api.entity("eve@x.io")
    assert sorted(merged["hashedurls"]) == sorted([hashed_url(MARATHON["url"]), hashed_url(HIKE["url"])])
    api.views({"email": "eve@x.io", "page": "/home"})  # any later event brings the merged profile up to date
    assert api.entity("eve@x.io")["lytics_content"] == {"outdoors": "0.5", "running": "0.5", "nutrition": "0.1665"}
    api.doc({"url": HIKE["url"], "title": "The Alps", "text": "A walk with a tent"})  # now only "tent" counts
    assert api.entity("eve@x.io")["lytics_content"]["outdoors"] == "0.1665"  # the document changed: so did the score


def test_an_audience_on_an_affinity_and_its_size(api):
    api.doc(MARATHON)
    api.doc(GRAVEL)
    api.views({"email": "ann@x.io", "url": MARATHON["url"]}, {"email": "ann@x.io", "url": GRAVEL["url"]},
              {"email": "bob@x.io", "url": GRAVEL["url"]}, {"email": "cy@x.io", "url": MARATHON["url"]})  # fmt: skip
    seg = api.segment("FILTER lytics_content.cycling >= 0.5 FROM user ALIAS cycling_fans")
    assert api.data("GET", "/api/segment/cycling_fans/sizes")["size"] == 2
    rows = api.data("GET", "/api/segment/cycling_fans/scan", params={"fields": "email,lytics_content"})
    assert sorted(r["email"] for r in rows) == ["ann@x.io", "bob@x.io"]
    strong = api.call("POST", "/api/segment/scan", data="FILTER lytics_content.cycling > 0.9",
                      headers={"Content-Type": "text/plain"})[1]  # fmt: skip
    assert [r["email"] for r in strong["data"]] == ["bob@x.io"]
    assert "cycling_fans" in api.entity("bob@x.io")["segments"] and seg["table"] == "user"


def test_content_collections_scan_through_the_segment_scan_api(api, emulator):
    for i, body in enumerate((MARATHON, GRAVEL, HIKE, {"url": "stride.example/blog/5k", "title": "A 5k run"})):
        emulator.backend.clock.advance(60 * i)
        api.doc(body)
    seg = api.segment('FILTER topics CONTAINS "running" FROM content ALIAS running_docs')
    assert seg["table"] == "content"
    assert api.data("GET", "/api/segment/running_docs/sizes")["size"] == 2
    status, first = api.call("GET", "/api/segment/running_docs/scan", params={"limit": 1, "fields": "url,topics"})
    assert status == 200 and first["total"] == 2 and first["_next"]
    assert first["data"] == [{"url": "www.stride.example/blog/first-marathon", "topics": ["running", "nutrition"]}]
    second = api.call("GET", "/api/segment/running_docs/scan", params={"start": first["_next"]})[1]
    assert [d["url"] for d in second["data"]] == ["stride.example/blog/5k"] and second["_next"] == ""
    adhoc = api.call("POST", "/api/segment/scan", params={"sortfield": "title", "sortorder": "desc"},
                     data="FILTER topic_relevances.running > 0 FROM content",
                     headers={"Content-Type": "text/plain"})[1]  # fmt: skip
    assert [d["title"] for d in adhoc["data"]] == ["First marathon plan", "A 5k run"]
    newest = api.call("POST", "/api/segment/scan", params={"recent": "true"}, data="FILTER * FROM content",
                      headers={"Content-Type": "text/plain"})[1]  # fmt: skip
    assert newest["data"][0]["title"] == "A 5k run" and newest["total"] == 4
    assert not [s for s in api.entity("x@x.io").get("segments", []) if s == "running_docs"]


def test_topics_and_one_topic(api):
    api.doc(MARATHON)
    api.doc(GRAVEL)
    api.doc({"url": "stride.example/blog/bike-fuel", "title": "Bike nutrition", "text": "cycling snacks"})
    api.views({"email": "ann@x.io", "url": GRAVEL["url"]}, {"email": "bob@x.io", "url": MARATHON["url"]})
    topics = api.data("GET", "/api/content/topic")
    assert topics[0] == {"label": "cycling", "doc_count": 2, "avg_relevance": 1.0, "user_count": 1}
    assert {t["label"]: t["doc_count"] for t in topics} == {"cycling": 2, "nutrition": 2, "running": 1}
    assert len(api.data("GET", "/api/content/topic", params={"limit": 1})) == 1
    nutrition = api.data("GET", "/api/content/topic/nutrition")
    assert nutrition["doc_count"] == 2 and nutrition["user_count"] == 1
    assert [d["title"] for d in nutrition["documents"]] == ["Bike nutrition", "First marathon plan"]
    _assert_v1_error(*api.call("GET", "/api/content/topic/knitting"), 404, "topic 'knitting' not found")


def test_recommendations_rank_filter_and_refuse(api, emulator):
    for body in (MARATHON, GRAVEL, HIKE, {"url": "stride.example/blog/5k", "title": "A 5k run", "text": "sprint"}):
        emulator.backend.clock.advance(60)
        api.doc(body)
    api.views({"email": "ann@x.io", "url": MARATHON["url"]}, {"email": "bob@x.io", "url": "stride.example/blog/5k"},
              {"email": "cy@x.io", "url": "stride.example/blog/5k"}, {"email": "cy@x.io", "url": GRAVEL["url"]},
              {"email": "dee@x.io", "url": GRAVEL["url"]})  # fmt: skip
    path = "/api/content/recommend/user/email/ann@x.io"
    recs = api.data("GET", path)
    assert [(r["title"], r["confidence"], r["visited"]) for r in recs] == [
        ("A 5k run", 1.0, False), ("Hiking the Alps", 0.0, False), ("Gravel bikes", 0.0, False)]  # fmt: skip
    with_seen = api.data("GET", path, params={"visited": "true", "limit": 2})
    assert [(r["title"], r["visited"]) for r in with_seen] == [("A 5k run", False), ("First marathon plan", True)]
    assert [r["title"] for r in api.data("GET", path, params={"topics": "outdoors,cycling"})] == [
        "Hiking the Alps", "Gravel bikes"]  # fmt: skip
    bob = "/api/content/recommend/user/email/bob@x.io"  # running 1.0: the marathon plan fits him best
    assert [(r["title"], r["confidence"]) for r in api.data("GET", bob)] == [
        ("First marathon plan", 0.7502), ("Hiking the Alps", 0.0), ("Gravel bikes", 0.0)]  # fmt: skip
    assert [r["title"] for r in api.data("GET", bob, params={"rank": "recent"})] == [
        "Hiking the Alps", "Gravel bikes", "First marathon plan"]  # fmt: skip
    assert [r["title"] for r in api.data("GET", bob, params={"rank": "popular"})] == [
        "Gravel bikes", "First marathon plan", "Hiking the Alps"]  # 2 readers, 1, none  # fmt: skip
    api.segment('FILTER topics CONTAINS "cycling" FROM content ALIAS cycling_docs')
    assert [r["title"] for r in api.data("GET", path, params={"contentsegment": "cycling_docs"})] == ["Gravel bikes"]
    _assert_v1_error(*api.call("GET", path, params={"rank": "random"}), 400, "rank 'random' is not supported")
    api.segment("FILTER EXISTS email ALIAS known")
    _assert_v1_error(*api.call("GET", path, params={"contentsegment": "known"}), 400, "not a content collection")
    _assert_v1_error(*api.call("GET", path, params={"contentsegment": "nope"}), 404, "content segment 'nope'")
    _assert_v1_error(*api.call("GET", "/api/content/recommend/user/email/zed@x.io"), 404, "no user profile")


def test_documents_survive_a_restart_and_a_reset_forgets_them(tmp_path):
    from airflow_provider_lytics.emulator.persistence import StateDB
    from airflow_provider_lytics.emulator.store import ProfileStore

    path = str(tmp_path / "state.db")
    db = StateDB(path)
    store = ProfileStore(db, wall_clock=lambda: 1_777_000_000.0)
    doc, created = store.content.upsert(GRAVEL)
    store.ingest("web", [{"email": "a@x.io", "url": GRAVEL["url"]}])
    db.close()
    db = StateDB(path)
    store = ProfileStore(db, wall_clock=lambda: 1_777_000_000.0)
    assert created and store.content.documents(ids=[doc["id"]]) == [doc]
    assert store.lookup("email", "a@x.io")["lytics_content"] == {"cycling": 1.0}
    store.content.upsert({"id": doc["id"], "title": "Gravel", "description": "Roads"})  # visitors found again
    assert store.lookup("email", "a@x.io")["lytics_content"] == {"cycling": 0.667}
    store.reset()
    assert store.content.count() == 0
    db.close()


def test_page_views_of_a_stream_that_reaches_no_profile_score_nothing():
    from airflow_provider_lytics.emulator.persistence import StateDB
    from airflow_provider_lytics.emulator.store import ProfileStore

    store = ProfileStore(StateDB(None), unmapped="raw")
    store.content.upsert(GRAVEL)
    store.ingest("web", [{"email": "a@x.io", "url": GRAVEL["url"]}])
    assert store.lookup("email", "a@x.io") is None  # raw mode: unmapped rows stay raw events
    store.queries.upsert("SELECT email AS email, url AS url FROM web INTO user BY email ALIAS web_q")
    store.ingest("web", [{"email": "b@x.io", "url": GRAVEL["url"]}])
    assert store.lookup("email", "b@x.io")["lytics_content"] == {"cycling": 1.0}  # mapped by LQL: scored
