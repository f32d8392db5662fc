"""Raw event export benchmark: ``EventExport`` vs a naive curl loop paging the same endpoint into a file.

An emulator child process holds one stream of ``--events`` raw events (default 200,000; event times spread over
the 24 hours before a fixed instant, 2,000 distinct visitors). Both sides read every event of that day from
``GET /v2/stream/web/events`` (1,000 events per page) and leave a gzip'd file:

* **ours**: ``EventExport`` (full mode) writing NDJSON, gzip level 6, to a local directory, in its own child
  process; it reconciles the rows it wrote with the endpoint's ``total``.
* **curl**: a shell loop with curl following ``_next`` (cursor cut out with ``grep``/``cut``), appending each raw
  page body to a file, then ``gzip -6`` of that file: no per-event work at all, the floor for "page the API
  into a file".

Sides run as whole processes in alternating pairs (``_harness.paired``), measured by ``_harness.run_process``
(wall, CPU of the tree, peak RSS/PSS, load average). Both outputs are checked: the event count of each must equal
the number ingested.

    .venv/bin/python benchmarks/event_export.py --events 200000 --runs 3
    .venv/bin/python benchmarks/event_export.py --quick
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE.parent))

import _harness as h  # noqa: E402

END = datetime(2026, 3, 8, 0, 0, tzinfo=timezone.utc)
START = END - timedelta(days=1)
STREAM = "web"

CURL_LOOP = r"""
set -eu
out="$1"; page="$out.page"; next=""
: > "$out"
while :; do
  curl -sf -H "Authorization: $TOKEN" -o "$page" \
    "$URL/v2/stream/web/events?start_date=$START_MS&end_date=$END_MS&limit=1000${next:+&start=$next}"
  cat "$page" >> "$out"; echo >> "$out"
  next=$(grep -o '"_next":"[^"]*"' "$page" | tail -1 | cut -d'"' -f4)
  [ -n "$next" ] || break
done
rm -f "$page"
gzip -6 -f "$out"
"""


def worker_emulator(args: argparse.Namespace) -> None:
    """Ingest the events and serve until stdin closes (prints the URL and token when ready)."""
    from airflow_provider_lytics.emulator.server import EmulatorServer

    with EmulatorServer() as server:
        started = time.perf_counter()
        step = (END - START) / args.events
        batch: list[dict] = []
        for i in range(args.events):
            batch.append({"email": f"visitor{i % 2000}@example.com", "url": f"/page/{i % 97}", "ref": "search",
                          "_ts": (START + i * step).isoformat()})  # fmt: skip
            if len(batch) == 10_000:
                server.backend.store.ingest(STREAM, batch)
                batch = []
        if batch:
            server.backend.store.ingest(STREAM, batch)
        print(json.dumps({"url": server.url, "token": server.token, "ingest_s": time.perf_counter() - started}),
              flush=True)  # fmt: skip
        sys.stdin.read()


def worker_ours(args: argparse.Namespace) -> None:
    from airflow_provider_lytics.exports.destinations import LocalDestination
    from airflow_provider_lytics.exports.events import EventExport, EventExportSpec
    from airflow_provider_lytics.exports.outputs import FormatOptions
    from airflow_provider_lytics.hooks.lytics import LyticsHook

    spec = EventExportSpec(streams=[STREAM], start=START, end=END, fmt=FormatOptions(fmt="ndjson", compression="gzip"),
                           file_name="bench_{TIMESTAMP}", timestamp_format="%Y%m%dT%H%M%S%fZ")  # fmt: skip
    started, cpu0 = time.perf_counter(), time.process_time()
    result = EventExport(spec, LyticsHook(), LocalDestination(args.out)).run()
    print(json.dumps({"wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu0,
                      "rows": result.rows_written, "in_range": result.events_in_range[STREAM],
                      "path": result.files[0].path}))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    h.add_common_args(parser, runs=3)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        {"emulator": worker_emulator, "ours": worker_ours}[args.worker](args)
        return 0
    if args.quick:
        args.events, args.runs = 2000, 1
    if shutil.which("curl") is None or shutil.which("gzip") is None:
        print("needs curl and gzip on PATH", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="lytics-event-bench-"))
    emu = subprocess.Popen([sys.executable, str(HERE), "--worker", "emulator", "--events", str(args.events)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    try:
        info = json.loads(emu.stdout.readline())  # type: ignore[union-attr]
        print(f"emulator ingested {args.events} events in {info['ingest_s']:.1f} s", file=sys.stderr)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "URL": info["url"], "TOKEN": info["token"],
               "START_MS": str(int(START.timestamp() * 1000)), "END_MS": str(int(END.timestamp() * 1000)),
               "AIRFLOW_CONN_LYTICS_DEFAULT": json.dumps({"conn_type": "lytics", "host": info["url"],
                                                          "password": info["token"]})}  # fmt: skip
        counts: dict[str, list[int]] = {"ours": [], "curl": []}

        def ours(run: int) -> h.Measure:
            out = work / f"ours{run}"
            out.mkdir()
            measure = h.run_process(h.python_cmd(HERE, "--worker", "ours", "--out", out), env=env)
            with gzip.open(measure.inproc["path"], "rb") as fh:
                counts["ours"].append(sum(1 for _ in fh))
            shutil.rmtree(out)
            return measure

        def curl(run: int) -> h.Measure:
            out = work / f"curl{run}.json"
            measure = h.run_process(["bash", "-c", CURL_LOOP, "curl-loop", str(out)], env=env)
            with gzip.open(f"{out}.gz", "rt") as fh:
                counts["curl"].append(sum(line.count('"_event_id"') for line in fh))
            os.unlink(f"{out}.gz")
            return measure

        results = h.paired({"curl": curl, "ours": ours}, args.runs)
        summary = {"curl": h.summarize(results["curl"]), "ours": h.summarize(results["ours"], inproc_keys=("wall_s",))}
        verified = all(c == args.events for side in counts.values() for c in side)
        result = {
            "benchmark": "event_export", "events": args.events, "runs": args.runs, "verified": verified,
            "counts": counts, "summary": summary,
            "ratio_wall_curl_over_ours": h.ratio(summary["curl"], summary["ours"]),
            "events_per_s_ours": args.events / summary["ours"]["wall_s"]["median"],
            "events_per_s_curl": args.events / summary["curl"]["wall_s"]["median"],
            "environment": h.environment(), "measures": h.measures_json(results),
        }  # fmt: skip
        h.report(args, result)
        return 0 if verified else 1
    finally:
        if emu.stdin is not None:
            emu.stdin.close()
        try:
            emu.wait(timeout=30)
        except subprocess.TimeoutExpired:
            emu.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
