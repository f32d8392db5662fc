"""Content import: LyticsContentImportOperator vs a naive loop posting the same documents one by one.

Starts the emulator in its own process (``lytics-emulator serve``), writes an NDJSON file of documents (2,000 by
default, ~1 KB of text each), then, run by run and alternating (``_harness.paired``):

* ``naive``: a child Python process with one ``requests`` session posting each document in turn to
  ``/api/content/corpus`` (no checks, no retries, no rejects file): what a hand-written script does;
* ``ours``: the operator in a child process (read, check, ``--concurrency`` requests in flight, retries, counts);
* ``ours_c1``: the operator with one request in flight (what concurrency buys, everything else equal).

Every side is a whole process measured the same way (wall, CPU of the tree, peak RSS/PSS); the operator also
reports the in-process time of ``execute()`` (``inproc_execute_s``). The emulator is reset before each run and the
number of documents it holds afterwards is checked against the file.

    .venv/bin/python benchmarks/content_import.py --docs 2000 --runs 5
    .venv/bin/python benchmarks/content_import.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
WORDS = ("run", "marathon", "pace", "bike", "cycling", "saddle", "protein", "recipe", "meal", "hiking", "tent",
         "mountain", "travel", "flight", "hotel", "budget", "savings", "cloud", "app", "laptop", "fashion", "jacket",
         "the", "a", "of", "and", "to", "with", "for", "on", "in", "at")  # fmt: skip

NAIVE = """
import json, sys, requests
url, token, path = sys.argv[1:4]
session = requests.Session()
session.headers.update({"Authorization": token, "Content-Type": "application/json"})
sent = 0
with open(path, encoding="utf-8") as fh:
    for line in fh:
        if line.strip():
            session.post(url + "/api/content/corpus", data=line.encode(), timeout=60).raise_for_status()
            sent += 1
print(json.dumps({"sent": sent}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_documents(path: Path, docs: int) -> None:
    rnd = random.Random(11)
    with path.open("w", encoding="utf-8") as out:
        for i in range(docs):
            text = " ".join(rnd.choice(WORDS) for _ in range(180))
            doc = {"url": f"https://bench.example/post/{i}", "title": f"Post {i} {rnd.choice(WORDS)}",
                   "description": " ".join(rnd.choice(WORDS) for _ in range(12)), "text": text,
                   "author": f"Author {i % 17}"}  # fmt: skip
            out.write(json.dumps(doc) + "\n")


def worker(args: argparse.Namespace) -> None:
    """Child process: run the operator once and print JSON with its counts and execute() time."""
    sys.path.insert(0, str(ROOT))
    from airflow_provider_lytics.operators.content import LyticsContentImportOperator

    op = LyticsContentImportOperator(task_id="bench", path=args.file, concurrency=args.concurrency)
    start, cpu = time.perf_counter(), time.process_time()
    result = op.execute({})
    print(json.dumps({"execute_s": time.perf_counter() - start, "execute_cpu_s": time.process_time() - cpu,
                      "sent": result["sent"], "read": result["read"]}))  # fmt: skip


def run_ours(args: argparse.Namespace, api: str, concurrency: int) -> h.Measure:
    env = dict(os.environ)
    env["AIRFLOW_CONN_LYTICS_DEFAULT"] = json.dumps({"conn_type": "lytics", "host": api, "password": TOKEN})
    cmd = [sys.executable, __file__, "--worker", "--file", str(args.file), "--concurrency", str(concurrency)]
    return h.run_process(cmd, env=env)


def run_naive(args: argparse.Namespace, api: str) -> h.Measure:
    return h.run_process([sys.executable, "-c", NAIVE, api, TOKEN, str(args.file)])


def stored(api: str) -> int:
    resp = requests.post(f"{api}/api/segment/scan", params={"limit": 1}, data="FILTER * FROM content",
                         headers={"Authorization": TOKEN, "Content-Type": "text/plain"}, timeout=60)  # fmt: skip
    resp.raise_for_status()
    return int(resp.json()["total"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    h.add_common_args(parser, runs=5)
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if args.quick:
        args.docs, args.runs = 100, 1
    tmp = Path(tempfile.mkdtemp(prefix="lytics-content-bench-"))
    args.file = tmp / "documents.ndjson"
    make_documents(args.file, args.docs)
    port = _free_port()
    emulator = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_lytics.emulator.cli", "serve", "--port", str(port), "--token", TOKEN],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    api = f"http://127.0.0.1:{port}"
    held: dict[str, list[int]] = {}
    try:
        for _ in range(600):  # up to a minute or more on a loaded machine
            try:
                requests.get(f"{api}/api/account", headers={"Authorization": TOKEN}, timeout=5)
                break
            except requests.RequestException:  # not listening yet, or too slow to answer while it starts
                time.sleep(0.1)
        else:
            raise SystemExit(f"the emulator at {api} did not answer; is the port free and the machine not overloaded?")
        sides = {
            "naive": lambda _run: run_naive(args, api),
            "ours": lambda _run: run_ours(args, api, args.concurrency),
            "ours_c1": lambda _run: run_ours(args, api, 1),
        }
        results = h.paired(
            sides, args.runs, before_each=lambda _n, _r: requests.post(f"{api}/_emulator/reset", timeout=60),
            after_each=lambda name, _r, _m: held.setdefault(name, []).append(stored(api)),
            log=lambda line: print(line, file=sys.stderr),
        )  # fmt: skip
        summary = {name: h.summarize(ms, inproc_keys=("execute_s", "execute_cpu_s")) for name, ms in results.items()}
        result = {
            "docs": args.docs, "file_mb": round(args.file.stat().st_size / 1e6, 2), "runs": args.runs,
            "concurrency": args.concurrency,
            "ours_vs_naive_whole_process": h.ratio(summary["naive"], summary["ours"]),
            "ours_c1_vs_naive_whole_process": h.ratio(summary["naive"], summary["ours_c1"]),
            "docs_per_s_whole_process": {n: round(args.docs / s["wall_s"]["median"]) for n, s in summary.items()},
            "client_cpu_ms_per_doc": {n: round(s["cpu_s"]["median"] * 1000 / args.docs, 3) for n, s in summary.items()},
            "all_documents_stored": all(n == args.docs for counts in held.values() for n in counts),
            "summary": summary, "runs_detail": h.measures_json(results),
        }  # fmt: skip
        h.report(args, result)
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


if __name__ == "__main__":
    main()
