"""Shared benchmark harness: every side runs as a whole process with the same boundaries, measured the same way.

Why: timing ours inside a process but the baseline (curl, sftp, gpg) as a whole process flatters us. Here every
measured command is a child process; the harness records, for its whole process tree:

* wall time (spawn to exit, ``perf_counter``);
* CPU user + sys of the tree (``os.wait4`` of the child: its own plus every descendant it waited for);
* peak RSS summed over the tree, and peak PSS where ``/proc/<pid>/smaps_rollup`` is readable (sampled every
  20 ms, so short peaks can be missed: the figure is a lower bound);
* the 1-minute load average before and after the run;
* ``inproc``: what the child itself reports in a last stdout line of JSON (our in-process figure, e.g. the time
  of ``execute()`` alone), kept beside the whole-process figure.

Sides run in alternating pairs (A B, B A, A B, ...) so a burst of load on the shared machine weighs on both;
summaries are medians with min/max ranges. ``add_common_args`` gives every script ``--runs``, ``--quick`` and
``--json``. Use :func:`report` to print the summary (stderr) and the JSON (stdout or ``--json`` file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_S = 0.02


@dataclass
class Measure:
    """One whole-process run of one side."""

    wall_s: float
    cpu_s: float  # user + sys of the process tree
    user_s: float
    sys_s: float
    peak_rss_mb: float  # summed over the tree, sampled
    peak_pss_mb: float | None
    load_before: float
    load_after: float
    returncode: int
    inproc: dict[str, Any] = field(default_factory=dict)
    stdout: str = ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("stdout")
        return data


def load_average() -> float:
    return os.getloadavg()[0]


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                kids.extend(int(x) for x in fh.read().split())
        except OSError:
            pass
    return kids


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    seen, todo = [], [pid]
    while todo:
        current = todo.pop()
        seen.append(current)
        todo.extend(_children(current))
    return seen


def _memory_kb(pid: int) -> tuple[int, int | None]:
    rss = 0
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                    break
    except OSError:
        return 0, None
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return rss, int(line.split()[1])
    except OSError:
        pass
    return rss, None


class TreeSampler:
    """Peak RSS (and PSS where readable) summed over a process tree, sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss_kb = 0
        self.peak_pss_kb: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        rss_total, pss_total, pss_ok = 0, 0, True
        for pid in process_tree(self.pid):
            rss, pss = _memory_kb(pid)
            rss_total += rss
            if pss is None:
                pss_ok = False
            else:
                pss_total += pss
        self.peak_rss_kb = max(self.peak_rss_kb, rss_total)
        if pss_ok and rss_total:
            self.peak_pss_kb = max(self.peak_pss_kb or 0, pss_total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_S)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except ValueError:
                return {}
    return {}


def run_process(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stdin_text: str | None = None,
    timeout: float = 3600,
    check: bool = True,
) -> Measure:
    """Run ``cmd`` as a child process and measure its whole tree (see the module docstring)."""
    load_before = load_average()
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: list[str] = []
    err: list[str] = []
    readers = [
        threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True),  # type: ignore[union-attr]
        threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True),  # type: ignore[union-attr]
    ]
    for reader in readers:
        reader.start()
    with TreeSampler(proc.pid) as sampler:
        if stdin_text is not None:
            proc.stdin.write(stdin_text)  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # blocks: the exit is seen at once, no polling delay
        finally:
            killer.cancel()
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join(timeout=10)
    stdout, stderr = "".join(out), "".join(err)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {stderr.strip()[-2000:]}")
    return Measure(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        peak_rss_mb=sampler.peak_rss_kb / 1024,
        peak_pss_mb=None if sampler.peak_pss_kb is None else sampler.peak_pss_kb / 1024,
        load_before=load_before,
        load_after=load_average(),
        returncode=proc.returncode,
        inproc=_last_json(stdout),
        stdout=stdout,
    )


def python_cmd(script: str | os.PathLike[str], *args: object) -> list[str]:
    """A child Python process running ``script`` with this interpreter (same venv for every side)."""
    return [sys.executable, os.fspath(script), *(str(a) for a in args)]


def paired(
    sides: Mapping[str, Callable[[int], Measure]],
    runs: int,
    *,
    before_each: Callable[[str, int], None] | None = None,
    after_each: Callable[[str, int, Measure], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, list[Measure]]:
    """Run every side ``runs`` times, the order reversed every other round (A B, B A, ...)."""
    names = list(sides)
    results: dict[str, list[Measure]] = {name: [] for name in names}
    for run in range(runs):
        for name in names if run % 2 == 0 else list(reversed(names)):
            if before_each is not None:
                before_each(name, run)
            measure = sides[name](run)
            if after_each is not None:
                after_each(name, run, measure)
            results[name].append(measure)
            if log is not None:
                log(f"run {run + 1} {name}: wall {measure.wall_s:.3f} s, cpu {measure.cpu_s:.3f} s, "
                    f"rss {measure.peak_rss_mb:.0f} MB, load {measure.load_before:.1f}")  # fmt: skip
    return results


def stats(values: Sequence[float]) -> dict[str, float]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def summarize(measures: Sequence[Measure], *, inproc_keys: Sequence[str] = ()) -> dict[str, Any]:
    """Medians and ranges of one side's runs."""
    out: dict[str, Any] = {
        "wall_s": stats([m.wall_s for m in measures]),
        "cpu_s": stats([m.cpu_s for m in measures]),
        "peak_rss_mb": stats([m.peak_rss_mb for m in measures]),
        "load": stats([m.load_before for m in measures] + [m.load_after for m in measures]),
    }
    pss = [m.peak_pss_mb for m in measures if m.peak_pss_mb is not None]
    if pss:
        out["peak_pss_mb"] = stats(pss)
    for key in inproc_keys:
        vals = [m.inproc[key] for m in measures if isinstance(m.inproc.get(key), (int, float))]
        if vals:
            out[f"inproc_{key}"] = stats(vals)
    return out


def ratio(baseline: Mapping[str, Any], ours: Mapping[str, Any], key: str = "wall_s") -> float | None:
    """Speed of ours relative to the baseline: baseline median time / our median time (>1 = we are faster)."""
    b, o = baseline.get(key, {}).get("median"), ours.get(key, {}).get("median")
    return round(b / o, 3) if b and o else None


def add_common_args(parser: argparse.ArgumentParser, runs: int = 3) -> None:
    parser.add_argument("--runs", type=int, default=runs, help=f"runs per side, alternating (default {runs})")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 run: proves the script works (~1 min)")
    parser.add_argument("--json", help="write the JSON result to this file (default: stdout)")


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_start": os.getloadavg(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _print_summary(summaries: Mapping[str, Any], prefix: str) -> None:
    for name, summary in summaries.items():
        if not isinstance(summary, Mapping):
            continue
        if "wall_s" not in summary:
            _print_summary(summary, f"{prefix}{name} ")
            continue
        parts = []
        for key in ("wall_s", "cpu_s", "peak_rss_mb"):
            s = summary.get(key)
            if s:
                parts.append(f"{key} {s['median']:.3f} [{s['min']:.3f}-{s['max']:.3f}]")
        print(f"{prefix + name:<28} " + ", ".join(parts), file=sys.stderr)


def report(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """Print a short table to stderr and the JSON to ``--json`` (or stdout)."""
    result.setdefault("environment", environment())
    result["environment"]["load_end"] = os.getloadavg()
    _print_summary(result.get("summary", {}), "")
    text = json.dumps(result, indent=2, default=str)
    if args.json:
        Path(args.json).write_text(text)
    else:
        print(text)


def measures_json(results: Mapping[str, Sequence[Measure]]) -> dict[str, list[dict[str, Any]]]:
    return {name: [m.to_json() for m in runs] for name, runs in results.items()}
