"""Emulator throughput: bulk CSV ingest (curl vs python requests streaming), segment scan paging, seeding.

Runs ``lytics-emulator serve`` as a subprocess (so its peak RSS is its own), resets it between runs and reports
medians. Targets: ingest >= 50,000 rows/s, scan >= 20,000 rows/s, ``seed_population(100_000)`` in a few seconds.

    .venv/bin/python benchmarks/emulator_throughput.py [--rows 200000] [--scan-rows 100000] [--seed-users 100000]
                                                       [--runs 3] [--db] [--json]

``--db`` serves with a SQLite state file (``serve --db``) instead of the default in-memory state.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

TOKEN = "emulator-token"
INGEST_TARGET = 50_000
SCAN_TARGET = 20_000
URL_LINE = re.compile(r"Lytics emulator serving on (http://\S+)")


def write_csv(path: Path, rows: int, prefix: str) -> int:
    """A realistic CRM export: identifiers, a few attributes, an event time. Returns its size in bytes."""
    plans = ("free", "pro", "team", "enterprise")
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,user_id,first_name,last_name,plan,ltv,signup_ts\n")
        for i in range(rows):
            out.write(
                f"{prefix}{i}@example.com,{prefix}-{i},First{i % 997},Last{i % 991},{plans[i % 4]},"
                f"{(i * 37) % 10000}.{i % 100:02d},2024-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00Z\n"
            )
    return path.stat().st_size


class ServeProcess:
    def __init__(self, db_path: Path | None = None) -> None:
        db_args = ["--db", str(db_path)] if db_path else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "airflow_provider_lytics.emulator.cli", "serve", "--port", "0", *db_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for line in self.proc.stdout:
            match = URL_LINE.search(line)
            if match:
                self.url = match.group(1)
                self.bulk_url = self.proc.stdout.readline().strip().removeprefix("bulk host: ")
                return
        raise RuntimeError(f"emulator did not start: {self.proc.stderr.read()}")

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        kb = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))
        return kb / 1024

    def reset(self) -> None:
        requests.post(f"{self.url}/_emulator/reset", timeout=120).raise_for_status()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.communicate(timeout=30)


def ingest_curl(url: str, stream: str, path: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    result = subprocess.run(
        [
            "curl", "-sS", "--fail-with-body", "--data-binary", f"@{path}",
            "-H", f"Authorization: {TOKEN}", "-H", "Content-Type: application/csv",
            f"{url}/collect/bulk/{stream}",
        ],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    return time.perf_counter() - started, json.loads(result.stdout)["data"]


def ingest_requests(url: str, stream: str, path: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    with path.open("rb") as body:  # a file object: requests streams it, nothing is read whole
        response = requests.post(
            f"{url}/collect/bulk/{stream}",
            data=body,
            headers={"Authorization": TOKEN, "Content-Type": "application/csv"},
            timeout=600,
        )
    response.raise_for_status()
    return time.perf_counter() - started, response.json()["data"]


def scan_segment(url: str, segment: str, limit: int = 100) -> tuple[float, int, int]:
    """Page a saved segment to the end; returns (seconds, rows, pages)."""
    session = requests.Session()
    session.headers["Authorization"] = TOKEN
    rows = pages = 0
    params: dict[str, str | int] = {"limit": limit}
    started = time.perf_counter()
    while True:
        page = session.get(f"{url}/api/segment/{segment}/scan", params=params, timeout=60)
        page.raise_for_status()
        body = page.json()
        rows += len(body["data"])
        pages += 1
        cursor = body.get("_next")
        if not cursor or not body["data"]:
            break
        params = {"limit": limit, "start": cursor}
    return time.perf_counter() - started, rows, pages


def seed_users(url: str, users: int) -> tuple[float, dict]:
    started = time.perf_counter()
    response = requests.post(f"{url}/_emulator/seed", params={"users": users, "seed": 1}, timeout=600)
    response.raise_for_status()
    return time.perf_counter() - started, response.json()["counts"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="CSV rows per ingest run")
    parser.add_argument("--scan-rows", type=int, default=100_000, help="segment members to scan")
    parser.add_argument("--seed-users", type=int, default=100_000, help="users for the seeding measurement")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median reported)")
    parser.add_argument("--db", action="store_true", help="serve with a SQLite state file instead of memory")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        parser.error("curl is needed for the baseline client")

    results: dict[str, object] = {
        "rows": args.rows, "scan_rows": args.scan_rows, "seed_users": args.seed_users, "runs": args.runs,
        "state": "sqlite file" if args.db else "memory", "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "ingest.csv"
        results["csv_mb"] = round(write_csv(csv_path, args.rows, "u") / 1e6, 1)
        scan_csv = Path(tmp) / "scan.csv"
        write_csv(scan_csv, args.scan_rows, "s")
        server = ServeProcess(Path(tmp) / "state.db" if args.db else None)
        try:
            for client, ingest in (("curl", ingest_curl), ("requests", ingest_requests)):
                times = []
                for run in range(args.runs):
                    server.reset()
                    seconds, data = ingest(server.bulk_url, f"bench_{client}_{run}", csv_path)
                    if data["message_count"] != args.rows:
                        raise RuntimeError(f"{client}: expected {args.rows} rows, server counted {data}")
                    times.append(seconds)
                median = statistics.median(times)
                results[f"ingest_{client}"] = {
                    "median_s": round(median, 3),
                    "rows_per_s": round(args.rows / median),
                    "runs_s": [round(t, 3) for t in times],
                }

            server.reset()
            ingest_requests(server.bulk_url, "bench_scan", scan_csv)
            created = requests.post(
                f"{server.url}/api/segment",
                data='FILTER EXISTS email FROM user ALIAS bench_all WITH name = "bench all"',
                headers={"Authorization": TOKEN, "Content-Type": "text/plain"},
                timeout=60,
            )
            created.raise_for_status()
            segment = created.json()["data"]["id"]
            times = []
            for _ in range(args.runs):
                seconds, rows, pages = scan_segment(server.url, segment)
                if rows != args.scan_rows:
                    raise RuntimeError(f"scan returned {rows} rows, expected {args.scan_rows}")
                times.append(seconds)
            median = statistics.median(times)
            results["scan"] = {
                "median_s": round(median, 3),
                "rows_per_s": round(args.scan_rows / median),
                "pages": pages,
                "runs_s": [round(t, 3) for t in times],
            }
            times = []
            for _ in range(args.runs):
                server.reset()
                seconds, counts = seed_users(server.url, args.seed_users)
                if counts["users"] != args.seed_users:
                    raise RuntimeError(f"seeding reported {counts}")
                times.append(seconds)
            results["seed"] = {"median_s": round(statistics.median(times), 3), "runs_s": [round(t, 3) for t in times]}
            results["server_peak_rss_mb"] = round(server.peak_rss_mb(), 1)
            results["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        finally:
            server.stop()

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"CSV: {args.rows} rows, {results['csv_mb']} MB; {args.runs} runs each, medians")
        for client in ("curl", "requests"):
            r = results[f"ingest_{client}"]
            line = f"ingest via {client:8s}: {r['rows_per_s']:>9,} rows/s  ({r['median_s']} s)"
            print(f"{line}  target {INGEST_TARGET:,}")
        s = results["scan"]
        print(f"scan limit=100      : {s['rows_per_s']:>9,} rows/s  ({s['median_s']} s, {s['pages']} pages)  "
              f"target {SCAN_TARGET:,}")  # fmt: skip
        print(f"seed {args.seed_users} users : {results['seed']['median_s']} s  (runs {results['seed']['runs_s']})")
        print(f"server peak RSS     : {results['server_peak_rss_mb']} MB  (state in {results['state']})")
        print(f"load average        : {results['loadavg_before']} before, {results['loadavg_after']} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
