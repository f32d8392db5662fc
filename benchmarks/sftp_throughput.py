"""SFTP throughput: this provider's engine vs the OpenSSH ``sftp`` CLI vs Airflow's stock SFTPHook.

Starts a real OpenSSH sshd on a free loopback port (key auth, internal-sftp), creates a random file (1 GiB by
default), then moves it up and down with each client, interleaving the clients run by run so that background load
hits them alike. Reports medians in MB/s (10^6 bytes/s), our ratio to the CLI and the peak RSS of the process that
ran our engine (each client runs in its own child process so RSS figures are not mixed).

``ours`` is the default engine: it fsyncs every upload on the server (``fsync@openssh.com``) before the rename and
every download locally before ``os.replace``, which the CLI and SFTPHook do not do; ``ours_no_fsync`` does the
same work as the CLI (``SftpSession(fsync=False)``) and is the like-for-like throughput comparison.

    .venv/bin/python benchmarks/sftp_throughput.py --size-mb 1024 --runs 3 --hook-runs 1

Needs /usr/sbin/sshd and the sftp/ssh-keygen binaries (``apt-get install -y openssh-server openssh-client``).
Everything runs on loopback with the page cache warm; the numbers measure CPU cost per byte of each client.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"
HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- child-process workers


def worker_ours(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(ROOT))
    from airflow_provider_lytics.io.sftp import SftpSession
    from airflow_provider_lytics.io.sftp_config import SftpConfig

    config = SftpConfig(
        host="127.0.0.1",
        port=args.port,
        username=args.user,
        key_file=args.key,
        host_keys=(Path(args.host_key).read_text(),),
        look_for_keys=False,
    )
    with SftpSession(config, fsync=args.fsync == "1") as sftp:
        baseline = _rss_mb()
        cpu0 = time.process_time()
        up = sftp.upload_file(args.local, args.remote, overwrite=True)
        cpu1 = time.process_time()
        down = sftp.download_file(args.remote, args.back)
        cpu2 = time.process_time()
    return {
        "up_s": up.seconds,
        "down_s": down.seconds,
        "up_cpu_s": cpu1 - cpu0,
        "down_cpu_s": cpu2 - cpu1,
        "sha_ok": up.sha256 == down.sha256 == args.sha256,
        "rss_baseline_mb": baseline,
        "rss_peak_mb": _rss_mb(),
    }


def worker_hook(args: argparse.Namespace) -> dict:
    conn = {
        "conn_type": "sftp",
        "host": "127.0.0.1",
        "port": args.port,
        "login": args.user,
        "extra": {"key_file": args.key, "host_key": Path(args.host_key).read_text().strip(), "look_for_keys": "false"},
    }
    os.environ["AIRFLOW_CONN_BENCH_SFTP"] = json.dumps(conn)
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    hook = SFTPHook(ssh_conn_id="bench_sftp")
    with hook.get_managed_conn():
        baseline = _rss_mb()
        started, cpu0 = time.perf_counter(), time.process_time()
        hook.store_file(args.remote, args.local)
        up, cpu1 = time.perf_counter() - started, time.process_time()
        started = time.perf_counter()
        hook.retrieve_file(args.remote, args.back)
        down, cpu2 = time.perf_counter() - started, time.process_time()
    return {
        "up_s": up,
        "down_s": down,
        "up_cpu_s": cpu1 - cpu0,
        "down_cpu_s": cpu2 - cpu1,
        "rss_baseline_mb": baseline,
        "rss_peak_mb": _rss_mb(),
    }


def _child(kind: str, env: dict, **kwargs: object) -> dict:
    cmd = [sys.executable, str(HERE), "--worker", kind]
    for key, value in kwargs.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_cli(port: int, user: str, key: str, known_hosts: str, local: str, remote: str, back: str) -> dict:
    base = [
        "sftp", "-q", "-i", key, "-P", str(port), "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
    ]  # fmt: skip
    timings = {}
    for name, command in (("up", f"put {local} {remote}"), ("down", f"get {remote} {back}")):
        started = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([*base, "-b", "-", f"{user}@127.0.0.1"], input=command + "\n", text=True, check=True,
                       capture_output=True)  # fmt: skip
        timings[f"{name}_s"] = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # sftp and the ssh it spawns (both waited for)
        timings[f"{name}_cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return timings


# ---------------------------------------------------------------- orchestration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sshd(directory: Path, public_key: str) -> tuple[subprocess.Popen, int, Path]:
    host_key = directory / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    (directory / "authorized_keys").write_text(public_key)
    port = _free_port()
    config = directory / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {host_key}\nPidFile {directory / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {directory / 'authorized_keys'}\nStrictModes no\nUsePAM no\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nSubsystem sftp internal-sftp\nLogLevel ERROR\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port, Path(str(host_key) + ".pub")
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise SystemExit(f"sshd did not start: {err}") from None
            time.sleep(0.05)


def make_file(path: Path, size_mb: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        for _ in range(size_mb):
            chunk = os.urandom(1024 * 1024)  # incompressible
            digest.update(chunk)
            handle.write(chunk)
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="file size in MiB (default 1024)")
    parser.add_argument("--runs", type=int, default=3, help="runs of ours and of the CLI (default 3)")
    parser.add_argument("--hook-runs", type=int, default=1, help="runs of Airflow's SFTPHook (slow; default 1)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--worker", choices=("ours", "hook"), help=argparse.SUPPRESS)
    for name in ("port", "user", "key", "host-key", "local", "remote", "back", "sha256", "fsync"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.port = int(args.port)
        result = worker_ours(args) if args.worker == "ours" else worker_hook(args)
        print(json.dumps(result))
        return 0

    for tool in (SSHD, shutil.which("sftp"), shutil.which("ssh-keygen")):
        if not tool or not Path(tool).exists():
            raise SystemExit("Needs OpenSSH: apt-get install -y openssh-server openssh-client")
    work = Path(tempfile.mkdtemp(prefix="sftp-bench-"))
    sshd = None
    try:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "id")], check=True)
        sshd, port, host_pub = start_sshd(work, (work / "id.pub").read_text())
        known_hosts = work / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub.read_text()}")
        user = getpass.getuser()
        local, remote_dir = work / "source.bin", work / "remote"
        remote_dir.mkdir()
        print(f"Creating a {args.size_mb} MiB file ...", flush=True)
        sha = make_file(local, args.size_mb)
        size = local.stat().st_size
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        common = {"port": port, "user": user, "key": str(work / "id"), "host_key": str(host_pub),
                  "local": str(local), "sha256": sha}  # fmt: skip
        results: dict[str, list[dict]] = {"ours": [], "ours_no_fsync": [], "cli": [], "airflow_sftphook": []}
        for run in range(args.runs):
            for name, fsync in (("ours", 1), ("ours_no_fsync", 0)):
                remote, back = remote_dir / f"{name}-{run}.bin", work / f"back-{name}.bin"
                results[name].append(_child("ours", env, remote=remote, back=back, fsync=fsync, **common))
                remote.unlink()
            remote, back = remote_dir / f"cli-{run}.bin", work / "back-cli.bin"
            results["cli"].append(run_cli(port, user, str(work / "id"), str(known_hosts), str(local), str(remote),
                                          str(back)))  # fmt: skip
            remote.unlink()
            print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]}" for k, v in results.items() if v), flush=True)
        for run in range(args.hook_runs):
            remote, back = remote_dir / f"hook-{run}.bin", work / "back-hook.bin"
            results["airflow_sftphook"].append(_child("hook", env, remote=remote, back=back, **common))
            remote.unlink()
            print(f"hook run {run + 1}: {results['airflow_sftphook'][-1]}", flush=True)
    finally:
        if sshd is not None:
            sshd.terminate()
            sshd.wait(timeout=5)
        shutil.rmtree(work, ignore_errors=True)

    summary: dict[str, dict] = {}
    for name, runs in results.items():
        if not runs:
            continue
        up = statistics.median(r["up_s"] for r in runs)
        down = statistics.median(r["down_s"] for r in runs)
        summary[name] = {
            "runs": len(runs),
            "up_mb_s": size / 1e6 / up,
            "down_mb_s": size / 1e6 / down,
            "up_cpu_s_per_gb": statistics.median(r["up_cpu_s"] for r in runs) / (size / 1e9),
            "down_cpu_s_per_gb": statistics.median(r["down_cpu_s"] for r in runs) / (size / 1e9),
        }
        if "rss_peak_mb" in runs[0]:
            summary[name]["rss_peak_mb"] = max(r["rss_peak_mb"] for r in runs)
            summary[name]["rss_baseline_mb"] = max(r["rss_baseline_mb"] for r in runs)
    cli = summary["cli"]
    print(f"\nFile: {size / 1e6:.0f} MB, loopback OpenSSH sshd, medians")
    header = (
        "client",
        "runs",
        "upload MB/s",
        "download MB/s",
        "up/CLI",
        "down/CLI",
        "CPU s/GB up",
        "down",
        "peak RSS MB",
    )
    print("{:<18}{:>5}{:>13}{:>15}{:>8}{:>10}{:>13}{:>6}{:>13}".format(*header))
    for name, row in summary.items():
        print(
            f"{name:<18}{row['runs']:>5}{row['up_mb_s']:>13.1f}{row['down_mb_s']:>15.1f}"
            f"{row['up_mb_s'] / cli['up_mb_s']:>8.2f}{row['down_mb_s'] / cli['down_mb_s']:>10.2f}"
            f"{row['up_cpu_s_per_gb']:>13.2f}{row['down_cpu_s_per_gb']:>6.2f}"
            f"{row.get('rss_peak_mb', float('nan')):>13.1f}"
        )
    if not all(r.get("sha_ok") for r in results["ours"] + results["ours_no_fsync"]):
        print("WARNING: checksum mismatch in our transfers")
        return 1
    if args.json:
        Path(args.json).write_text(json.dumps({"size_bytes": size, "summary": summary, "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
