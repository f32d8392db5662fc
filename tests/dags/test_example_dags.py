"""The example DAGs: every file parses quickly, offline and without heavy imports, and all of them run end to end.

The parse check runs in a fresh interpreter (so nothing the test session imported hides a heavy import) with
outbound sockets and DNS patched to raise. The end-to-end test runs the demo runner (``scripts/demo.py``) in
its own process: the whole sandbox, every DAG through ``dag.test()`` in one Airflow process, summary as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
HEAVY = ("pandas", "pyarrow", "gnupg", "paramiko", "asyncssh")
#: Most provider modules all example DAG files may import together at parse time (the DAG processor re-parses
#: every file every 30 s by default). Deterministic stand-in for a parse-time budget; the wall-clock timing lives
#: in ``benchmarks/dag_parse.py``. 71 modules on 2026-12-03 (operators, their runners, templating); this fails when
#: one of them starts pulling in a subsystem (exports pipeline, PGP, SFTP client, emulator) at import.
MAX_PROVIDER_MODULES_AT_PARSE = 85

EXPECTED_DAGS = {
    "lytics_quickstart", "lytics_import_one_time", "lytics_import_continuous_sftp_pgp", "lytics_export_one_time",
    "lytics_export_scheduled", "lytics_export_consumer", "lytics_export_backfill_incremental",
    "lytics_job_as_code", "lytics_realtime_audience_setup", "lytics_enrichment_round_trip",
    "lytics_go_template_alerts", "lytics_pgp_sftp_round_trip", "lytics_query_as_code",
    "lytics_metrics", "lytics_event_export", "lytics_content",
}  # fmt: skip
AIRFLOW3_ONLY = {"lytics_audience_changed"}  # asset watchers

PARSE_SCRIPT = textwrap.dedent(
    """
    import json, socket, sys, time
    from pathlib import Path

    def refuse(*args, **kwargs):
        raise RuntimeError(f"network call while parsing DAGs: {args[1:] if len(args) > 1 else args}")

    _connect = socket.socket.connect
    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            refuse(sock, address)
        return _connect(sock, address)
    socket.socket.connect = connect
    socket.socket.connect_ex = connect
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    import airflow  # noqa: F401  (Airflow's own import time is not the DAGs' parse time)
    from airflow.providers.common.compat.sdk import DAG
    try:
        from airflow.sdk.definitions._internal.contextmanager import DagContext
    except ImportError:
        from airflow.models.dag import DagContext

    heavy = sys.argv[2].split(",")
    before = sorted(m for m in heavy if m in sys.modules)
    report = {"airflow": airflow.__version__, "heavy_before": before, "files": {}}
    import importlib.util
    for path in sorted(Path(sys.argv[1]).glob("*.py")):
        DagContext.autoregistered_dags.clear()
        started = time.perf_counter()
        spec = importlib.util.spec_from_file_location(f"parse_{path.stem}", path)
        DagContext.current_autoregister_module_name = spec.name  # as the DAG processor does
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
            error = None
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - started
        dags = {v.dag_id for v in vars(module).values() if isinstance(v, DAG)}
        dags |= {d.dag_id for d, _ in DagContext.autoregistered_dags}
        report["files"][path.name] = {"seconds": seconds, "error": error, "dags": sorted(dags)}
    report["heavy_after"] = sorted(m for m in heavy if m in sys.modules)
    report["provider_modules"] = sorted(m for m in sys.modules if m.split(".")[0] == "airflow_provider_lytics")
    print(json.dumps(report))
    """
)


def _airflow_env(home: Path) -> dict[str, str]:
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS), "PYTHONPATH": str(ROOT)}  # fmt: skip
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    return env


@pytest.fixture(scope="module")
def parse_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("airflow_home")
    done = subprocess.run([sys.executable, "-c", PARSE_SCRIPT, str(DAGS), ",".join(HEAVY)], env=_airflow_env(home),
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_dag_file_parses_without_errors_or_network(parse_report: dict) -> None:
    errors = {name: f["error"] for name, f in parse_report["files"].items() if f["error"]}
    assert not errors, errors
    found = {dag_id for f in parse_report["files"].values() for dag_id in f["dags"]}
    expected = EXPECTED_DAGS | (AIRFLOW3_ONLY if parse_report["airflow"].startswith("3.") else set())
    assert found == expected


def test_dag_files_import_a_bounded_set_of_provider_modules(parse_report: dict) -> None:
    modules = parse_report["provider_modules"]
    assert modules, "the parse report lists no provider module: the check itself is broken"
    assert len(modules) <= MAX_PROVIDER_MODULES_AT_PARSE, modules
    assert not [m for m in modules if m.startswith("airflow_provider_lytics.emulator")], modules


def test_parsing_imports_nothing_heavy(parse_report: dict) -> None:
    assert parse_report["heavy_after"] == parse_report["heavy_before"] == [], parse_report


def test_parse_check_really_refuses_network(tmp_path: Path) -> None:
    """The guard itself: a DAG file that opens a socket at import is reported, not silently allowed."""
    (tmp_path / "bad_dag.py").write_text("import socket\nsocket.create_connection(('127.0.0.1', 9))\n")
    done = subprocess.run([sys.executable, "-c", PARSE_SCRIPT, str(tmp_path), ",".join(HEAVY)],
                          env=_airflow_env(tmp_path / "home"), capture_output=True, text=True, timeout=300,
                          check=False)  # fmt: skip
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "network call while parsing DAGs" in report["files"]["bad_dag.py"]["error"]


def _airflow_major() -> int:
    import airflow

    return int(airflow.__version__.split(".")[0])


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(_airflow_major() < 3, reason="the demo runs on Airflow 3 (dag.test with in-line triggers)")
def test_demo_runs_every_example_dag_end_to_end(tmp_path: Path) -> None:
    before = set(Path(tempfile.gettempdir()).glob("lytics-sandbox-*"))
    summary = tmp_path / "summary.json"
    outputs = tmp_path / "outputs"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--users", "1000", "--rows", "1000", "--quiet",
         "--outputs", str(outputs), "--airflow-home", str(tmp_path / "home"), "--json", str(summary)],
        env=_airflow_env(tmp_path / "home"), capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    report = json.loads(summary.read_text())
    runs: dict[str, list[dict]] = {}
    for run in report["runs"]:
        runs.setdefault(run["dag_id"], []).append(run)
    assert set(runs) == EXPECTED_DAGS | AIRFLOW3_ONLY
    assert all(r["status"] == "success" for rs in runs.values() for r in rs)
    watcher = runs["lytics_audience_changed"][0]  # its trigger fired on the members the demo added
    assert watcher["rows_in"] in (3, 6) and "watcher fired on" in watcher["note"]  # 6: a slow first snapshot

    first, second = runs["lytics_import_continuous_sftp_pgp"]
    assert first["files"] == second["files"] == 1  # the second run picks up only the new file
    assert first["rows_in"] == second["rows_in"] == 300

    run1, run2 = runs["lytics_export_scheduled"]
    assert run1["rows_out"] > 0 and 0 < run2["rows_out"] < run1["rows_out"]  # only the changes
    backfill, incremental = runs["lytics_export_backfill_incremental"]
    assert backfill["xcoms"]["export"]["run_kind"] == "backfill"
    assert incremental["xcoms"]["export"]["run_kind"] == "incremental" and incremental["rows_out"] == 15

    enrich1, enrich2 = runs["lytics_enrichment_round_trip"]
    assert enrich1["rows_out"] == 20 and enrich2["rows_out"] == 0  # still fresh: nothing sent again

    trip = runs["lytics_pgp_sftp_round_trip"][0]
    assert trip["rows_in"] == 1000 and trip["rows_out"] > 0 and trip["files"] == 2
    assert f"decrypts {trip['rows_out']} rows" in trip["note"]
    assert runs["lytics_quickstart"][0]["rows_in"] == 1000
    assert runs["lytics_realtime_audience_setup"][0]["rows_out"] > 0
    alerts = runs["lytics_go_template_alerts"][0]
    assert alerts["rows_out"] == alerts["rows_in"] > 0
    lql = runs["lytics_query_as_code"][0]  # the query turned the imported rows into profile fields
    assert lql["rows_in"] == 60 and lql["xcoms"]["verify_profile"]["orders"] == 3
    metrics = runs["lytics_metrics"][0]  # what was pushed is read back; the audience has a size history
    assert metrics["rows_in"] == 7 and metrics["xcoms"]["check_read_back"]["pushed_points"] == 6
    assert metrics["xcoms"]["size_history"]["points"] >= 1
    content = runs["lytics_content"][0]  # documents in, affinities on profiles, an audience on one, export
    assert content["xcoms"]["import_content"]["sent"] == 11 and content["xcoms"]["import_content"]["rejected_here"] == 1
    assert content["rows_out"] == content["xcoms"]["ensure_audiences"]["fans_size"] > 0

    assert set(Path(tempfile.gettempdir()).glob("lytics-sandbox-*")) <= before  # nothing left behind
    leftovers = [p for p in outputs.rglob("*") if p.is_file() and b"PRIVATE KEY" in p.read_bytes()[:1_000_000]]
    assert not leftovers
