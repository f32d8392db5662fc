"""Import throughput: LocalFilesToLyticsOperator vs ``curl --data-binary`` posting the same CSV to the emulator.

Starts the emulator in its own process (``lytics-emulator serve``), generates a CSV (1,000,000 rows of about
200 bytes by default), then, run by run and alternating (``_harness.paired``) so background load hits both alike:

* ``curl``: one ``POST /collect/bulk/{stream}`` of the whole file to the bulk port (``--data-binary @file``);
* ``ours``: the import operator in a child process (validation, batching, file checkpoint); it also reports the
  in-process time of ``execute()`` alone (``inproc_execute_s``).

Both are whole processes measured the same way (wall, CPU of the tree, peak RSS/PSS of the tree): the goal
(>= 0.9x curl) uses the whole-process wall time. Client CPU per million rows is reported for both. The emulator
is reset before each run; rows stored are checked against the file.

    .venv/bin/python benchmarks/import_throughput.py --rows 1000000 --runs 5
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


def make_csv(path: Path, rows: int) -> None:
    rnd = random.Random(7)
    with path.open("w") as out:
        out.write("user_id,email,first_name,last_name,city,plan,score,signup_date,notes\n")
        for i in range(rows):
            out.write(
                f"{i},user{i}@example.com,First{rnd.randint(0, 99999)},Last{rnd.randint(0, 99999)},"
                f"City{rnd.randint(0, 999)},{rnd.choice(['free', 'pro', 'team'])},{rnd.random():.6f},"
                f"2026-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d},{'x' * rnd.randint(95, 130)}\n"
            )


def worker(args: argparse.Namespace) -> None:
    """Child process: run the operator once and print JSON with wall time and peak RSS."""
    sys.path.insert(0, str(ROOT))
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
            }
        )
    )


def _ours_cmd_env(args: argparse.Namespace, api: str, bulk: str, ckpt: Path, dry_run: bool) -> tuple[list, dict]:
    env = dict(os.environ)
    env["AIRFLOW_CONN_LYTICS_DEFAULT"] = json.dumps(
        {"conn_type": "lytics", "host": api, "password": TOKEN, "extra": {"bulk_url": bulk}}
    )
    cmd = [sys.executable, __file__, "--worker", "--file", str(args.file), "--checkpoint", str(ckpt),
           "--in-flight", str(args.in_flight), "--batch-mb", str(args.batch_mb)]  # fmt: skip
    cmd += ["--dry-run"] if dry_run else []
    return cmd, env


def run_ours(args: argparse.Namespace, api: str, bulk: str, ckpt: Path, dry_run: bool = False) -> h.Measure:
    cmd, env = _ours_cmd_env(args, api, bulk, ckpt, dry_run)
    return h.run_process(cmd, env=env)


def run_curl(file: Path, bulk: str) -> h.Measure:
    measure = h.run_process(
        ["curl", "-sS", "--fail", "-X", "POST", "-H", f"Authorization: {TOKEN}", "-H", "Content-Type: application/csv",
         "--data-binary", f"@{file}", f"{bulk}/collect/bulk/{STREAM}?droperrors=true"],
    )  # fmt: skip
    measure.inproc = {"rows_sent": json.loads(measure.stdout)["data"]["message_count"]}
    return measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    h.add_common_args(parser, runs=5)
    parser.add_argument("--rows", type=int, default=1_000_000)
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
    if args.quick:
        args.rows, args.runs, args.memory_rows = 5000, 1, 0
    tmp = Path(tempfile.mkdtemp(prefix="lytics-import-bench-"))
    args.file = tmp / "users.csv"
    make_csv(args.file, args.rows)
    size = args.file.stat().st_size
    port, bulk_port = _free_port(), _free_port()
    emulator = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_lytics.emulator.cli", "serve", "--port", str(port),
         "--bulk-port", str(bulk_port), "--token", TOKEN],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    api, bulk = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bulk_port}"
    try:
        for _ in range(600):
            try:
                requests.get(f"{api}/api/account", headers={"Authorization": TOKEN}, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        sides = {
            "curl": lambda _run: run_curl(args.file, bulk),
            "ours": lambda _run: run_ours(args, api, bulk, tmp / "ckpt.json"),
        }
        results = h.paired(
            sides, args.runs, before_each=lambda _n, _r: requests.post(f"{api}/_emulator/reset", timeout=60),
            log=lambda line: print(line, file=sys.stderr),
        )  # fmt: skip
        summary = {name: h.summarize(ms, inproc_keys=("execute_s", "execute_cpu_s")) for name, ms in results.items()}
        per_m = 1e6 / args.rows
        result = {
            "rows": args.rows, "file_mb": round(size / 1e6, 1), "runs": args.runs, "in_flight": args.in_flight,
            "batch_mb": args.batch_mb,
            "goal": "ours >= 0.9x curl, whole process wall (curl wall / ours wall)",
            "ours_vs_curl_whole_process": h.ratio(summary["curl"], summary["ours"]),
            "ours_vs_curl_in_process": round(summary["curl"]["wall_s"]["median"]
                                             / summary["ours"]["inproc_execute_s"]["median"], 3),
            "client_cpu_s_per_million_rows": {n: round(s["cpu_s"]["median"] * per_m, 2) for n, s in summary.items()},
            "rows_per_s_whole_process": {n: round(args.rows / s["wall_s"]["median"]) for n, s in summary.items()},
            "all_rows_stored": all(m.inproc.get("rows_sent") == args.rows for ms in results.values() for m in ms),
            "summary": summary, "runs_detail": h.measures_json(results),
        }  # fmt: skip
        if args.memory_rows:
            args.file.unlink()
            args.file = tmp / "big.csv"
            make_csv(args.file, args.memory_rows)
            big = run_ours(args, api, bulk, tmp / "ckpt.json", dry_run=True)
            result.update({"memory_file_mb": round(args.file.stat().st_size / 1e6, 1),
                           "memory_rows_read": big.inproc["rows_read"], "memory_read_validate_s": round(big.wall_s, 1),
                           "memory_peak_rss_mb": round(big.peak_rss_mb, 1)})  # fmt: skip
        h.report(args, result)
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


if __name__ == "__main__":
    main()
