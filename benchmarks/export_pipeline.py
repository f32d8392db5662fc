"""Audience export benchmark: the provider's overlapping pipeline vs the same stages run one after another.

An emulator child process holds a synthetic audience (``--users``, default 1,000,000, seeded straight into its
store). Then, against a real OpenSSH sshd on loopback:

* **pipeline**: ``AudienceExport`` scanning ``all_users`` (9 fields, 100 rows per page), CSV, gzip, PGP
  (gpg, ``--compress-algo none``), uploaded to SFTP, all stages overlapping; run in its own child process so its
  peak RSS (``ru_maxrss``) is its own.
* **sequential baseline** with plain tools: a bare ``requests`` scan loop writing CSV, then ``gzip -6``, then the
  gpg CLI, then the OpenSSH ``sftp`` CLI ``put``.

Goal: pipeline wall time <= 1.2 x the slowest baseline stage; pipeline peak RSS < 200 MB. The pipeline's upload
is verified (decrypted with the gpg CLI, gunzipped, lines counted).

    .venv/bin/python benchmarks/export_pipeline.py --users 1000000 [--json]
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


def _child(kind: str, env: dict, **kwargs: object) -> dict:
    cmd = [sys.executable, str(HERE), "--worker", kind]
    for key, value in kwargs.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _timed(cmd: list[str], **kw: object) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, **kw)  # type: ignore[call-overload]
    return time.perf_counter() - started


# ---------------------------------------------------------------- orchestration
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    for name in ("url", "token", "out", "pubkey", "remote"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        {"emulator": worker_emulator, "pipeline": worker_pipeline, "scan-csv": worker_scan_csv}[args.worker](args)
        return 0

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
        emu_cpu0 = _proc_cpu_s(emu.pid)
        scan = _child("scan-csv", env, url=info["url"], token=info["token"], out=csv_path)
        emu_cpu_scan = _proc_cpu_s(emu.pid) - emu_cpu0
        t_gzip = _timed(["sh", "-c", f"gzip -6 -c {csv_path} > {gz_path}"])
        fpr = next(
            line.split(":")[9]
            for line in subprocess.run(
                [*gpg, "--with-colons", "--list-keys"], check=True, capture_output=True, text=True
            ).stdout.splitlines()
            if line.startswith("fpr:")
        )
        t_gpg = _timed(
            [
                *gpg,
                "--trust-model",
                "always",
                "--compress-algo",
                "none",
                "-r",
                fpr,
                "-o",
                str(gpg_path),
                "--encrypt",
                str(gz_path),
            ]
        )
        sftp = [
            "sftp",
            "-q",
            "-i",
            str(key),
            "-P",
            str(port),
            "-o",
            f"UserKnownHostsFile={known}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-b",
            "-",
            f"{getpass.getuser()}@127.0.0.1",
        ]
        t_sftp = _timed(sftp, input=f"put {gpg_path} {remote}/baseline.csv.gz.gpg\n".encode())
        stages = {"scan_to_csv": scan["wall_s"], "gzip": t_gzip, "gpg": t_gpg, "sftp_put": t_sftp}
        sizes = {"csv_mb": csv_path.stat().st_size / 1e6, "gz_mb": gz_path.stat().st_size / 1e6}
        for p in (csv_path, gz_path, gpg_path):
            p.unlink()

        # the pipeline
        emu_cpu0 = _proc_cpu_s(emu.pid)
        load_before = os.getloadavg()[0]
        pipe = _child("pipeline", env, pubkey=pub, remote=remote)
        emu_cpu_pipe = _proc_cpu_s(emu.pid) - emu_cpu0
        uploaded = Path(pipe["path"])
        lines = int(
            subprocess.run(
                ["sh", "-c", f"{' '.join(gpg)} --decrypt {uploaded} 2>/dev/null | gzip -dc | wc -l"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        slowest = max(stages.values())
        report = {
            "users": args.users,
            "rows": pipe["rows"],
            "size_at_start": pipe["size_at_start"],
            "baseline_stages_s": {k: round(v, 2) for k, v in stages.items()},
            "baseline_total_s": round(sum(stages.values()), 2),
            "slowest_stage_s": round(slowest, 2),
            "pipeline_wall_s": round(pipe["wall_s"], 2),
            "pipeline_cpu_s": round(pipe["cpu_s"], 2),
            "pipeline_children_cpu_s": round(pipe["children_cpu_s"], 2),
            "pipeline_vs_slowest": round(pipe["wall_s"] / slowest, 3),
            "pipeline_rss_peak_mb": round(pipe["rss_peak_mb"], 1),
            # the task process and its children (scan process, gpg) together: PSS sampled every 20 ms
            "pipeline_tree_rss_peak_mb": round(pipe["tree_rss_peak_mb"], 1),
            "emulator_cpu_s": {"baseline_scan": round(emu_cpu_scan, 1), "pipeline": round(emu_cpu_pipe, 1)},
            "load_average_at_pipeline_start": round(load_before, 2),
            "cpu_cores": os.cpu_count(),
            "scan_loop_rss_peak_mb": round(scan["rss_peak_mb"], 1),
            "sizes_mb": {k: round(v, 1) for k, v in sizes.items()},
            "uploaded_mb": round(pipe["bytes"] / 1e6, 1),
            "verified_lines": lines,
            "verified": lines == pipe["rows"] + 1 and pipe["rows"] == scan["rows"],
            "goal_time_met": pipe["wall_s"] <= 1.2 * slowest,
            "goal_rss_met": max(pipe["rss_peak_mb"], pipe["tree_rss_peak_mb"]) < 200,
        }
        print(json.dumps(report, indent=None if args.json else 2))
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
