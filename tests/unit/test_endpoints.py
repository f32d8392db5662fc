"""The endpoint catalogue: each Lytics call described once and bound to both hooks' transports."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from airflow_provider_lytics.client.catalogue import LyticsApi, catalogue
from airflow_provider_lytics.client.envelope import Envelope
from airflow_provider_lytics.client.errors import LyticsConfigError, LyticsNotFoundError
from airflow_provider_lytics.hooks.lytics import LyticsHook
from airflow_provider_lytics.hooks.lytics_async import LyticsAsyncHook


class Recorder(LyticsApi):
    """A hook-shaped object whose transport records each request and answers with ``answer``."""

    def __init__(self, answer: Any = None, error: Exception | None = None) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.answer, self.error = answer, error

    def request(self, method: str, path: str, **kwargs: Any) -> Envelope:
        self.sent.append((method, path, kwargs))
        if self.error is not None:
            raise self.error
        return Envelope(http_status=200, data=self.answer)


def test_no_endpoint_is_written_in_a_hook():
    for name in catalogue():
        assert name not in vars(LyticsHook), f"LyticsHook.{name} duplicates the catalogue's endpoint"
        assert name not in vars(LyticsAsyncHook), f"LyticsAsyncHook.{name} duplicates the catalogue's endpoint"


def test_only_creating_jobs_or_collections_and_job_commands_are_unsafe():
    unsafe = sorted(name for name, ep in catalogue().items() if not ep.safe)
    assert unsafe == ["create_job", "create_segment_collection", "job_command"]


def test_hook_methods_keep_the_builders_signature_and_docs():
    sync, asynchronous = LyticsHook("any"), LyticsAsyncHook("any")
    for name, ep in catalogue().items():
        expected = inspect.signature(ep.build)
        for hook in (sync, asynchronous):
            method = getattr(hook, name)
            assert list(inspect.signature(method).parameters) == list(expected.parameters), name
            assert method.__doc__ == ep.build.__doc__ and method.__name__ == name
        assert inspect.iscoroutinefunction(getattr(asynchronous, name)), name
        assert not inspect.iscoroutinefunction(getattr(sync, name)), name


def test_path_values_are_encoded_and_the_route_fixed_by_the_endpoint():
    api = Recorder({"id": "j"})
    assert api.get_job("a/b c") == {"id": "j"}
    assert api.sent[-1][:2] == ("GET", "/v2/job/a%2Fb%20c")
    api.job_logs()
    assert api.sent[-1][:2] == ("GET", "/v2/job/logs")
    api.lookup_entity("email", "x@y.z", table="user", meta=False)
    _, path, kwargs = api.sent[-1]
    assert path == "/api/entity/user/email/x%40y.z" and kwargs["params"]["meta"] == "false"


def test_bulk_host_and_retry_safety_reach_the_transport():
    api = Recorder({})
    api.bulk_upload("web", b"a\n1\n")
    assert api.sent[-1][2]["bulk"] is True and api.sent[-1][2]["safe"] is True
    api.bulk_upload("web", b"a\n1\n", use_bulk_host=False)
    assert "bulk" not in api.sent[-1][2]
    api.create_job("sftp_export", {"name": "x"})
    assert api.sent[-1][2]["safe"] is False


def test_arguments_are_checked_before_anything_is_sent():
    api = Recorder()
    with pytest.raises(LyticsConfigError, match="Unknown job command"):
        api.job_command("j", "explode")
    with pytest.raises(LyticsConfigError, match="delimiter"):
        api.bulk_upload("web", b"", delimiter="#")
    with pytest.raises(LyticsConfigError, match="limit"):
        api.scan_page("pro", limit=500)
    assert api.sent == []


async def test_async_hook_checks_arguments_without_a_connection():
    with pytest.raises(LyticsConfigError, match="Unknown job command"):
        await LyticsAsyncHook("no_such_connection").job_command("j", "explode")


def test_get_query_answers_none_for_a_missing_query_and_other_404s_raise():
    missing = LyticsNotFoundError(404, "no such query")
    assert Recorder(error=missing).get_query("nope") is None
    with pytest.raises(LyticsNotFoundError):
        Recorder(error=missing).get_job("nope")


def test_unbound_form_and_repr():
    api = Recorder([1])
    assert LyticsApi.list_jobs(api, show_all=True) == [1]
    assert api.sent[-1][2]["params"] == {"show_all": "true"}
    assert repr(LyticsApi.job_command) == "<Lytics endpoint job_command: POST /v2/job/{id}/{command} (unsafe)>"
