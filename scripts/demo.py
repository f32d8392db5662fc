"""Run every example DAG for real against an offline Lytics sandbox, then print what each one did.

One process: the sandbox (Lytics API + bulk host, managed SFTP, enrichment vendor, webhook receiver, PGP keys;
see ``airflow_provider_lytics/emulator/sandbox.py``) runs in background threads on free loopback ports, and
Airflow runs each DAG with ``dag.test()`` against it. Imports run before the exports that read what they loaded;
DAGs whose point is the second run (continuous import, incremental exports, enrichment) run twice. Outputs
(exports, downloads, results) stay in ``.demo/outputs``; everything else is removed when the demo ends, also on
Ctrl-C. Exit code 0 only when every DAG run succeeded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow_provider_lytics.emulator.prepare import BAD_ROWS, write_customers, write_loyalty

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
DAGS = ROOT / "dags"
CONTINUOUS_WATERMARK = "lytics_import_watermark__customers_sftp"


@dataclass
class Outcome:
    """One row of the summary table."""

    dag_id: str
    pattern: str
    status: str = "not run"
    rows_in: int | None = None
    rows_out: int | None = None
    files: int | None = None
    seconds: float = 0.0
    note: str = ""
    xcoms: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.status in ("success", "skipped")

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("dag_id", "pattern", "status", "rows_in", "rows_out", "files",
                                              "seconds", "note", "xcoms")}  # fmt: skip


# ---------------------------------------------------------------------------------------------- Airflow
def prepare_airflow(home: Path) -> None:
    """Point Airflow at ``home`` and ``dags/`` and migrate its metadata DB (before anything imports airflow)."""
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    os.environ.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    home.mkdir(parents=True, exist_ok=True)
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed in {home}:\n{done.stderr[-2000:]}")


def load_dags() -> dict[str, Any]:
    """Every DAG in ``dags/`` by dag_id, parsed the way the DAG processor does (after the env is set)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS), safe_mode=False)
    if bag.import_errors:
        problems = "; ".join(
            f"{Path(path).name}: {err.strip().splitlines()[-1]}" for path, err in bag.import_errors.items()
        )
        raise RuntimeError(f"example DAGs failed to import: {problems}")
    return dict(bag.dags)


def job_as_code_conf(sandbox: Any) -> dict[str, Any]:
    """``lytics_job_as_code``'s import quiet window moved to start 12 hours after the emulator's now.

    Left at office hours, a demo started between 09:00 and 17:00 New York would wait for the window to end (the
    DAG succeeds then, hours later); 12 hours ahead the window never covers the demo, whatever the hour or DST.
    """
    from zoneinfo import ZoneInfo

    later = (sandbox.lytics.clock.now() + timedelta(hours=12)).astimezone(ZoneInfo("America/New_York"))
    return {"import_quiet_time_of_day": later.strftime("%H:%M")}


def run_dag(dag: Any, conf: dict[str, Any] | None = None) -> tuple[str, dict[str, Any], dict[str, str]]:
    """``dag.test()`` once; returns the run state, every task's ``return_value`` XCom and every task's state."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    run = dag.test(run_conf=conf or None)
    with create_session() as session:
        rows = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=dag.dag_id, key="return_value"))
        xcoms = {row.task_id: XComModel.deserialize_value(row) for row in rows}
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}
    state = str(run.state).rsplit(".", 1)[-1].lower()
    return state, xcoms, states


# ---------------------------------------------------------------------------------------------- input data
# The sample-file writers are shared with `lytics-emulator sandbox` (airflow_provider_lytics/emulator/prepare.py).
def change_profiles(count: int = 10) -> int:
    """Profile changes between two runs of the incremental exports: plan changes, fresh activity, new users."""
    from airflow_provider_lytics.hooks.lytics import LyticsHook

    now_ms = int(time.time() * 1000)
    records = [{"user_id": f"u{i:08d}", "plan": "enterprise", "last_active": now_ms} for i in range(count)]
    records += [{"user_id": f"new{i:04d}", "email": f"new.user{i}@example.com", "first_name": "New",
                 "plan": "basic", "last_active": now_ms} for i in range(count // 2)]  # fmt: skip
    LyticsHook().collect_json("crm_users", records)
    return len(records)


def enter_high_value(count: int = 3, first: int = 0) -> int:
    """New profiles that qualify for ``demo_high_value`` (plan pro, ltv >= 500): they enter the audience."""
    from airflow_provider_lytics.hooks.lytics import LyticsHook

    records = [{"user_id": f"vip{i:04d}", "email": f"vip{i}@example.com", "plan": "pro", "ltv": 900 + i}
               for i in range(first, first + count)]  # fmt: skip
    LyticsHook().collect_json("crm_users", records)
    return count


async def first_event_after_change(trigger: Any, changes: list[Callable[[], Any]], timeout: float = 60.0) -> dict:
    """Start ``trigger``, let it pin its baseline, make a change, and return the payload of its first event.

    On a slow machine the trigger's first snapshot may still be running when the change lands (and then include
    it), so if no event comes within a few seconds the next change is made; the last one waits ``timeout``.
    """
    events = trigger.run()
    first = asyncio.ensure_future(events.__anext__())
    try:
        await asyncio.sleep(1.5)  # a few polls: the baseline is the audience before the change
        if first.done():
            raise RuntimeError(f"the trigger fired before anything changed: {first.result().payload}")
        for n, change in enumerate(changes):
            await asyncio.to_thread(change)
            last = n == len(changes) - 1
            done, _ = await asyncio.wait({first}, timeout=timeout if last else 10.0)
            if done:
                return dict(first.result().payload)
        raise TimeoutError(f"the trigger sent no event within {timeout:g} s of the last change")
    finally:
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)  # the generator must be idle before it is closed
        await events.aclose()


# ---------------------------------------------------------------------------------------------- helpers
def _get(data: Any, *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def _count_files(root: Path, pattern: str = "*") -> int:
    return sum(1 for p in root.rglob(pattern) if p.is_file() and not p.name.startswith(".")) if root.exists() else 0


def _export_rows(result: Any) -> int | None:
    counts = _get(result, "counts") or {}
    if not isinstance(counts, dict):
        return None
    if not counts:
        return _get(result, "rows")
    return sum(v for k, v in counts.items() if k != "unchanged" and isinstance(v, int))


def _import_rows(result: Any) -> tuple[int | None, int | None]:
    """(rows read, rows sent) from an import operator's counts, whatever their exact key names."""
    if not isinstance(result, dict):
        return None, None
    read = next((result[k] for k in ("rows_read", "read", "rows") if isinstance(result.get(k), int)), None)
    sent_keys = ("rows_sent", "sent", "accepted", "message_count")
    sent = next((result[k] for k in sent_keys if isinstance(result.get(k), int)), None)
    return read, sent


# ---------------------------------------------------------------------------------------------- the demo
class Demo:
    """Runs the scenario step by step against a started sandbox, collecting one :class:`Outcome` per DAG run."""

    def __init__(self, sandbox: Any, dags: dict[str, Any], outputs: Path, rows: int, log: Callable[[str], None]):
        self.sandbox = sandbox
        self.dags = dags
        self.outputs = outputs
        self.rows = rows
        self.log = log
        self.outcomes: list[Outcome] = []

    def run(self, dag_id: str, pattern: str, conf: dict[str, Any] | None = None,
            measure: Callable[[Outcome], None] | None = None) -> Outcome:  # fmt: skip
        outcome = Outcome(dag_id, pattern)
        self.outcomes.append(outcome)
        if dag_id not in self.dags:
            outcome.status, outcome.note = "missing", f"no DAG {dag_id!r} in dags/"
            return outcome
        self.log(f"-> {dag_id}: {pattern}")
        started = time.monotonic()
        try:
            outcome.status, outcome.xcoms, states = run_dag(self.dags[dag_id], conf)
            failed = sorted(t for t, s in states.items() if s.endswith(("failed", "upstream_failed")))
            if failed:
                outcome.note = "failed tasks: " + ", ".join(failed)
            elif measure is not None:
                measure(outcome)
        except Exception as exc:  # one broken DAG must not hide the others' results
            outcome.status, outcome.note = "error", f"{type(exc).__name__}: {exc}"[:200]
        outcome.seconds = time.monotonic() - started
        self.log(f"   {outcome.status} in {outcome.seconds:.1f}s {outcome.note}")
        return outcome

    def skip(self, dag_id: str, pattern: str, why: str) -> None:
        self.outcomes.append(Outcome(dag_id, pattern, status="skipped", note=why))

    # -------------------------------------------------------------------- steps
    def quickstart(self) -> None:
        customers = write_customers(self.outputs / "data" / "customers.csv", self.rows)
        conf = {"customers_csv": str(customers), "export_path": str(self.outputs / "quickstart" / "high_value.csv"),
                "stream": "crm_customers", "audience_slug": "demo_high_value"}  # fmt: skip

        def measure(o: Outcome) -> None:
            o.rows_in = _get(o.xcoms, "import_customers", "sent")
            o.rows_out = _get(o.xcoms, "export_audience", "rows")
            o.files = 1
            o.note = f"job {_get(o.xcoms, 'run_lytics_job', 'status')}"

        self.run("lytics_quickstart", "import, audience, export, Lytics job", conf, measure)

    def import_one_time(self) -> None:
        folder = self.outputs / "import_one_time"
        write_customers(
            folder / "input" / "customers_extra.csv", self.rows // 2, seed=8, start=self.rows, bad_rows=BAD_ROWS
        )
        conf = {"input_glob": str(folder / "input" / "customers*.csv*"), "quarantine_dir": str(folder / "quarantine")}

        def measure(o: Outcome) -> None:
            o.rows_in, o.rows_out = _import_rows(o.xcoms.get("load"))
            o.files = 1
            quarantined = _count_files(folder / "quarantine")
            o.note = f"dry run first; {quarantined} quarantine file(s) for the bad rows"

        self.run("lytics_import_one_time", "one-time file import", conf, measure)

    def continuous_import(self) -> None:
        work = self.outputs / "continuous_import"
        for run, day in enumerate(("2026-11-27", "2026-11-28"), start=1):
            plain = write_customers(work / f"customers_{day}.csv.gz", 300, seed=20 + run, start=100_000 * run)
            self.sandbox.encrypt_to_sftp(plain, f"/imports/customers/{plain.name}.gpg", age_seconds=120)

            def measure(o: Outcome, day: str = day) -> None:
                o.rows_in, o.rows_out = _import_rows(o.xcoms.get("load"))
                o.files = _get(o.xcoms, "load", "files")
                archived = _count_files(self.sandbox.sftp_path("/imports/customers/processed"))
                o.note = f"picked the {day} file only; {archived} file(s) archived so far"

            self.run("lytics_import_continuous_sftp_pgp",
                     f"continuous SFTP+PGP import, run {run}", None, measure)  # fmt: skip

    def round_trip(self) -> None:
        plain = write_loyalty(self.outputs / "data" / "loyalty_2026-11-28.csv", min(self.rows, 1000))
        self.sandbox.encrypt_to_sftp(plain, f"/partner/inbox/{plain.name}.gpg")
        conf = {"work_dir": str(self.outputs / "pgp_round_trip")}

        def measure(o: Outcome) -> None:
            o.rows_in = _import_rows(o.xcoms.get("import_loyalty"))[0]
            o.rows_out = _export_rows(o.xcoms.get("export_audience"))
            uploaded = o.xcoms.get("upload_to_partner") or []
            o.files = len(_get(o.xcoms, "download_partner_file", "files", default=[])) + len(uploaded)
            if uploaded:
                back = self.sandbox.decrypt(self.sandbox.sftp_path(uploaded[0]["remote"]))
                rows_back = back.count(b"\n") - 1
                o.note = f"partner decrypts {rows_back} rows from {uploaded[0]['remote']}"

        self.run("lytics_pgp_sftp_round_trip", "PGP SFTP round trip", conf, measure)

    def exports(self) -> None:
        def sftp_export(o: Outcome) -> None:
            result = next((v for v in o.xcoms.values() if isinstance(v, dict) and "counts" in v), None)
            o.rows_out = _export_rows(result)
            o.files = len(_get(result, "paths", default=[]) or [])
            o.note = f"counts {_get(result, 'counts')}"

        self.run("lytics_export_one_time", "one-time audience export", None, sftp_export)
        backfill_uri = (self.outputs / "exports" / "known_users").as_uri()
        self.run("lytics_export_scheduled", "scheduled export, 06:00 New York, run 1", None, sftp_export)
        self.run("lytics_export_backfill_incremental", "backfill then incremental, run 1 (backfill)",
                 {"export_uri": backfill_uri}, sftp_export)  # fmt: skip
        changed = change_profiles()
        self.log(f"   changed {changed} profiles before the second export runs")
        self.run("lytics_export_scheduled", "scheduled export, run 2 (changes only)", None, sftp_export)
        self.run("lytics_export_backfill_incremental", "backfill then incremental, run 2 (incremental)",
                 {"export_uri": backfill_uri}, sftp_export)  # fmt: skip

        def consumer(o: Outcome) -> None:
            o.note = "run by hand: dag.test passes no triggering asset event (events=0)"

        self.run("lytics_export_consumer", "asset-scheduled consumer of the daily export", None, consumer)

    def jobs(self) -> None:
        def measure(o: Outcome) -> None:
            o.note = f"export job {o.xcoms.get('sync_export_job')}, waits deferred in the triggerer"

        self.run("lytics_job_as_code", "Lytics job as code, deferrable wait", job_as_code_conf(self.sandbox), measure)

    def realtime(self) -> None:
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        segment_id = LyticsHook().get_segment("demo_high_value")["id"]
        self.sandbox.webhooks.clear()

        def measure(o: Outcome) -> None:
            members = LyticsHook().segment_size("demo_high_value")
            deadline, events, last_change = time.monotonic() + 60, -1, time.monotonic()
            while time.monotonic() < deadline and time.monotonic() - last_change < 3:
                now = sum(len(d.body) if isinstance(d.body, list) else 1
                          for d in self.sandbox.webhooks.deliveries("/lytics-audience"))  # fmt: skip
                if now != events:
                    events, last_change = now, time.monotonic()
                if events >= members:
                    break
                time.sleep(0.3)
            o.rows_in = members
            o.rows_out = events
            o.note = f"{events} of {members} members' enter events delivered by the webhook_triggers job (backfill)"

        self.run("lytics_realtime_audience_setup", "real-time audience trigger (webhook)",
                 {"segment_id": segment_id}, measure)  # fmt: skip
        self.audience_watcher()

    def audience_watcher(self) -> None:
        """The asset watcher's trigger, run the way the triggerer runs it, then the DAG its events schedule.

        A scheduler and a triggerer would fire ``lytics_audience_changed`` by themselves; the demo runs in one
        process with ``dag.test()``, so it serializes the watcher's trigger, rebuilds it from that (as the
        triggerer does), runs it against the emulator until members enter the audience, then runs the DAG.
        """
        dag_id, pattern = "lytics_audience_changed", "real-time audience trigger (asset watcher)"
        dag = self.dags.get(dag_id)
        if dag is None:
            self.skip(dag_id, pattern, "asset watchers need Airflow 3")
            return
        watchers = [w for a in dag.timetable.asset_condition.objects for w in getattr(a, "watchers", None) or []]
        classpath, kwargs = watchers[0].trigger.serialize()
        module, _, name = classpath.rpartition(".")
        kwargs["poll_interval"] = 0.5  # the DAG polls every 60 s; the demo does not wait that long
        trigger = getattr(__import__(module, fromlist=[name]), name)(**kwargs)
        self.log(f"-> {dag_id}: running its asset watcher's trigger ({name}, poll every 0.5 s)")
        changes = [lambda: enter_high_value(3, 0), lambda: enter_high_value(3, 3)]
        event = asyncio.run(first_event_after_change(trigger, changes))
        self.log(f"   trigger fired: {event}")

        def measure(o: Outcome) -> None:
            o.rows_in = event.get("entered")
            o.note = (f"watcher fired on {event.get('entered')} entered (audience size {event.get('size')}); "
                      "DAG run by dag.test, which passes no triggering event")  # fmt: skip

        self.run(dag_id, pattern, None, measure)

    def enrichment(self) -> None:
        def measure(o: Outcome) -> None:
            summary = o.xcoms.get("enrich") or {}
            o.rows_in, o.rows_out = summary.get("scanned"), summary.get("sent")
            o.note = str(o.xcoms.get("report", ""))

        for run in (1, 2):
            conf = {"results_dir": str(self.outputs / "enrichment")}
            self.run("lytics_enrichment_round_trip", f"enrichment round trip, run {run}", conf, measure)

    def alerts(self) -> None:
        self.sandbox.webhooks.clear()

        def measure(o: Outcome) -> None:
            summary = o.xcoms.get("send_alerts") or {}
            o.rows_in, o.rows_out = summary.get("profiles"), summary.get("delivered")
            o.files = len(self.sandbox.webhooks.deliveries("/alerts"))
            o.note = f"{o.files} webhook requests"
            o.files = None

        conf = {"results_dir": str(self.outputs / "alerts")}
        self.run("lytics_go_template_alerts", "Go-template alerts to a webhook", conf, measure)

    def queries(self) -> None:
        """Last, so the shoppers it adds change no other DAG's audience counts."""

        def measure(o: Outcome) -> None:
            o.rows_in, o.rows_out = _import_rows(o.xcoms.get("load_orders"))
            checked = o.xcoms.get("verify_profile") or {}
            o.note = (f"query {o.xcoms.get('sync_query')}; {checked.get('email')} has {checked.get('orders')} "
                      f"orders, total {checked.get('total_spent')}")  # fmt: skip

        self.run("lytics_query_as_code", "LQL query as code: imported rows become profile fields", None, measure)

    def metrics(self) -> None:
        def measure(o: Outcome) -> None:
            checked = o.xcoms.get("check_read_back") or {}
            history = o.xcoms.get("size_history") or {}
            o.rows_in, o.rows_out = _get(o.xcoms, "push_metrics", "pushed"), checked.get("read_points")
            o.note = f"size history of {history.get('latest')} ({history.get('points')} point(s))"

        conf = {"results_dir": str(self.outputs / "metrics")}
        self.run("lytics_metrics", "metrics pushed, read back; audience size history", conf, measure)

    def event_export(self) -> None:
        def measure(o: Outcome) -> None:
            result = o.xcoms.get("export_events") or {}
            o.rows_in = _get(o.xcoms, "record_page_views", "sent")
            o.rows_out = result.get("rows_written")
            o.files = len(result.get("paths") or [])
            o.note = f"{result.get('run_kind')} run, in range {result.get('events_in_range')}, {result.get('counts')}"

        conf = {"results_dir": str(self.outputs / "events")}
        for run in (1, 2):
            self.run("lytics_event_export", f"incremental raw event export, run {run}", conf, measure)

    def content(self) -> None:
        def measure(o: Outcome) -> None:
            imported = o.xcoms.get("import_content") or {}
            fans = o.xcoms.get("ensure_audiences") or {}
            recommended = o.xcoms.get("recommend") or {}
            o.rows_in, o.rows_out = imported.get("read"), _get(o.xcoms, "export_fans", "rows_written")
            o.note = (f"{imported.get('sent')} documents classified ({imported.get('rejected_here')} refused); "
                      f"{fans.get('fans_size')} {fans.get('fans')}; {recommended.get('recommendations')} "
                      "recommendations")  # fmt: skip

        conf = {"results_dir": str(self.outputs / "content")}
        self.run("lytics_content", "content in, topic affinities, affinity audience out", conf, measure)

    def everything(self) -> list[Outcome]:
        for step in (self.quickstart, self.import_one_time, self.continuous_import, self.round_trip, self.exports,
                     self.jobs, self.realtime, self.enrichment, self.alerts, self.queries, self.metrics,
                     self.event_export, self.content):  # fmt: skip
            step()
        return self.outcomes


def format_table(outcomes: list[Outcome]) -> str:
    """The summary table: DAG, pattern, rows in/out, files, duration, status (notes under the table)."""
    header = ("DAG", "pattern", "rows in", "rows out", "files", "time", "status")
    lines = [(o.dag_id, o.pattern, "" if o.rows_in is None else str(o.rows_in),
              "" if o.rows_out is None else str(o.rows_out), "" if o.files is None else str(o.files),
              f"{o.seconds:.1f}s", o.status) for o in outcomes]  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    fmt = "  ".join(f"{{:{'>' if 2 <= i <= 5 else '<'}{w}}}" for i, w in enumerate(widths))
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths)), *(fmt.format(*row) for row in lines)]
    out.append("")
    out += [f"  {o.dag_id}: {o.note}" for o in outcomes if o.note]
    return "\n".join(out)


def run_demo(outputs: Path, airflow_home: Path, *, users: int, rows: int, quiet: bool = False) -> list[Outcome]:
    """Start the sandbox, run every example DAG, stop everything; returns the outcomes in run order."""
    from airflow_provider_lytics.emulator.sandbox import LyticsSandbox

    def log(line: str) -> None:
        if not quiet:
            print(line, flush=True)

    shutil.rmtree(outputs, ignore_errors=True)
    started = time.monotonic()
    prepare_airflow(airflow_home)
    log(f"Airflow home {airflow_home} ready in {time.monotonic() - started:.1f}s")
    with LyticsSandbox(outputs, users=users) as sandbox:
        sandbox.apply_env()
        log("Sandbox up:\n" + sandbox.describe())
        from airflow.models.variable import Variable

        Variable.delete(CONTINUOUS_WATERMARK)  # a previous demo's watermark would hide this demo's files
        dags = load_dags()
        return Demo(sandbox, dags, outputs, rows, log).everything()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2_000, help="profiles seeded in the emulator")
    parser.add_argument("--rows", type=int, default=2_000, help="customers in the quickstart CSV")
    parser.add_argument("--outputs", type=Path, default=DEMO / "outputs", help="kept after the demo")
    parser.add_argument("--airflow-home", type=Path, default=DEMO / "airflow_home")
    parser.add_argument("--json", type=Path, help="also write the summary as JSON here")
    parser.add_argument("--quiet", action="store_true", help="only the summary table")
    args = parser.parse_args(argv)

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    started = time.monotonic()
    try:
        outcomes = run_demo(args.outputs.resolve(), args.airflow_home.resolve(), users=args.users, rows=args.rows,
                            quiet=args.quiet)  # fmt: skip
    except KeyboardInterrupt:
        print("\nInterrupted: the sandbox was stopped and its temporary files removed.", file=sys.stderr)
        return 130
    total = time.monotonic() - started
    print()
    print(format_table(outcomes))
    ok = all(o.ok for o in outcomes)
    print(f"\n{sum(o.ok for o in outcomes)}/{len(outcomes)} DAG runs succeeded in {total:.0f}s; outputs in "
          f"{args.outputs}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"ok": ok, "seconds": total, "runs": [o.as_dict() for o in outcomes]},
                                        indent=2, default=str))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
