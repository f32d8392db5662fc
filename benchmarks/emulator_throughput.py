"""Emulator throughput: bulk CSV ingest (curl vs python requests streaming), segment scan paging, seeding.

Runs ``lytics-emulator serve`` as a subprocess (so its peak RSS is its own), resets it between runs and reports
medians. Targets: ingest >= 50,000 rows/s, scan >= 20,000 rows/s, ``seed_population(100_000)`` in a few seconds.

    .venv/bin/python benchmarks/emulator_throughput.py [--rows 200000] [--scan-rows 100000] [--seed-users 100000]
                                                       [--runs 3] [--db] [--json] [--baseline DIR]

Client sides run as whole processes through ``_harness.run_process`` (curl, and a Python ``requests`` client in
its own interpreter), the servers alternating run by run. Beside every wall rate the server's CPU seconds for
the operation (``/proc/<pid>/stat``, all its threads) give a CPU-normalised rate (rows per server CPU-second),
which moves far less with the machine's load. ``--memory-profiles N`` also builds N profiles in a fresh process
and reports bytes per profile (tracemalloc: Python objects; and RSS growth of the process).

``--db`` serves with a SQLite state file (``serve --db``) instead of the default in-memory state.
``--baseline DIR`` also serves the emulator of an older source tree (a directory holding its
``airflow_provider_lytics`` package, e.g. ``git archive <commit> airflow_provider_lytics | tar -x -C DIR``) and
alternates between the two run by run, so the load of a shared machine weighs on both alike.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

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
    """``lytics-emulator serve`` in a subprocess; ``source`` is the directory its package is imported from."""

    def __init__(self, db_path: Path | None = None, source: Path | None = None) -> None:
        db_args = ["--db", str(db_path)] if db_path else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "airflow_provider_lytics.emulator.cli", "serve", "--port", "0", *db_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=source,  # ``-m`` imports from the working directory first
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

    def cpu_s(self) -> float:
        """User + system CPU seconds of the server process so far (every thread)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def reset(self) -> None:
        requests.post(f"{self.url}/_emulator/reset", timeout=120).raise_for_status()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.communicate(timeout=30)


def ingest_curl(url: str, stream: str, path: Path) -> tuple[h.Measure, dict]:
    measure = h.run_process(
        [
            "curl", "-sS", "--fail-with-body", "--data-binary", f"@{path}",
            "-H", f"Authorization: {TOKEN}", "-H", "Content-Type: application/csv",
            f"{url}/collect/bulk/{stream}",
        ],
    )  # fmt: skip
    return measure, json.loads(measure.stdout)["data"]


REQUESTS_CLIENT = """
import json, sys, requests
url, token, path = sys.argv[1:4]
with open(path, "rb") as body:  # a file object: requests streams it, nothing is read whole
    r = requests.post(url, data=body, headers={"Authorization": token, "Content-Type": "application/csv"}, timeout=600)
r.raise_for_status()
print(json.dumps(r.json()["data"]))
"""


def ingest_requests(url: str, stream: str, path: Path) -> tuple[h.Measure, dict]:
    measure = h.run_process([sys.executable, "-c", REQUESTS_CLIENT, f"{url}/collect/bulk/{stream}", TOKEN, str(path)])
    return measure, measure.inproc


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


def measure(servers: dict[str, ServeProcess], args: argparse.Namespace, csv_path: Path, scan_csv: Path) -> dict:
    """Every measurement for every server, alternating between the servers run by run; figures per server."""
    out: dict[str, dict] = {label: {} for label in servers}
    labels = list(servers)
    for client, ingest in (("curl", ingest_curl), ("requests", ingest_requests)):
        times: dict[str, list[float]] = {label: [] for label in servers}
        cpus: dict[str, list[float]] = {label: [] for label in servers}
        client_cpu: dict[str, list[float]] = {label: [] for label in servers}
        for run in range(args.runs):
            for label in labels if run % 2 == 0 else labels[::-1]:
                server = servers[label]
                server.reset()
                cpu0 = server.cpu_s()
                measure, data = ingest(server.bulk_url, f"bench_{client}_{run}", csv_path)
                cpus[label].append(server.cpu_s() - cpu0)
                if data["message_count"] != args.rows:
                    raise RuntimeError(f"{label} {client}: expected {args.rows} rows, server counted {data}")
                times[label].append(measure.wall_s)
                client_cpu[label].append(measure.cpu_s)
        for label, runs in times.items():
            median, cpu = statistics.median(runs), statistics.median(cpus[label])
            out[label][f"ingest_{client}"] = {
                "median_s": round(median, 3), "rows_per_s": round(args.rows / median),
                "runs_s": [round(t, 3) for t in runs], "range_s": [round(min(runs), 3), round(max(runs), 3)],
                "server_cpu_s": round(cpu, 3), "rows_per_server_cpu_s": round(args.rows / cpu) if cpu else None,
                "client_cpu_s": round(statistics.median(client_cpu[label]), 3),
            }  # fmt: skip

    segments = {}
    for label, server in servers.items():
        server.reset()
        ingest_requests(server.bulk_url, "bench_scan", scan_csv)
        created = requests.post(
            f"{server.url}/api/segment",
            data='FILTER EXISTS email FROM user ALIAS bench_all WITH name = "bench all"',
            headers={"Authorization": TOKEN, "Content-Type": "text/plain"},
            timeout=60,
        )
        created.raise_for_status()
        segments[label] = created.json()["data"]["id"]
    times = {label: [] for label in servers}
    cpus = {label: [] for label in servers}
    pages = 0
    for run in range(args.runs):
        for label in labels if run % 2 == 0 else labels[::-1]:
            server = servers[label]
            cpu0 = server.cpu_s()
            seconds, rows, pages = scan_segment(server.url, segments[label])
            cpus[label].append(server.cpu_s() - cpu0)
            if rows != args.scan_rows:
                raise RuntimeError(f"{label}: scan returned {rows} rows, expected {args.scan_rows}")
            times[label].append(seconds)
    for label, runs in times.items():
        median, cpu = statistics.median(runs), statistics.median(cpus[label])
        out[label]["scan"] = {
            "median_s": round(median, 3), "rows_per_s": round(args.scan_rows / median), "pages": pages,
            "runs_s": [round(t, 3) for t in runs], "server_cpu_s": round(cpu, 3),
            "rows_per_server_cpu_s": round(args.scan_rows / cpu) if cpu else None,
        }  # fmt: skip

    times = {label: [] for label in servers}
    cpus = {label: [] for label in servers}
    for run in range(args.runs):
        for label in labels if run % 2 == 0 else labels[::-1]:
            server = servers[label]
            server.reset()
            cpu0 = server.cpu_s()
            seconds, counts = seed_users(server.url, args.seed_users)
            cpus[label].append(server.cpu_s() - cpu0)
            if counts["users"] != args.seed_users:
                raise RuntimeError(f"{label}: seeding reported {counts}")
            times[label].append(seconds)
    for label, server in servers.items():
        runs = times[label]
        out[label]["seed"] = {"median_s": round(statistics.median(runs), 3), "runs_s": [round(t, 3) for t in runs],
                              "server_cpu_s": round(statistics.median(cpus[label]), 3)}  # fmt: skip
        out[label]["server_peak_rss_mb"] = round(server.peak_rss_mb(), 1)
    return out


MEMORY_CHILD = """
import gc, json, os, sys, tracemalloc
from airflow_provider_lytics.emulator.persistence import StateDB
from airflow_provider_lytics.emulator.store import ProfileStore

def rss_kb():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))

n = int(sys.argv[1])
plans = ("free", "pro", "team", "enterprise")
records = ({"email": f"u{i}@example.com", "user_id": f"u-{i}", "first_name": f"First{i % 997}",
            "last_name": f"Last{i % 991}", "plan": plans[i % 4], "ltv": f"{(i * 37) % 10000}.{i % 100:02d}",
            "signup_ts": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00Z"} for i in range(n))
store = ProfileStore(StateDB(None))
gc.collect()
rss0 = rss_kb()
tracemalloc.start()
store.ingest("crm", records)
gc.collect()
traced = tracemalloc.get_traced_memory()[0]
tracemalloc.stop()
print(json.dumps({"profiles": store.profile_count(), "traced_bytes_per_profile": traced / n,
                  "rss_bytes_per_profile": (rss_kb() - rss0) * 1024 / n}))
"""


def memory_per_profile(count: int) -> dict:
    """Bytes per profile when ``count`` 7-field CRM profiles are held in memory (fresh process)."""
    measure = h.run_process([sys.executable, "-c", MEMORY_CHILD, str(count)],
                            env={**os.environ, "PYTHONPATH": str(h.ROOT)})  # fmt: skip
    data = dict(measure.inproc)
    data["peak_rss_mb"] = round(measure.peak_rss_mb, 1)
    data["projected_gb_per_million"] = round(data["rss_bytes_per_profile"] * 1e6 / 1e9, 2)
    return data


def report(label: str, figures: dict, args: argparse.Namespace, state: str) -> None:
    print(f"-- {label}")
    for client in ("curl", "requests"):
        r = figures[f"ingest_{client}"]
        line = f"ingest via {client:8s}: {r['rows_per_s']:>9,} rows/s  ({r['median_s']} s, runs {r['runs_s']})"
        print(f"{line}  target {INGEST_TARGET:,}; {r['rows_per_server_cpu_s']:,} rows per server CPU-s")
    s = figures["scan"]
    print(f"scan limit=100      : {s['rows_per_s']:>9,} rows/s  ({s['median_s']} s, {s['pages']} pages)  "
          f"target {SCAN_TARGET:,}; {s['rows_per_server_cpu_s']:,} rows per server CPU-s")  # fmt: skip
    print(f"seed {args.seed_users} users : {figures['seed']['median_s']} s  (runs {figures['seed']['runs_s']})")
    print(f"server peak RSS     : {figures['server_peak_rss_mb']} MB  (state in {state})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 run: proves the script works")
    parser.add_argument("--memory-profiles", type=int, default=0, help="also measure bytes per profile for N")
    parser.add_argument("--rows", type=int, default=200_000, help="CSV rows per ingest run")
    parser.add_argument("--scan-rows", type=int, default=100_000, help="segment members to scan")
    parser.add_argument("--seed-users", type=int, default=100_000, help="users for the seeding measurement")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median reported)")
    parser.add_argument("--db", action="store_true", help="serve with a SQLite state file instead of memory")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--baseline", type=Path, help="source tree of an emulator to measure alongside, run by run")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.scan_rows, args.seed_users, args.runs = 2000, 500, 500, 1
        args.memory_profiles = args.memory_profiles or 2000
    if shutil.which("curl") is None:
        parser.error("curl is needed for the baseline client")
    if args.baseline and not (args.baseline / "airflow_provider_lytics" / "emulator").is_dir():
        parser.error(f"--baseline {args.baseline} holds no airflow_provider_lytics/emulator package")

    state = "sqlite file" if args.db else "memory"
    results: dict[str, object] = {
        "rows": args.rows, "scan_rows": args.scan_rows, "seed_users": args.seed_users, "runs": args.runs,
        "state": state, "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "ingest.csv"
        results["csv_mb"] = round(write_csv(csv_path, args.rows, "u") / 1e6, 1)
        scan_csv = Path(tmp) / "scan.csv"
        write_csv(scan_csv, args.scan_rows, "s")
        sources = {"ours": None, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
        servers: dict[str, ServeProcess] = {}
        try:
            for label, source in sources.items():
                servers[label] = ServeProcess(Path(tmp) / f"{label}.db" if args.db else None, source)
            figures = measure(servers, args, csv_path, scan_csv)
            results["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        finally:
            for server in servers.values():
                server.stop()
    results.update(figures["ours"])
    if args.memory_profiles:
        results["memory"] = memory_per_profile(args.memory_profiles)
    if args.baseline:
        results["baseline"] = {"source": str(args.baseline), **figures["baseline"]}

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"CSV: {args.rows} rows, {results['csv_mb']} MB; {args.runs} runs each, medians")
        for label in figures:
            report(label, figures[label], args, state)
        print(f"load average        : {results['loadavg_before']} before, {results['loadavg_after']} after")
        if "memory" in results:
            print(f"memory per profile  : {results['memory']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
