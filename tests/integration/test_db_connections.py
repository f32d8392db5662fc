"""Connections stored in the metadata database (``airflow connections add``, the UI), not ``AIRFLOW_CONN_*``.

1. The UI's Test button for ``lytics`` and ``pgp`` connections, through Airflow 3's real REST routes. The
   connection list's Test button posts the stored connection back as the UI holds it: secrets as the masked
   ``***`` and ``port: Number(stored port)``, which is 0 for an empty port. ``/api/v2/connections/test`` refuses
   that as "differs from the stored connection" unless the stored port matches, which is why both forms show
   the Port field (see ``airflow_provider_lytics/forms.py``). Connections are created with
   ``POST /api/v2/connections`` as the Add form sends them, read back with ``GET`` and tested with exactly the
   body the Test button builds, against the real FastAPI app and a migrated metadata database.
2. A deferred task's trigger run in line, as ``airflow dags test`` / ``dag.test()`` run it
   (``airflow.sdk.definitions.dag._run_inline_trigger``), resolves a connection that exists only in the DB.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from tests.integration.airflow_cli import BIN

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from fastapi.testclient import TestClient
    from airflow.api_fastapi.app import create_app

    connections = json.loads(sys.argv[1])
    client = TestClient(create_app("core"))
    token = client.get("/auth/token").json()["access_token"]
    client.headers["Authorization"] = f"Bearer {token}"
    results = {}
    for body in connections:
        created = client.post("/api/v2/connections", json=body)
        assert created.status_code == 201, created.text
        stored = client.get(f"/api/v2/connections/{body['connection_id']}").json()
        # What the connection list's Test button sends (Airflow 3.3 UI): the stored values, port as a number.
        test_body = {
            "conn_type": stored["conn_type"], "connection_id": stored["connection_id"],
            "description": stored["description"] or "", "extra": stored["extra"] or "{}",
            "host": stored["host"] or "", "login": stored["login"] or "", "password": stored["password"] or "",
            "port": int(stored["port"] or 0), "schema": stored["schema"] or "",
        }
        answer = client.post("/api/v2/connections/test", json=test_body)
        results[body["connection_id"]] = {"http": answer.status_code, "body": answer.json(),
                                          "sent_password": test_body["password"]}
    print("RESULTS " + json.dumps(results))
    """
)


def _airflow3() -> bool:
    import airflow

    return airflow.__version__.startswith("3.")


@pytest.fixture(scope="module")
def pgp_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    if shutil.which("gpg") is None:
        pytest.skip("needs the gpg binary")
    from tests.integration.test_pgp import PASSPHRASE, make_test_keys

    made = make_test_keys(tmp_path_factory.getbasetemp() / "pgp-test-keys")  # cached: shared with the pgp tests
    key = made["rsa"]
    yield {"public": key.public, "private": key.private, "passphrase": PASSPHRASE}
    subprocess.run(["gpgconf", "--homedir", str(made.cli_home), "--kill", "all"], capture_output=True, check=False)


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A migrated Airflow home with no connection in the environment (the tests store theirs in the DB)."""
    home = tmp_path_factory.mktemp("db-connections") / "home"
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    migrate = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True,
                             timeout=900, check=False)  # fmt: skip
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    return env


INLINE_TRIGGER = textwrap.dedent(
    """
    import json, sys, time, uuid
    from airflow.sdk.api.datamodels._generated import TaskInstance
    from airflow.sdk.definitions.dag import _run_inline_trigger  # what dag.test() calls for a deferred task
    from airflow_provider_lytics.triggers.jobs import LyticsJobTrigger

    trigger = LyticsJobTrigger(job_id=sys.argv[2], watermark=0, end_time=time.time() + 120,
                               lytics_conn_id=sys.argv[1], poll_interval=0.2)
    ti = TaskInstance(id=uuid.uuid4(), task_id="t", dag_id="d", run_id="r", try_number=1, map_index=-1,
                      dag_version_id=uuid.uuid4())
    print("EVENT " + json.dumps(_run_inline_trigger(trigger, ti).payload))
    """
)


@pytest.mark.skipif(not _airflow3(), reason="dag.test() runs triggers in line on Airflow 3 only")
@pytest.mark.timeout(2400)  # a hang guard; the module fixture migrates a DB first
def test_inline_trigger_resolves_a_connection_stored_in_the_db(airflow_env, served_emulator, monkeypatch):
    conn = {"conn_type": "lytics", "host": served_emulator.url, "password": served_emulator.token}
    add = [str(BIN / "airflow"), "connections", "add", "lytics_in_db", "--conn-json", json.dumps(conn)]
    added = subprocess.run(add, env=airflow_env, capture_output=True, text=True, timeout=900, check=False)
    assert added.returncode == 0, added.stderr[-2000:]
    monkeypatch.setenv("AIRFLOW_CONN_LYTICS_FOR_SETUP", json.dumps(conn))
    from airflow_provider_lytics.hooks.lytics import LyticsHook

    job = LyticsHook("lytics_for_setup").create_job(
        "lytics_simple_csv_export",
        {"name": "in-line trigger check", "config": {"segment_id": "demo_high_value", "continuous": False}},
    )
    done = subprocess.run([sys.executable, "-c", INLINE_TRIGGER, "lytics_in_db", job["id"]], env=airflow_env,
                          capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    event = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("EVENT "))[6:])
    # Before the fix: {"status": "error", "message": "AirflowNotFoundException: The conn_id `lytics_in_db` ..."}
    assert event["status"] == "success", event
    assert served_emulator.token not in out


@pytest.mark.skipif(not _airflow3(), reason="the REST API v2 and its Test route are Airflow 3's")
@pytest.mark.timeout(2400)  # a hang guard; the module fixture migrates a DB first
def test_test_button_passes_for_lytics_and_pgp_and_explains_failures(airflow_env, served_emulator, pgp_pair):
    port = int(served_emulator.url.rsplit(":", 1)[1])
    lytics = {"conn_type": "lytics", "host": served_emulator.url, "port": port, "password": served_emulator.token}
    pgp_extra = json.dumps({"public_key": pgp_pair["public"], "private_key": pgp_pair["private"]})
    connections = [
        {"connection_id": "lytics_ok", **lytics},
        {"connection_id": "lytics_bad_token", **lytics, "password": "not-the-token"},
        # A host without a scheme gets https://, which a plain-HTTP server drops: the message must say so.
        {"connection_id": "lytics_no_scheme", **lytics, "host": "127.0.0.1"},
        {"connection_id": "pgp_ok", "conn_type": "pgp", "port": 0, "password": pgp_pair["passphrase"],
         "extra": pgp_extra},
        # The Airflow behaviour the Port field works around: an empty port is refused before our hook runs.
        {"connection_id": "lytics_empty_port", **{k: v for k, v in lytics.items() if k != "port"}},
    ]  # fmt: skip
    env = dict(airflow_env)
    env.update({"AIRFLOW__CORE__TEST_CONNECTION": "Enabled", "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"})  # fmt: skip
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(connections)], env=env, capture_output=True,
                          text=True, timeout=900, check=False)  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    results = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULTS "))[8:])
    assert served_emulator.token not in out and pgp_pair["passphrase"] not in out

    ok = results["lytics_ok"]
    assert ok["sent_password"] == "***"  # the button sends the masked secret: the stored one is used
    assert ok["http"] == 200 and ok["body"]["status"] is True, ok
    assert ok["body"]["message"].startswith(f"Connected to Lytics at {served_emulator.url}")

    bad = results["lytics_bad_token"]["body"]
    assert bad["status"] is False
    assert f"Lytics at {served_emulator.url}/api/account refused the API token (HTTP 401)" in bad["message"]
    assert "Password field" in bad["message"] and "not-the-token" not in bad["message"]

    no_scheme = results["lytics_no_scheme"]["body"]
    assert no_scheme["status"] is False
    assert f"Could not reach Lytics at https://127.0.0.1:{port}/api/account" in no_scheme["message"]
    assert f"set Host to http://127.0.0.1:{port}" in no_scheme["message"]

    pgp = results["pgp_ok"]
    assert pgp["http"] == 200 and pgp["body"]["status"] is True, pgp
    assert "public and private keys pair" in pgp["body"]["message"]

    empty = results["lytics_empty_port"]
    assert empty["http"] == 400 and "differs from the stored connection" in json.dumps(empty["body"])
