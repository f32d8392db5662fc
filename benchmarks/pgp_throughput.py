"""PGP throughput: the provider's file-to-file encrypt/decrypt vs the gpg CLI on the same file (harness).

Every side is a whole process measured by ``_harness.run_process`` (wall, CPU of the tree, peak RSS/PSS):

* ``ours``: a Python process calling ``PgpCipher.encrypt_file``/``decrypt_file`` path to path (gpg reads and writes
  the files itself; temporary name, writeback while gpg writes, fsync, rename); it also reports ``op_s``, the
  in-process time of the call alone (no interpreter start or imports);
* ``gpg``: the gpg CLI with the key already in its key ring, no fsync;
* ``gpg_sync``: the same followed by ``sync FILE`` (fsync of the output): the CLI at our durability.
  ``gpg_sync`` minus ``gpg`` is the fsync cost, measured separately.

The sides alternate run by run. With ``--stream``, the streamed decrypt of the imports (ciphertext written from
Python into ``open_decryptor``, plaintext into an unnamed spool file) is timed as a whole process (``ours_stream``)
against ``gpg_pipe`` (``cat FILE | gpg -d -o OUT``, gpg fed through a pipe). With ``--small N``, one process
encrypts and decrypts N 1 KiB files with a key ring reused for all of them (``reused_ring``, the hook's path)
and with a fresh ring per call (``ring_per_call``): the per-file fixed cost.

    .venv/bin/python benchmarks/pgp_throughput.py --size-mb 512 --runs 5 --no-compress
    .venv/bin/python benchmarks/pgp_throughput.py --quick
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from shlex import quote as shlex_quote

# LYTICS_BENCH_CODE: the provider checkout a worker imports (``--before`` points it at an older one).
sys.path.insert(0, os.environ.get("LYTICS_BENCH_CODE") or str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

KEY_SPECS = {
    "ed": "Key-Type: EDDSA\nKey-Curve: ed25519\nSubkey-Type: ECDH\nSubkey-Curve: cv25519\n",
    "rsa": "Key-Type: RSA\nKey-Length: 3072\nSubkey-Type: RSA\nSubkey-Length: 3072\n",
}


def gpg(home: Path, *args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", *args],
        input=stdin,
        capture_output=True,
        check=True,
    ).stdout


def make_key(home: Path, kind: str, passphrase: str = "") -> tuple[str, str, str]:
    """A key pair in the CLI's ring; with ``passphrase`` the exported private key is protected by it (gpg's
    default S2K), as partners' keys are."""
    home.mkdir(mode=0o700)
    (home / "gpg-agent.conf").write_text("allow-loopback-pinentry\n")
    protection = f"Passphrase: {passphrase}\n" if passphrase else "%no-protection\n"
    spec = f"{KEY_SPECS[kind]}Name-Real: bench\nName-Email: bench@example.com\nExpire-Date: 0\n{protection}%commit\n"
    loopback = ["--pinentry-mode", "loopback", "--passphrase", passphrase] if passphrase else []
    gpg(home, *loopback, "--gen-key", stdin=spec.encode())
    fpr = next(
        line.split(":")[9] for line in gpg(home, "--with-colons", "--list-keys").decode().splitlines() if "fpr" in line
    )
    secret = gpg(home, *loopback, "--armor", "--export-secret-keys").decode()
    return fpr, gpg(home, "--armor", "--export").decode(), secret


def make_data(path: Path, size_mb: int) -> None:
    """CSV-like rows (compressible about 3:1, like a real audience export)."""
    rng = __import__("random").Random(42)
    blocks = []
    for b in range(16):
        rows = [
            f"{b * 100000 + i},user{rng.randrange(10**9)}@example.com,{rng.choice(['gold', 'silver', 'bronze'])},"
            f"{rng.random():.6f},{rng.randrange(10**12):x}\n"
            for i in range(20000)
        ]
        blocks.append("".join(rows).encode()[: 1 << 20])
    with open(path, "wb") as fh:
        for i in range(size_mb):
            fh.write(blocks[i % len(blocks)])


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def worker(args: argparse.Namespace) -> int:
    """Child process: one operation of ours, path to path; prints the in-process seconds as JSON."""
    from airflow_provider_lytics.io.pgp import PgpCipher

    keys = Path(args.keys)
    reuse = args.worker == "small_reused"
    cipher = PgpCipher(public_key=(keys / "pub.asc").read_text(), private_key=(keys / "sec.asc").read_text(),
                       passphrase=(keys / "passphrase").read_text() or None,
                       **({"reuse_keyring": True} if reuse else {}))  # fmt: skip
    started = time.perf_counter()
    if args.worker == "encrypt":
        cipher.encrypt_file(args.src, args.dst, compress=not args.no_compress, armor=args.armor)
    elif args.worker == "decrypt":
        cipher.decrypt_file(args.src, args.dst)
    elif args.worker == "stream":  # the imports' shape: ciphertext through Python, plaintext into a spool file
        with open(args.src, "rb") as fin, tempfile.TemporaryFile(dir=Path(args.dst).parent) as spool:
            with cipher.open_decryptor(spool) as sink:
                shutil.copyfileobj(fin, sink, 1 << 20)
            size = spool.tell()
        print(json.dumps({"op_s": time.perf_counter() - started, "bytes": size}))
        return 0
    else:  # small files, one process
        for i in range(args.count):
            cipher.encrypt_file(args.src, f"{args.dst}.{i}.gpg", compress=False)
            cipher.decrypt_file(f"{args.dst}.{i}.gpg", f"{args.dst}.{i}.out")
        if reuse:
            cipher.close()
    print(json.dumps({"op_s": time.perf_counter() - started}))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    h.add_common_args(ap, runs=5)
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument("--key", choices=sorted(KEY_SPECS), default="ed")
    ap.add_argument("--no-compress", action="store_true", help="--compress-algo none on both sides")
    ap.add_argument("--armor", action="store_true")
    ap.add_argument("--stream", action="store_true", help="also time the imports' streamed decrypt vs gpg in a pipe")
    ap.add_argument("--small", type=int, default=0, help="also time N small files in one process (reused ring)")
    ap.add_argument("--passphrase", default="", help="protect the generated key with this passphrase")
    ap.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--before", help="also run 'before' sides: this provider checkout (e.g. main), same workers")
    ap.add_argument("--workdir", default=None, help="directory for the test files (default: system temp)")
    ap.add_argument("--worker", choices=("encrypt", "decrypt", "stream", "small_reused", "small_fresh"),
                    help=argparse.SUPPRESS)  # fmt: skip
    for name in ("keys", "src", "dst"):
        ap.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    if shutil.which("gpg") is None:
        print("gpg binary not found", file=sys.stderr)
        return 2
    if args.quick:
        args.size_mb, args.runs = 4, 1

    work = Path(tempfile.mkdtemp(prefix="pgp-bench-", dir=args.workdir))
    cli_home = work / "cli-home"
    try:
        fpr, public, private = make_key(cli_home, args.key, args.passphrase)
        keys = work / "keys"
        keys.mkdir(mode=0o700)
        (keys / "pub.asc").write_text(public)
        (keys / "sec.asc").write_text(private)
        (keys / "passphrase").write_text(args.passphrase)
        src = work / "data.csv"
        make_data(src, args.size_mb)
        size = src.stat().st_size
        compress = not args.no_compress
        extra = [] if compress else ["--compress-algo", "none"]
        armor = ["--armor"] if args.armor else []
        gpg_base = ["gpg", "--homedir", str(cli_home), "--batch", "--no-tty", "--yes"]
        enc_cli = [*gpg_base, "--trust-model", "always", "-r", fpr, *extra, *armor]
        flags = [*(["--no-compress"] if args.no_compress else []), *(["--armor"] if args.armor else [])]
        # a ciphertext for the decrypt runs, made once by the CLI
        subprocess.run([*enc_cli, "-o", str(work / "in.gpg"), "-e", str(src)], check=True, capture_output=True)

        def ours(op: str, source: Path, out: Path, code: str | None = None) -> h.Measure:
            env = {**os.environ, "LYTICS_BENCH_CODE": code} if code else None
            return h.run_process(h.python_cmd(__file__, "--worker", op, "--keys", keys, "--src", source,
                                              "--dst", out, *flags), env=env)  # fmt: skip

        def shell(cmd: list[str], out: Path, sync: bool) -> h.Measure:
            line = " ".join(map(shlex_quote, cmd)) + (f" && sync {shlex_quote(str(out))}" if sync else "")
            return h.run_process(["sh", "-c", line])

        enc_cmd = [*enc_cli, "-o", str(work / "cli.gpg"), "-e", str(src)]
        unlock = ["--pinentry-mode", "loopback", "--passphrase", args.passphrase] if args.passphrase else []
        dec_cmd = [*gpg_base, *unlock, "-o", str(work / "cli.out"), "-d", str(work / "in.gpg")]
        plans = {
            "encrypt": {
                "ours": lambda _r: ours("encrypt", src, work / "ours.gpg"),
                "gpg": lambda _r: shell(enc_cmd, work / "cli.gpg", False),
                "gpg_sync": lambda _r: shell(enc_cmd, work / "cli.gpg", True),
            },
            "decrypt": {
                "ours": lambda _r: ours("decrypt", work / "in.gpg", work / "ours.out"),
                "gpg": lambda _r: shell(dec_cmd, work / "cli.out", False),
                "gpg_sync": lambda _r: shell(dec_cmd, work / "cli.out", True),
            },
        }
        if args.before:
            plans["encrypt"]["before"] = lambda _r: ours("encrypt", src, work / "before.gpg", args.before)
            plans["decrypt"]["before"] = lambda _r: ours("decrypt", work / "in.gpg", work / "before.out", args.before)
        if args.stream:
            pipe_cmd = f"cat {shlex_quote(str(work / 'in.gpg'))} | " + " ".join(
                map(shlex_quote, [*gpg_base, *unlock, "-o", str(work / "pipe.out"), "-d"])
            )
            plans["stream"] = {
                "ours": lambda _r: ours("stream", work / "in.gpg", work / "stream.out"),
                "gpg_pipe": lambda _r: h.run_process(["sh", "-c", pipe_cmd]),
            }
            if args.before:
                plans["stream"]["before"] = lambda _r: ours("stream", work / "in.gpg", work / "b.out", args.before)
        if args.small:
            (work / "small.bin").write_bytes(b"x" * 1024)

            def small(kind: str) -> h.Measure:
                cmd = h.python_cmd(__file__, "--worker", kind, "--keys", keys, "--src", work / "small.bin",
                                   "--dst", work / "small", "--count", args.small)  # fmt: skip
                return h.run_process(cmd)

            plans["small"] = {"reused_ring": lambda _r: small("small_reused"),
                              "ring_per_call": lambda _r: small("small_fresh")}  # fmt: skip
        result: dict = {
            "size_bytes": size, "key": args.key, "compress": compress, "armor": args.armor,
            "gpg": subprocess.run(["gpg", "--version"], capture_output=True, text=True).stdout.splitlines()[0],
            "goal": "ours >= 0.95x gpg, whole process (wall of gpg / wall of ours), path to path; ratios against "
                    "gpg_sync (equal durability) and the in-process op_s are given beside it",
            "summary": {}, "ratios": {}, "runs": {},
        }  # fmt: skip
        for op, sides in plans.items():
            measures = h.paired(sides, args.runs, log=lambda line, o=op: print(f"{o}: {line}", file=sys.stderr))
            summary = {name: h.summarize(ms, inproc_keys=("op_s",)) for name, ms in measures.items()}
            for name, s in summary.items():
                result["summary"][f"{op}_{name}"] = s
            result["runs"][op] = h.measures_json(measures)
            if op == "stream":
                result["ratios"][op] = {
                    "vs_gpg_pipe_whole_process": h.ratio(summary["gpg_pipe"], summary["ours"]),
                    "cpu_ours_over_gpg_pipe": round(summary["ours"]["cpu_s"]["median"]
                                                    / summary["gpg_pipe"]["cpu_s"]["median"], 3),
                }  # fmt: skip
            if op == "small":
                result["ratios"][op] = {
                    f"{name}_ms_per_file": round(1000 * s["inproc_op_s"]["median"] / args.small, 1)
                    for name, s in summary.items()
                }
            if "gpg" in summary:
                ours_s = summary["ours"]
                result["ratios"][op] = {
                    "vs_gpg_whole_process": h.ratio(summary["gpg"], ours_s),
                    "vs_gpg_sync_whole_process": h.ratio(summary["gpg_sync"], ours_s),
                    "vs_gpg_in_process": round(summary["gpg"]["wall_s"]["median"]
                                               / ours_s["inproc_op_s"]["median"], 3),
                    "cpu_ours_over_gpg": round(ours_s["cpu_s"]["median"] / summary["gpg"]["cpu_s"]["median"], 3),
                    "fsync_cost_s": round(summary["gpg_sync"]["wall_s"]["median"]
                                          - summary["gpg"]["wall_s"]["median"], 3),
                }  # fmt: skip
            if "before" in summary:
                result["ratios"].setdefault(op, {})["after_vs_before_whole_process"] = h.ratio(
                    summary["before"], summary["ours"]
                )
                result["ratios"][op]["cpu_after_over_before"] = round(
                    summary["ours"]["cpu_s"]["median"] / summary["before"]["cpu_s"]["median"], 3
                )
        digest = sha256(src)
        assert sha256(work / "ours.out") == digest, "our decryption of the CLI's ciphertext differs"
        check = subprocess.run([*gpg_base, "-o", "-", "-d", str(work / "ours.gpg")], capture_output=True, check=True)
        assert hashlib.sha256(check.stdout).hexdigest() == digest, "the CLI's decryption of our ciphertext differs"
        h.report(args, result)
        return 0
    finally:
        subprocess.run(["gpgconf", "--homedir", str(cli_home), "--kill", "all"], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
