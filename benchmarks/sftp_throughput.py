"""SFTP throughput: this provider's engine vs the OpenSSH ``sftp`` CLI (and Airflow's SFTPHook), on the harness.

Starts a real OpenSSH sshd on a free loopback port (key auth, internal-sftp), creates a random file (1 GiB by
default), then times uploads and downloads separately, every side a whole process measured the same way
(``_harness.run_process``: wall including the SSH handshake, CPU of the process tree, peak RSS/PSS), the sides
alternating run by run:

* ``ours``: ``SftpSession`` with its defaults, the hook's path (fsync on the server before the rename for
  uploads, local fsync before ``os.replace`` for downloads); it also reports the in-process transfer time
  (``inproc_transfer_s``, after the connection is up);
* ``ours_no_fsync``: the same without fsync;
* ``cli_fsync``: ``sftp -f`` for uploads (``fsync@openssh.com`` after each file) and ``sftp`` then ``sync FILE``
  for downloads: the CLI at our durability. The goal (>= 0.8x) compares ``ours`` with it, whole process;
* ``cli``: plain ``sftp``, no fsync (compare with ``ours_no_fsync``);
* ``airflow_sftphook`` (``--hook-runs``, default 0): Airflow's paramiko SFTPHook.

    .venv/bin/python benchmarks/sftp_throughput.py --size-mb 1024 --runs 3
    .venv/bin/python benchmarks/sftp_throughput.py --quick

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
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

SSHD = "/usr/sbin/sshd"
HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- child-process workers


def worker_ours(args: argparse.Namespace) -> dict:
    # LYTICS_BENCH_CODE: the provider checkout to import (``--before`` points it at an older one).
    sys.path.insert(0, os.environ.get("LYTICS_BENCH_CODE") or str(ROOT))
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
        started = time.perf_counter()
        if args.op == "up":
            result = sftp.upload_file(args.local, args.remote, overwrite=True)
        else:
            result = sftp.download_file(args.remote, args.back)
        seconds = time.perf_counter() - started
    return {"transfer_s": seconds, "sha_ok": result.sha256 == args.sha256, "rss_peak_mb": _rss_mb()}


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
        started = time.perf_counter()
        if args.op == "up":
            hook.store_file(args.remote, args.local)
        else:
            hook.retrieve_file(args.remote, args.back)
        seconds = time.perf_counter() - started
    return {"transfer_s": seconds, "rss_peak_mb": _rss_mb()}


def _child(kind: str, env: dict, **kwargs: object) -> h.Measure:
    cmd = [sys.executable, str(HERE), "--worker", kind]
    for key, value in kwargs.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    return h.run_process(cmd, env=env)


def run_cli(base: list[str], target: str, command: str, *, fsync: bool, sync_file: str | None = None) -> h.Measure:
    """``sftp -b -`` with one command, as a whole process (sftp and the ssh it spawns)."""
    cmd = [*base, *(["-f"] if fsync else []), "-b", "-", target]
    if sync_file is None:
        return h.run_process(cmd, stdin_text=command + "\n")
    line = " ".join(map(shlex.quote, cmd)) + f" && sync {shlex.quote(sync_file)}"
    return h.run_process(["sh", "-c", line], stdin_text=command + "\n")


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
    h.add_common_args(parser, runs=3)
    parser.add_argument("--size-mb", type=int, default=1024, help="file size in MiB (default 1024)")
    parser.add_argument("--hook-runs", type=int, default=0, help="runs of Airflow's SFTPHook (slow; default 0)")
    parser.add_argument("--before", help="also run a 'before' side: this provider checkout (e.g. main), fsync on")
    parser.add_argument("--worker", choices=("ours", "hook"), help=argparse.SUPPRESS)
    for name in ("port", "user", "key", "host-key", "local", "remote", "back", "sha256", "fsync", "op"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.port = int(args.port)
        result = worker_ours(args) if args.worker == "ours" else worker_hook(args)
        print(json.dumps(result))
        return 0
    if args.quick:
        args.size_mb, args.runs, args.hook_runs = 8, 1, 0

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
        print(f"Creating a {args.size_mb} MiB file ...", file=sys.stderr, flush=True)
        sha = make_file(local, args.size_mb)
        size = local.stat().st_size
        shutil.copyfile(local, remote_dir / "down.bin")  # what every download reads
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        common = {"port": port, "user": user, "key": str(work / "id"), "host_key": str(host_pub),
                  "local": str(local), "sha256": sha}  # fmt: skip
        base = ["sftp", "-q", "-i", str(work / "id"), "-P", str(port), "-o", f"UserKnownHostsFile={known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]  # fmt: skip
        target = f"{user}@127.0.0.1"
        up_remote, down_remote, back = remote_dir / "up.bin", remote_dir / "down.bin", work / "back.bin"

        def ours(op: str, fsync: int, code: str | None = None) -> h.Measure:
            side_env = {**env, "LYTICS_BENCH_CODE": code} if code else env
            return _child("ours", side_env, op=op, remote=up_remote if op == "up" else down_remote, back=back,
                          fsync=fsync, **common)  # fmt: skip

        sides = {
            "up": {
                "ours": lambda _r: ours("up", 1),
                "cli_fsync": lambda _r: run_cli(base, target, f"put {local} {up_remote}", fsync=True),
                "ours_no_fsync": lambda _r: ours("up", 0),
                "cli": lambda _r: run_cli(base, target, f"put {local} {up_remote}", fsync=False),
            },
            "down": {
                "ours": lambda _r: ours("down", 1),
                "cli_fsync": lambda _r: run_cli(base, target, f"get {down_remote} {back}", fsync=False,
                                                sync_file=str(back)),
                "ours_no_fsync": lambda _r: ours("down", 0),
                "cli": lambda _r: run_cli(base, target, f"get {down_remote} {back}", fsync=False),
            },
        }  # fmt: skip
        if args.before:
            sides["up"]["before"] = lambda _r: ours("up", 1, args.before)
            sides["down"]["before"] = lambda _r: ours("down", 1, args.before)
        if args.hook_runs:
            sides["up"]["airflow_sftphook"] = lambda _r: _child("hook", env, op="up", remote=up_remote, back=back,
                                                                **common)  # fmt: skip
            sides["down"]["airflow_sftphook"] = lambda _r: _child("hook", env, op="down", remote=down_remote,
                                                                  back=back, **common)  # fmt: skip
        result: dict = {
            "size_bytes": size,
            "goal": "ours (fsync on) >= 0.8x cli_fsync, whole process wall (cli_fsync wall / ours wall)",
            "summary": {}, "ratios": {}, "cpu_s_per_gib": {}, "runs": {},
        }  # fmt: skip
        gib = size / 2**30
        for direction, group in sides.items():
            if not args.hook_runs:
                group.pop("airflow_sftphook", None)

            def cleanup(_name: str, _run: int, _m: h.Measure, d: str = direction) -> None:
                for path in (up_remote, back) if d == "up" else (back,):
                    path.unlink(missing_ok=True)

            measures = h.paired(group, args.runs, after_each=cleanup,
                                log=lambda line, d=direction: print(f"{d}: {line}", file=sys.stderr))  # fmt: skip
            summary = {n: h.summarize(ms, inproc_keys=("transfer_s",)) for n, ms in measures.items()}
            result["summary"][direction] = summary
            result["runs"][direction] = h.measures_json(measures)
            result["ratios"][direction] = {
                "ours_vs_cli_fsync_whole_process": h.ratio(summary["cli_fsync"], summary["ours"]),
                "ours_no_fsync_vs_cli_whole_process": h.ratio(summary["cli"], summary["ours_no_fsync"]),
                "ours_vs_cli_fsync_in_process": round(summary["cli_fsync"]["wall_s"]["median"]
                                                      / summary["ours"]["inproc_transfer_s"]["median"], 3),
            }  # fmt: skip
            result["cpu_s_per_gib"][direction] = {n: round(s["cpu_s"]["median"] / gib, 2) for n, s in summary.items()}
            if "before" in summary:
                result["ratios"][direction]["before_vs_cli_fsync_whole_process"] = h.ratio(
                    summary["cli_fsync"], summary["before"]
                )
                after = h.ratio(summary["before"], summary["ours"])
                result["ratios"][direction]["after_vs_before_whole_process"] = after
            checked = [n for n in ("ours", "ours_no_fsync", "before") if n in measures]
            if not all(m.inproc.get("sha_ok") for n in checked for m in measures[n]):
                print("WARNING: checksum mismatch in our transfers", file=sys.stderr)
                return 1
    finally:
        if sshd is not None:
            sshd.terminate()
            sshd.wait(timeout=5)
        shutil.rmtree(work, ignore_errors=True)
    h.report(args, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
