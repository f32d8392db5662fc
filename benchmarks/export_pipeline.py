"""Audience export benchmark: the provider's overlapping pipeline vs the same stages run one after another.

An emulator child process holds a synthetic audience (``--users``, default 1,000,000, seeded straight into its
store). Then, against a real OpenSSH sshd on loopback:

* **pipeline**: ``AudienceExport`` scanning ``all_users`` (9 fields, 100 rows per page), CSV, gzip, PGP
  (gpg, ``--compress-algo none``), uploaded to SFTP, all stages overlapping; run in its own child process so its
  peak RSS (``ru_maxrss``) is its own.
* **sequential baseline** with plain tools: a bare ``requests`` scan loop writing CSV, then ``gzip -6``, then the
  gpg CLI, then the OpenSSH ``sftp`` CLI ``put``.

Every stage and the pipeline run as whole processes measured by ``_harness.run_process`` (wall, CPU of the
tree, peak RSS/PSS of the tree); the baseline and the pipeline alternate run by run (``--runs``), so load on the
shared machine weighs on both. Goal: pipeline whole-process wall <= 1.2 x the slowest baseline stage (whole
process); pipeline tree peak RSS < 200 MB. The pipeline's in-process wall time is reported beside it. The
pipeline's upload is verified (decrypted with the gpg CLI, gunzipped, lines counted).

    .venv/bin/python benchmarks/export_pipeline.py --users 1000000 --runs 3
    .venv/bin/python benchmarks/export_pipeline.py --quick
"""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE.parent))

import _harness as h  # noqa: E402

FIELDS = [
    "user_id",
    "email",
    "first_name",
    "last_name",
    "country",
    "plan",
    "lifetime_value",
    "interests",
    "signup_date",
]
SEGMENT = "all_users"


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- child processes
def worker_emulator(args: argparse.Namespace) -> None:
    """Seed and serve until stdin closes (prints the URL and token when ready)."""
    from airflow_provider_lytics.emulator.seed import seed_population
    from airflow_provider_lytics.emulator.server import EmulatorServer

    with EmulatorServer() as server:
        started = time.perf_counter()
        counts = seed_population(server.backend.store, args.users)
        print(
            json.dumps(
                {
                    "url": server.url,
                    "token": server.token,
                    "seed_s": time.perf_counter() - started,
                    "profiles": counts["profiles"],
                }
            ),
            flush=True,
        )
        sys.stdin.read()


def _pss_kb(pid: int | str) -> int:
    """Proportional set size: shared pages split between the processes sharing them, so a sum is honest."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cmdline(pid: str) -> bytes:
    """A child between vfork and exec still shares (and shows) our memory and command line: skip it."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _children(pid: int) -> list[str]:
    out: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += (task / "children").read_text().split()
        except OSError:
            continue
    return out


class TreeRssSampler(threading.Thread):
    """Peak of (this process + all its live children) memory, as PSS sampled every 20 ms from /proc.

    ``ru_maxrss`` cannot give this: a child's figure includes the parent's pages from before its exec, and a
    sum of RSS counts pages shared after a fork twice."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kb = 0
        self.stop = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        own_cmdline = Path(f"/proc/{me}/cmdline").read_bytes()
        while not self.stop.wait(0.02):
            total = _pss_kb(me) + sum(_pss_kb(c) for c in _children(me) if _cmdline(c) != own_cmdline)
            self.peak_kb = max(self.peak_kb, total)


def worker_pipeline(args: argparse.Namespace) -> None:
    from airflow_provider_lytics.exports.destinations import SftpDestination
    from airflow_provider_lytics.exports.outputs import EncryptionOptions, FormatOptions
    from airflow_provider_lytics.exports.runner import AudienceExport, ExportSpec
    from airflow_provider_lytics.hooks.lytics import LyticsHook
    from airflow_provider_lytics.io.pgp import PgpCipher

    cipher = PgpCipher(public_key=Path(args.pubkey).read_text())
    spec = ExportSpec(
        segment=SEGMENT,
        fields=FIELDS,
        fmt=FormatOptions(compression="gzip"),
        encryption=EncryptionOptions(pgp=cipher, compress=False),
        file_name="bench_{TIMESTAMP}",
    )
    dest = SftpDestination("bench_sftp", args.remote)
    sampler = TreeRssSampler()
    sampler.start()
    started = time.perf_counter()
    cpu0 = time.process_time()
    try:
        result = AudienceExport(spec, LyticsHook(), dest).run()
    finally:
        dest.close()
    sampler.stop.set()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the scan process and gpg
    print(
        json.dumps(
            {
                "wall_s": time.perf_counter() - started,
                "cpu_s": time.process_time() - cpu0,
                "children_cpu_s": children.ru_utime + children.ru_stime,
                "tree_rss_peak_mb": sampler.peak_kb / 1024,
                "rows": result.rows_written,
                "size_at_start": result.size_at_start,
                "bytes": result.files[0].bytes,
                "path": result.files[0].path,
                "rss_peak_mb": _maxrss_mb(),
            }
        )
    )


def worker_scan_csv(args: argparse.Namespace) -> None:
    """The plain-tool scan: a requests loop following ``_next``, writing CSV rows."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = args.token
    rows = 0
    started = time.perf_counter()
    with open(args.out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        start = None
        while True:
            params = {"limit": 100, "fields": ",".join(FIELDS), **({"start": start} if start else {})}
            body = session.get(f"{args.url}/api/segment/{SEGMENT}/scan", params=params, timeout=60).json()
            for r in body["data"]:
                writer.writerow(["|".join(v) if isinstance(v := r.get(f), list) else (v or "") for f in FIELDS])
            rows += len(body["data"])
            start = body.get("_next")
            if not start or not body["data"]:
                break
    print(json.dumps({"wall_s": time.perf_counter() - started, "rows": rows, "rss_peak_mb": _maxrss_mb()}))


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (from /proc), to show what the emulator itself costs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _child(kind: str, env: dict, **kwargs: object) -> h.Measure:
    cmd = [sys.executable, str(HERE), "--worker", kind]
    for key, value in kwargs.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    return h.run_process(cmd, env=env)


# ---------------------------------------------------------------- orchestration
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    h.add_common_args(parser, runs=3)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    for name in ("url", "token", "out", "pubkey", "remote"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        {"emulator": worker_emulator, "pipeline": worker_pipeline, "scan-csv": worker_scan_csv}[args.worker](args)
        return 0
    if args.quick:
        args.users, args.runs = 2000, 1

    from sftp_throughput import start_sshd

    work = Path(tempfile.mkdtemp(prefix="lytics-export-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        # gpg key pair (recipient) and SSH client key
        home = work / "gnupg"
        home.mkdir(mode=0o700)
        spec = (
            "Key-Type: EDDSA\nKey-Curve: ed25519\nSubkey-Type: ECDH\nSubkey-Curve: cv25519\n"
            "Name-Real: Export bench\nName-Email: bench@example.com\nExpire-Date: 0\n%no-protection\n%commit\n"
        )
        gpg = ["gpg", "--homedir", str(home), "--batch", "--no-tty"]
        subprocess.run([*gpg, "--gen-key"], input=spec.encode(), check=True, capture_output=True)
        pub = work / "recipient.asc"
        pub.write_bytes(subprocess.run([*gpg, "--armor", "--export"], check=True, capture_output=True).stdout)
        key = work / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        sshd_dir = work / "sshd"
        sshd_dir.mkdir()
        sshd, port, host_pub = start_sshd(sshd_dir, (work / "id_ed25519.pub").read_text())
        procs.append(sshd)
        host_line = " ".join(host_pub.read_text().split()[:2])
        known = work / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {host_line}\n")
        remote = work / "remote"
        remote.mkdir()

        # emulator with the audience
        emu = subprocess.Popen(
            [sys.executable, str(HERE), "--worker", "emulator", "--users", str(args.users)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(emu)
        info = json.loads(emu.stdout.readline())  # type: ignore[union-attr]
        print(f"emulator seeded {info['profiles']} profiles in {info['seed_s']:.1f} s", file=sys.stderr)
        env = dict(os.environ)
        env["AIRFLOW_CONN_LYTICS_DEFAULT"] = json.dumps(
            {"conn_type": "lytics", "host": info["url"], "password": info["token"]}
        )
        env["AIRFLOW_CONN_BENCH_SFTP"] = json.dumps(
            {
                "conn_type": "sftp",
                "host": "127.0.0.1",
                "port": port,
                "login": getpass.getuser(),
                "extra": {"key_file": str(key), "host_key": host_line, "look_for_keys": "false"},
            }
        )
        env["PYTHONPATH"] = str(ROOT)

        # sequential baseline with plain tools
        csv_path, gz_path, gpg_path = work / "scan.csv", work / "scan.csv.gz", work / "scan.csv.gz.gpg"
        fpr = next(
            line.split(":")[9]
            for line in subprocess.run(
                [*gpg, "--with-colons", "--list-keys"], check=True, capture_output=True, text=True
            ).stdout.splitlines()
            if line.startswith("fpr:")
        )
        gpg_cmd = [*gpg, "--yes", "--trust-model", "always", "--compress-algo", "none", "-r", fpr,
                   "-o", str(gpg_path), "--encrypt", str(gz_path)]  # fmt: skip
        sftp = ["sftp", "-q", "-i", str(key), "-P", str(port), "-o", f"UserKnownHostsFile={known}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-b", "-",
                f"{getpass.getuser()}@127.0.0.1"]  # fmt: skip
        sizes: dict[str, float] = {}
        emu_cpu: dict[str, list[float]] = {"baseline_scan": [], "pipeline": []}

        def baseline_once() -> dict[str, h.Measure]:
            cpu0 = _proc_cpu_s(emu.pid)
            stages = {"scan_to_csv": _child("scan-csv", env, url=info["url"], token=info["token"], out=csv_path)}
            emu_cpu["baseline_scan"].append(_proc_cpu_s(emu.pid) - cpu0)
            stages["gzip"] = h.run_process(["sh", "-c", f"gzip -6 -c {csv_path} > {gz_path}"])
            stages["gpg"] = h.run_process(gpg_cmd)
            stages["sftp_put"] = h.run_process(sftp, stdin_text=f"put {gpg_path} {remote}/baseline.csv.gz.gpg\n")
            sizes.update(csv_mb=csv_path.stat().st_size / 1e6, gz_mb=gz_path.stat().st_size / 1e6)
            for path in (csv_path, gz_path, gpg_path, remote / "baseline.csv.gz.gpg"):
                path.unlink(missing_ok=True)
            return stages

        def pipeline_once() -> h.Measure:
            for old in remote.glob("*"):
                old.unlink()
            cpu0 = _proc_cpu_s(emu.pid)
            measure = _child("pipeline", env, pubkey=pub, remote=remote)
            emu_cpu["pipeline"].append(_proc_cpu_s(emu.pid) - cpu0)
            return measure

        baseline_runs: list[dict[str, h.Measure]] = []
        pipeline_runs: list[h.Measure] = []
        for run in range(args.runs):
            order = ("baseline", "pipeline") if run % 2 == 0 else ("pipeline", "baseline")
            for side in order:
                if side == "baseline":
                    baseline_runs.append(baseline_once())
                else:
                    pipeline_runs.append(pipeline_once())
                print(f"run {run + 1} {side} done, load {os.getloadavg()[0]:.1f}", file=sys.stderr)
        pipe = pipeline_runs[-1].inproc
        uploaded = Path(pipe["path"])
        lines = int(
            subprocess.run(
                ["sh", "-c", f"{' '.join(gpg)} --decrypt {uploaded} 2>/dev/null | gzip -dc | wc -l"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        stage_summary = {name: h.summarize([r[name] for r in baseline_runs]) for name in baseline_runs[0]}
        pipe_summary = h.summarize(pipeline_runs, inproc_keys=("wall_s", "cpu_s", "children_cpu_s"))
        slowest_name = max(stage_summary, key=lambda n: stage_summary[n]["wall_s"]["median"])
        slowest = stage_summary[slowest_name]["wall_s"]["median"]
        pipe_wall = pipe_summary["wall_s"]["median"]
        tree_rss = max(m.peak_rss_mb for m in pipeline_runs)
        report = {
            "users": args.users,
            "rows": pipe["rows"],
            "size_at_start": pipe["size_at_start"],
            "goal": "pipeline whole-process wall <= 1.2 x slowest baseline stage (whole process); tree RSS < 200 MB",
            "baseline_stages_s": {k: round(v["wall_s"]["median"], 2) for k, v in stage_summary.items()},
            "baseline_total_s": round(sum(v["wall_s"]["median"] for v in stage_summary.values()), 2),
            "slowest_stage": slowest_name,
            "slowest_stage_s": round(slowest, 2),
            "pipeline_wall_s": round(pipe_wall, 2),
            "pipeline_inproc_wall_s": round(pipe_summary["inproc_wall_s"]["median"], 2),
            "pipeline_tree_cpu_s": round(pipe_summary["cpu_s"]["median"], 2),
            "pipeline_vs_slowest": round(pipe_wall / slowest, 3),
            "pipeline_inproc_vs_slowest": round(pipe_summary["inproc_wall_s"]["median"] / slowest, 3),
            "pipeline_tree_rss_peak_mb": round(tree_rss, 1),
            "pipeline_tree_pss_peak_mb": pipe_summary.get("peak_pss_mb", {}).get("max"),
            "pipeline_inproc_tree_rss_peak_mb": round(pipe["tree_rss_peak_mb"], 1),
            "emulator_cpu_s": {k: [round(x, 2) for x in v] for k, v in emu_cpu.items()},
            "sizes_mb": {k: round(v, 1) for k, v in sizes.items()},
            "uploaded_mb": round(pipe["bytes"] / 1e6, 1),
            "verified_lines": lines,
            "verified": lines == pipe["rows"] + 1 and pipe["rows"] == baseline_runs[-1]["scan_to_csv"].inproc["rows"],
            "goal_time_met": pipe_wall <= 1.2 * slowest,
            "goal_rss_met": tree_rss < 200,
            "summary": {"pipeline": pipe_summary, **{f"baseline_{k}": v for k, v in stage_summary.items()}},
        }
        h.report(args, report)
        return 0
    finally:
        for proc in procs:
            if proc.stdin:
                proc.stdin.close()
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        subprocess.run(["gpgconf", "--homedir", str(work / "gnupg"), "--kill", "all"], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
