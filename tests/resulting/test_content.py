"""Content over real HTTP against the emulator: hook calls, the import operator (files, DataFrame, list; local and
Lytics-side rejections kept with reasons; retries; concurrency; limits) and the recommendations operator."""

from __future__ import annotations

import gzip
import json
import threading

import pytest
import requests
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_lytics.client.errors import LyticsAuthError
from airflow_provider_lytics.content.documents import SourceDocument, check_document
from airflow_provider_lytics.content.importer import MAX_CONCURRENCY, ContentImporter, ContentImportError
from airflow_provider_lytics.hooks.lytics import LyticsHook
from airflow_provider_lytics.operators.content import (
    LyticsContentImportOperator,
    LyticsContentRecommendationsOperator,
)

RUN = {"url": "https://blog.example/run-faster", "title": "Run faster", "text": "pace, sprint and 5k runs"}
BIKE = {"url": "https://blog.example/bike-fit", "title": "Bike fit", "text": "saddle height for cycling"}


@pytest.fixture
def hook(lytics_conn_env):
    hook = LyticsHook()
    yield hook
    hook.close()


def _admin(emulator, path: str, body=None) -> None:
    requests.post(f"{emulator.url}/_emulator/{path}", json=body, timeout=10).raise_for_status()


def _corpus_requests(emulator) -> dict:
    """Status -> count of the corpus route's requests the emulator served."""
    rows = requests.get(f"{emulator.url}/_emulator/stats", timeout=10).json()["requests"]
    return {r["status"]: r["count"] for r in rows if r["route"] == "/api/content/corpus"}


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_hook_round_trip_documents_topics_affinities_recommendations(hook):
    doc, created = hook.upsert_content_document(RUN)
    assert created and doc["topics"] == ["running"]
    again, created = hook.upsert_content_document({**RUN, "author": "Kim"})
    assert not created and again["id"] == doc["id"] and again["author"] == "Kim"
    hook.upsert_content_document(BIKE)
    assert [d["id"] for d in hook.get_content_documents(urls=["blog.example/run-faster/"])] == [doc["id"]]
    assert len(hook.get_content_documents(limit=1)) == 1
    assert {t["label"] for t in hook.list_content_topics()} == {"running", "cycling"}
    assert hook.get_content_topic("cycling")["documents"][0]["title"] == "Bike fit"
    hook.collect_json("web", [{"email": "kim@x.io", "url": RUN["url"]}, {"email": "lee@x.io", "page": "/"}])
    assert hook.topic_affinities("email", "kim@x.io") == {"running": 1.0}
    assert hook.topic_affinities("email", "lee@x.io") == {}
    assert hook.topic_affinities("email", "nobody@x.io") is None
    recs = hook.content_recommendations("email", "kim@x.io", visited=True, rank="affinity")
    assert [(r["title"], r["confidence"], r["visited"]) for r in recs] == [("Run faster", 1.0, True),
                                                                          ("Bike fit", 0.0, False)]  # fmt: skip
    assert [r["title"] for r in hook.content_recommendations("email", "kim@x.io", topics=["cycling"])] == ["Bike fit"]


def test_local_checks_say_what_is_wrong():
    assert check_document({"url": " https://a.example/x ", "title": 3}) == (
        {"url": "https://a.example/x", "title": "3"}, None)  # fmt: skip
    for value, reason in [
        (["x"], "not an object"),
        ({"title": "t"}, 'no "url"'),
        ({"url": "mailto:a@b.example"}, "not an http(s) address"),
        ({"url": "intranet/x"}, "no host name"),
        ({"url": "a.example/x", "nested": {"a": 1}}, "not a nested object"),
        ({"url": "a.example/x", "1st": "y"}, "must start with a letter"),
        ({"url": "a.example/x", "text": "t" * 262_145}, '"text" is 262145 characters'),
    ]:
        doc, error = check_document(value)
        assert doc is None and reason in error, (value, error)


def test_import_from_files_keeps_every_refused_document_with_its_reason(lytics_conn_env, emulator, tmp_path):
    ndjson = tmp_path / "a_docs.ndjson"
    ndjson.write_text(json.dumps(RUN) + "\n" + "{broken\n" + json.dumps({"title": "no url"}) + "\n"
                      + json.dumps({**BIKE, "og-image": "x.png"}) + "\n")  # fmt: skip
    csv_gz = tmp_path / "b_docs.csv.gz"
    csv_gz.write_bytes(gzip.compress(b"url,title,topics\nhttps://blog.example/trail,Trail day,running|outdoors\n"
                                     b"https://blog.example/short,too,many,values\n"))  # fmt: skip
    rejects = tmp_path / "out" / "rejects.ndjson"
    result = LyticsContentImportOperator(task_id="imp", path=str(tmp_path / "*_docs.*"), rejects_path=str(rejects),
                                         concurrency=2).execute({})  # fmt: skip
    counts = {k: result[k] for k in ("files", "read", "sent", "created", "updated", "rejected_here",
                                     "rejected_by_lytics")}  # fmt: skip
    assert counts == {"files": 2, "read": 6, "sent": 2, "created": 2, "updated": 0, "rejected_here": 3,
                      "rejected_by_lytics": 1}  # fmt: skip
    assert result["topics"] == {"running": 2, "outdoors": 1}
    assert result["rejects_path"] == str(rejects)
    refused = sorted(((r["source"].rsplit("/", 1)[-1], r["line"]), r["reason"]) for r in _lines(rejects))
    assert [where for where, _ in refused] == [("a_docs.ndjson", 2), ("a_docs.ndjson", 3), ("a_docs.ndjson", 4),
                                               ("b_docs.csv.gz", 3)]  # fmt: skip
    reasons = dict(refused)
    assert reasons[("a_docs.ndjson", 2)].startswith("not valid JSON")
    assert reasons[("a_docs.ndjson", 4)] == "Lytics refused it: attribute name 'og-image' is invalid: use a letter, " \
        "then letters, digits or '_'"  # fmt: skip
    assert "4 values for 3 columns" in reasons[("b_docs.csv.gz", 3)]
    trail = LyticsHook().get_content_documents(urls=["https://blog.example/trail"])[0]
    assert trail["topic_relevances"] == {"outdoors": 1.0, "running": 1.0}  # named topics + "trail"
    again = LyticsContentImportOperator(task_id="imp", path=str(ndjson), rejects_path=str(rejects)).execute({})
    assert (again["created"], again["updated"]) == (0, 1)  # upserts by url: a rerun converges


def test_import_from_a_dataframe_and_a_list(lytics_conn_env):
    import pandas as pd

    frame = pd.DataFrame([RUN, {**BIKE, "author": None}, {"url": None, "title": "nothing"}])
    result = LyticsContentImportOperator(task_id="df", dataframe=lambda: frame).execute({})
    assert (result["read"], result["sent"], result["rejected_here"], result["rejects_path"]) == (3, 2, 1, None)
    [sample] = result["rejected_samples"]
    assert (sample["source"], sample["line"], sample["reason"]) == ("dataframe", 3, 'document has no "url" (the page '
                                                                    "address identifies a document)")  # fmt: skip
    listed = LyticsContentImportOperator(task_id="l", documents=[RUN]).execute({})
    assert (listed["sent"], listed["updated"]) == (1, 1)


def test_import_retries_throttling_and_server_errors(lytics_conn_env, emulator):
    _admin(emulator, "faults", [{"route": "/api/content/corpus", "kind": "status", "status": 429, "retry_after": 0,
                                 "times": 3},
                                {"route": "/api/content/corpus", "kind": "status", "status": 503, "retry_after": 0,
                                 "times": 2}])  # fmt: skip
    docs = [{"url": f"https://blog.example/p{i}", "title": f"Post {i}"} for i in range(10)]
    result = LyticsContentImportOperator(task_id="r", documents=docs, concurrency=3).execute({})
    assert (result["sent"], result["rejected_by_lytics"]) == (10, 0)
    served = _corpus_requests(emulator)
    assert (served.get(429), served.get(503), served.get(201, 0) + served.get(200, 0)) == (3, 2, 10)
    assert len(LyticsHook().get_content_documents(limit=100)) == 10


def test_import_stops_on_a_failure_that_is_not_about_one_document(lytics_conn_env, emulator, monkeypatch, tmp_path):
    bad = {**lytics_conn_env, "password": "wrong-token"}
    monkeypatch.setenv("AIRFLOW_CONN_LYTICS_DEFAULT", json.dumps(bad))
    with pytest.raises(LyticsAuthError) as caught:  # itself, so the retry policy fails the task at once
        LyticsContentImportOperator(task_id="x", documents=[RUN, {"title": "no url"}],
                                    rejects_path=str(tmp_path / "r.ndjson"), concurrency=1).execute({})  # fmt: skip
    stopped, kept = caught.value.__notes__
    assert stopped.startswith("content import stopped at documents line 1: ") and "401" in stopped
    assert "wrong-token" not in str(caught.value) + stopped
    assert kept.startswith("refused documents so far are in")  # the local rejection is kept


def test_max_rejected_fails_after_writing_the_rejects(lytics_conn_env, tmp_path):
    rejects = tmp_path / "r.ndjson"
    with pytest.raises(AirflowException, match=r"2 document\(s\) were refused, more than max_rejected=1"):
        LyticsContentImportOperator(task_id="m", documents=[RUN, {"title": "a"}, {"url": "b"}], max_rejected=1,
                                    rejects_path=str(rejects)).execute({})  # fmt: skip
    assert len(_lines(rejects)) == 2
    assert LyticsHook().get_content_documents(urls=[RUN["url"]])  # the good one was sent


def test_concurrency_is_bounded_and_every_document_is_counted():
    active = peak = 0
    lock = threading.Lock()
    sent: list[str] = []

    class Sender:
        def upsert_content_document(self, document):
            nonlocal active, peak
            with lock:
                active += 1
                peak = max(peak, active)
            threading.Event().wait(0.005)
            with lock:
                active -= 1
                sent.append(document["url"])
            return {"topics": ["t"]}, True

    items = [SourceDocument("s", i, "", {"url": f"a.example/{i}"}) for i in range(1, 201)]
    counts = ContentImporter(Sender, concurrency=4, batch_size=8).run(items)
    assert (counts.read, counts.sent, counts.created) == (200, 200, 200) and sorted(sent) == sorted(
        d.document["url"] for d in items)  # fmt: skip
    assert 1 < peak <= 4
    with pytest.raises(ValueError, match="concurrency must be between 1 and 32"):
        ContentImporter(Sender, concurrency=0)
    with pytest.raises(ValueError, match=f"concurrency must be between 1 and {MAX_CONCURRENCY}"):
        LyticsContentImportOperator(task_id="x", documents=[], concurrency=MAX_CONCURRENCY + 1)


def test_an_unexpected_sender_failure_stops_the_import_with_counts():
    class Sender:
        def upsert_content_document(self, document):
            if document["url"].endswith("/3"):
                raise ConnectionError("network down")
            return {}, True

    items = [SourceDocument("s", i, "", {"url": f"a.example/{i}"}) for i in range(1, 6)]
    with pytest.raises(ContentImportError, match="stopped at s line 3: ConnectionError: network down") as caught:
        ContentImporter(Sender, concurrency=1, batch_size=1).run(items)
    assert caught.value.counts.sent == 2


def test_recommendations_operator_for_users_and_for_an_audience(lytics_conn_env, tmp_path):
    hook = LyticsHook()
    for doc in (RUN, BIKE, {"url": "https://blog.example/marathon", "title": "Marathon", "text": "run run"}):
        hook.upsert_content_document(doc)
    hook.collect_json("web", [{"email": "kim@x.io", "url": RUN["url"]}, {"email": "lee@x.io", "url": BIKE["url"]},
                              {"email": "max@x.io", "page": "/"}])  # fmt: skip
    out = tmp_path / "users.ndjson"
    summary = LyticsContentRecommendationsOperator(task_id="u", users=["kim@x.io", "max@x.io", "zed@x.io"], limit=1,
                                                   output_path=str(out)).execute({})  # fmt: skip
    assert summary == {"users": 3, "unknown_users": 1, "with_affinities": 1, "recommendations": 2,
                       "top_topics": {"running": 1}, "path": str(out)}  # fmt: skip
    kim, max_, zed = _lines(out)
    assert kim["affinities"] == {"running": 1.0} and kim["recommendations"][0]["title"] == "Marathon"
    assert max_["affinities"] == {} and max_["top_topic"] is None and len(max_["recommendations"]) == 1
    assert zed["recommendations"] == []
    hook.create_segment("FILTER EXISTS lytics_content ALIAS content_readers")
    hook.create_segment('FILTER topics CONTAINS "cycling" FROM content ALIAS bike_docs')
    summary = LyticsContentRecommendationsOperator(task_id="s", segment="content_readers", contentsegment="bike_docs",
                                                   output_path=str(tmp_path / "seg.ndjson")).execute({})  # fmt: skip
    assert (summary["users"], summary["top_topics"]) == (2, {"cycling": 1, "running": 1})
    by_user = {line["value"]: line for line in _lines(tmp_path / "seg.ndjson")}
    assert [r["title"] for r in by_user["kim@x.io"]["recommendations"]] == ["Bike fit"]
    assert by_user["lee@x.io"]["recommendations"] == []  # the only bike document is already read
    with pytest.raises(ValueError, match="exactly one of users"):
        LyticsContentRecommendationsOperator(task_id="x")
    with pytest.raises(ValueError, match="rank must be one of"):
        LyticsContentRecommendationsOperator(task_id="x", users=["a"], rank="random")
