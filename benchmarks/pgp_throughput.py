"""PGP throughput: the provider's streaming encrypt/decrypt vs the gpg CLI on the same file.

Runs each operation several times, reports medians, our/CLI time ratios and the peak RSS growth of this Python
process while our code runs (the data itself must never be held in memory).

    .venv/bin/python benchmarks/pgp_throughput.py --size-mb 256 --runs 3
    .venv/bin/python benchmarks/pgp_throughput.py --size-mb 512 --runs 3 --no-compress --key rsa
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from airflow_provider_lytics.io.pgp import PgpCipher

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


def make_key(home: Path, kind: str) -> tuple[str, str, str]:
    home.mkdir(mode=0o700)
    (home / "gpg-agent.conf").write_text("allow-loopback-pinentry\n")
    spec = (
        f"{KEY_SPECS[kind]}Name-Real: bench\nName-Email: bench@example.com\nExpire-Date: 0\n%no-protection\n%commit\n"
    )
    gpg(home, "--gen-key", stdin=spec.encode())
    fpr = next(
        line.split(":")[9] for line in gpg(home, "--with-colons", "--list-keys").decode().splitlines() if "fpr" in line
    )
    return fpr, gpg(home, "--armor", "--export").decode(), gpg(home, "--armor", "--export-secret-keys").decode()


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


class RssSampler:
    """Peak VmRSS of this process, sampled every 10 ms while running."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def current() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            self._stop.wait(0.01)

    def __enter__(self) -> RssSampler:
        self.peak = self.current()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--key", choices=sorted(KEY_SPECS), default="ed")
    ap.add_argument("--no-compress", action="store_true", help="--compress-algo none on both sides")
    ap.add_argument("--armor", action="store_true")
    ap.add_argument("--workdir", default=None, help="directory for the test files (default: system temp)")
    args = ap.parse_args()
    if shutil.which("gpg") is None:
        print("gpg binary not found", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="pgp-bench-", dir=args.workdir))
    cli_home = work / "cli-home"
    try:
        fpr, public, private = make_key(cli_home, args.key)
        cipher = PgpCipher(public_key=public, private_key=private)
        src = work / "data.csv"
        make_data(src, args.size_mb)
        size = src.stat().st_size
        compress = not args.no_compress
        extra = [] if compress else ["--compress-algo", "none"]
        armor = ["--armor"] if args.armor else []

        def cli_encrypt() -> None:
            gpg(
                cli_home,
                "--yes",
                "--trust-model",
                "always",
                "-r",
                fpr,
                *extra,
                *armor,
                "-o",
                str(work / "cli.gpg"),
                "-e",
                str(src),
            )

        def cli_decrypt() -> None:
            gpg(cli_home, "--yes", "-o", str(work / "cli.out"), "-d", str(work / "ours.gpg"))

        def our_encrypt() -> None:
            cipher.encrypt_file(src, work / "ours.gpg", compress=compress, armor=args.armor)

        def our_decrypt() -> None:
            cipher.decrypt_file(work / "cli.gpg", work / "ours.out")

        def stream_encrypt() -> None:  # the "encrypt while uploading" shape: file objects, data through Python
            with open(src, "rb") as fin, open(work / "stream.gpg", "wb") as fout:
                cipher.encrypt_stream(fin, fout, compress=compress, armor=args.armor)

        def stream_decrypt() -> None:  # "decrypt while downloading": ciphertext written into our stream stage
            with open(work / "cli.gpg", "rb") as fin, cipher.open_decryptor(work / "stream.out") as sink:
                shutil.copyfileobj(fin, sink, 1 << 16)

        tiny = work / "tiny.txt"
        tiny.write_bytes(b"x" * 1024)
        fixed = {
            "encrypt": statistics.median(timed(lambda: cipher.encrypt_file(tiny, work / "t.gpg")) for _ in range(5)),
            "decrypt": statistics.median(
                timed(lambda: cipher.decrypt_file(work / "t.gpg", work / "t.out")) for _ in range(5)
            ),
        }
        ops = ("our_encrypt", "cli_encrypt", "our_decrypt", "cli_decrypt", "stream_encrypt", "stream_decrypt")
        times: dict[str, list[float]] = {k: [] for k in ops}
        peaks: list[int] = []
        baseline = RssSampler.current()
        for _ in range(args.runs):
            times["cli_encrypt"].append(timed(cli_encrypt))
            with RssSampler() as s1:
                times["our_encrypt"].append(timed(our_encrypt))
            times["cli_decrypt"].append(timed(cli_decrypt))
            with RssSampler() as s2:
                times["our_decrypt"].append(timed(our_decrypt))
            with RssSampler() as s3:
                times["stream_encrypt"].append(timed(stream_encrypt))
                times["stream_decrypt"].append(timed(stream_decrypt))
            peaks.append(max(s1.peak, s2.peak, s3.peak))
        digest = sha256(src)
        assert sha256(work / "ours.out") == digest, "our decryption of the CLI's ciphertext differs"
        assert sha256(work / "cli.out") == digest, "the CLI's decryption of our ciphertext differs"
        assert sha256(work / "stream.out") == digest, "the stream stage's decryption differs"

        med = {k: statistics.median(v) for k, v in times.items()}
        mb = size / 2**20
        print(f"# PGP throughput: {mb:.0f} MiB CSV-like file, key {args.key}, compress={compress}, armor={args.armor}")
        print(
            f"# {platform.platform()}, Python {platform.python_version()}, {args.runs} runs, "
            f"{subprocess.run(['gpg', '--version'], capture_output=True, text=True).stdout.splitlines()[0]}"
        )
        print()
        print("| operation | ours median s | gpg CLI median s | ours MiB/s | CLI MiB/s | ours/CLI time |")
        print("|---|---|---|---|---|---|")
        for op in ("encrypt", "decrypt"):
            o, c = med[f"our_{op}"], med[f"cli_{op}"]
            print(f"| {op} (path to path) | {o:.2f} | {c:.2f} | {mb / o:.0f} | {mb / c:.0f} | {o / c:.2f} |")
            st = med[f"stream_{op}"]
            label = f"{op} (file objects via Python)"
            print(f"| {label} | {st:.2f} | {c:.2f} | {mb / st:.0f} | {mb / c:.0f} | {st / c:.2f} |")
        print()
        print(
            f"fixed cost per call (1 KiB file, median of 5; key ring setup, key import, agent start/stop): "
            f"encrypt {fixed['encrypt']:.2f} s, decrypt {fixed['decrypt']:.2f} s"
        )
        print(f"all runs (s): { {k: [round(x, 2) for x in v] for k, v in times.items()} }")
        print(
            f"python RSS: baseline {baseline / 2**20:.1f} MiB, peak during our operations {max(peaks) / 2**20:.1f} MiB "
            f"(growth {(max(peaks) - baseline) / 2**20:.1f} MiB for a {mb:.0f} MiB file)"
        )
        return 0
    finally:
        subprocess.run(["gpgconf", "--homedir", str(cli_home), "--kill", "all"], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
