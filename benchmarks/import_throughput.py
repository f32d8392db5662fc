"""Import throughput: LocalFilesToLyticsOperator vs ``curl --data-binary`` posting the same CSV, three cases.

Generates a CSV (1,000,000 rows of about 200 bytes by default) and a quoted twin (the same rows with the city
column quoted and holding the delimiter: ``"City12, IL"``), then, case by case and run by run alternating
(``_harness.paired``) so background load hits both sides alike:

* ``plain``: the plain CSV into the emulator (``lytics-emulator serve`` in its own process, reset before each run);
* ``quoted``: the quoted CSV into the emulator;
* ``sink`` / ``sink_quoted``: the plain / quoted CSV into a store-nothing HTTP sink (``benchmarks/_sink.py``: reads
  each body and drops it, answering like Lytics's collect API), so that the client is all that is measured.

Each side is a whole process measured the same way (wall, CPU of the tree, peak RSS/PSS of the tree):

* ``curl``: one ``POST /collect/bulk/{stream}`` of the whole file (``--data-binary @file``);
* ``ours``: the import operator in a child process (validation, batching, file checkpoint); it also reports the
  wall and CPU time of ``execute()`` alone (``inproc_execute_s``, ``inproc_execute_cpu_s``).

The goals use the whole-process wall: ours >= 0.9x curl into the emulator (plain and quoted) and >= 0.5x curl into
the sink. Client CPU per million rows is reported for both sides (whole process, and ``execute()`` alone for ours).
Every run checks that all rows arrived. ``--code DIR`` runs the operator from another checkout (e.g. the main
branch before a change) under the same harness, for before/after figures.

    .venv/bin/python benchmarks/import_throughput.py --rows 1000000 --runs 5
    .venv/bin/python benchmarks/import_throughput.py --cases sink,sink_quoted --code /path/to/other/checkout
    .venv/bin/python benchmarks/import_throughput.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"
STREAM = "bench_import"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CASES = ("plain", "quoted", "sink", "sink_quoted")


def make_csv(path: Path, rows: int, *, quoted: bool = False) -> None:
    """The benchmark CSV; ``quoted``: the city column quoted, with the delimiter inside (``"City12, IL"``)."""
    rnd = random.Random(7)
    with path.open("w") as out:
        out.write("user_id,email,first_name,last_name,city,plan,score,signup_date,notes\n")
        for i in range(rows):
            city = rnd.randint(0, 999)
            out.write(
                f"{i},user{i}@example.com,First{rnd.randint(0, 99999)},Last{rnd.randint(0, 99999)},"
                + (f'"City{city}, IL",' if quoted else f"City{city},")
                + f"{rnd.choice(['free', 'pro', 'team'])},{rnd.random():.6f},"
                f"2026-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d},{'x' * rnd.randint(95, 130)}\n"
            )


def worker(args: argparse.Namespace) -> None:
    """Child process: run the operator once and print JSON with wall time and peak RSS."""
    sys.path.insert(0, str(args.code))
    from airflow_provider_lytics.operators.imports import LocalFilesToLyticsOperator

    class TI:
        def xcom_push(self, key: str, value: object) -> None:
            pass

    op = LocalFilesToLyticsOperator(task_id="bench", paths=args.file, stream=STREAM, checkpoint=args.checkpoint,
                                    max_in_flight=args.in_flight, progress_interval=10, dry_run=args.dry_run,
                                    batch_bytes=args.batch_mb * 1024 * 1024 if args.batch_mb else None)  # fmt: skip
    start, cpu = time.perf_counter(), time.process_time()
    result = op.execute({"ti": TI(), "run_id": "bench"})
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sent = result["rows_read"] if args.dry_run else result["rows_sent"]
    print(
        json.dumps(
            {
                "execute_s": seconds,
                "execute_cpu_s": cpu,
                "rss_mb": rss,
                "rows_sent": sent,
                "rows_read": result["rows_read"],
                "accepted": result.get("accepted"),
            }
        )
    )


def _ours_cmd_env(args: argparse.Namespace, file: Path, api: str, bulk: str, ckpt: Path, dry_run: bool
                  ) -> tuple[list, dict]:  # fmt: skip
    env = dict(os.environ)
    env["AIRFLOW_CONN_LYTICS_DEFAULT"] = json.dumps(
        {"conn_type": "lytics", "host": api, "password": TOKEN, "extra": {"bulk_url": bulk}}
    )
    cmd = [sys.executable, __file__, "--worker", "--file", str(file), "--checkpoint", str(ckpt),
           "--in-flight", str(args.in_flight), "--batch-mb", str(args.batch_mb), "--code", str(args.code)]  # fmt: skip
    cmd += ["--dry-run"] if dry_run else []
    return cmd, env


def run_ours(args: argparse.Namespace, file: Path, api: str, bulk: str, ckpt: Path, dry_run: bool = False
             ) -> h.Measure:  # fmt: skip
    cmd, env = _ours_cmd_env(args, file, api, bulk, ckpt, dry_run)
    return h.run_process(cmd, env=env)


def run_curl(file: Path, bulk: str) -> h.Measure:
    measure = h.run_process(
        ["curl", "-sS", "--fail", "-X", "POST", "-H", f"Authorization: {TOKEN}", "-H", "Content-Type: application/csv",
         "--data-binary", f"@{file}", f"{bulk}/collect/bulk/{STREAM}?droperrors=true"],
    )  # fmt: skip
    measure.inproc = {"rows_sent": json.loads(measure.stdout)["data"]["message_count"]}
    return measure


def _wait_until_up(method: str, url: str) -> None:
    for _ in range(600):
        try:
            requests.request(method, url, headers={"Authorization": TOKEN}, timeout=30)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within 60 s")


def _case_result(args: argparse.Namespace, results: dict[str, list[h.Measure]], goal: float) -> dict:
    summary = {name: h.summarize(ms, inproc_keys=("execute_s", "execute_cpu_s")) for name, ms in results.items()}
    per_m = 1e6 / args.rows
    ours = summary["ours"]
    return {
        "goal": f"ours >= {goal}x curl, whole process wall (curl wall / ours wall)",
        "ours_vs_curl_whole_process": h.ratio(summary["curl"], ours),
        "ours_vs_curl_in_process": round(summary["curl"]["wall_s"]["median"] / ours["inproc_execute_s"]["median"], 3),
        "client_cpu_s_per_million_rows": {n: round(s["cpu_s"]["median"] * per_m, 2) for n, s in summary.items()},
        "ours_execute_cpu_s_per_million_rows": round(ours["inproc_execute_cpu_s"]["median"] * per_m, 2),
        "rows_per_s_whole_process": {n: round(args.rows / s["wall_s"]["median"]) for n, s in summary.items()},
        "all_rows_stored": all(m.inproc.get("rows_sent") == args.rows for ms in results.values() for m in ms),
        "summary": summary,
        "runs_detail": h.measures_json(results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    h.add_common_args(parser, runs=5)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose operator runs (default: this one)")
    parser.add_argument("--in-flight", type=int, default=1)
    parser.add_argument("--batch-mb", type=int, default=0, help="upload body MB (default: the operator's, 8)")
    parser.add_argument(
        "--memory-rows",
        type=int,
        default=0,
        help="also read+validate a file of this many rows (dry run: 1000-row sample sent) for peak RSS",
    )
    parser.add_argument("--dry-run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", default="none", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}: use {', '.join(CASES)}")
    if args.quick:
        args.rows, args.runs, args.memory_rows = 5000, 1, 0
    tmp = Path(tempfile.mkdtemp(prefix="lytics-import-bench-"))
    files = {"plain": tmp / "users.csv", "quoted": tmp / "users_quoted.csv"}
    for kind, path in files.items():
        if any(c.endswith(kind) or (kind == "plain" and c == "sink") for c in cases):
            make_csv(path, args.rows, quoted=kind == "quoted")
    size = files["plain"].stat().st_size if files["plain"].exists() else None
    port, bulk_port, sink_port = _free_port(), _free_port(), _free_port()
    emulator = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_lytics.emulator.cli", "serve", "--port", str(port),
         "--bulk-port", str(bulk_port), "--token", TOKEN],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    sink = subprocess.Popen([sys.executable, str(Path(__file__).with_name("_sink.py")), "--port", str(sink_port),
                             "--token", TOKEN], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    api, bulk = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bulk_port}"
    sink_url = f"http://127.0.0.1:{sink_port}"
    log = lambda line: print(line, file=sys.stderr)  # noqa: E731
    try:
        _wait_until_up("GET", f"{api}/api/account")
        _wait_until_up("POST", f"{sink_url}/collect/bulk/{STREAM}")
        result: dict = {
            "rows": args.rows, "file_mb": round(size / 1e6, 1) if size else None, "runs": args.runs,
            "in_flight": args.in_flight, "batch_mb": args.batch_mb, "code": str(args.code), "cases": {},
        }  # fmt: skip
        for case in cases:
            file = files["quoted" if case.endswith("quoted") else "plain"]
            to_sink = case.startswith("sink")
            target_api, target_bulk = (sink_url, sink_url) if to_sink else (api, bulk)
            sides = {
                "curl": lambda _run, f=file, b=target_bulk: run_curl(f, b),
                "ours": lambda _run, f=file, a=target_api, b=target_bulk: run_ours(args, f, a, b, tmp / "ckpt.json"),
            }
            reset = None if to_sink else (lambda _n, _r: requests.post(f"{api}/_emulator/reset", timeout=60))
            where = "the sink" if to_sink else "the emulator"
            log(f"case {case}: {file.name} ({file.stat().st_size / 1e6:.1f} MB) into {where}")
            results = h.paired(sides, args.runs, before_each=reset, log=log)
            result["cases"][case] = _case_result(args, results, 0.5 if to_sink else 0.9)
        first = result["cases"][cases[0]]
        # The first case's figures at the top level, as before the cases existed.
        for key in ("goal", "ours_vs_curl_whole_process", "ours_vs_curl_in_process", "client_cpu_s_per_million_rows",
                    "rows_per_s_whole_process", "all_rows_stored", "summary"):  # fmt: skip
            result[key] = first[key]
        result["all_rows_stored"] = all(c["all_rows_stored"] for c in result["cases"].values())
        if args.memory_rows:
            args.file = tmp / "big.csv"
            make_csv(args.file, args.memory_rows)
            big = run_ours(args, args.file, api, bulk, tmp / "ckpt.json", dry_run=True)
            result.update({"memory_file_mb": round(args.file.stat().st_size / 1e6, 1),
                           "memory_rows_read": big.inproc["rows_read"], "memory_read_validate_s": round(big.wall_s, 1),
                           "memory_peak_rss_mb": round(big.peak_rss_mb, 1)})  # fmt: skip
        for case, data in result["cases"].items():
            log(f"{case:<12} ours/curl {data['ours_vs_curl_whole_process']} whole process, "
                f"{data['ours_vs_curl_in_process']} execute() alone; client CPU s per M rows "
                f"{data['client_cpu_s_per_million_rows']}, "
                f"execute() {data['ours_execute_cpu_s_per_million_rows']}")  # fmt: skip
        h.report(args, result)
    finally:
        for proc in (emulator, sink):
            proc.terminate()
            proc.wait(timeout=30)
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


if __name__ == "__main__":
    main()
