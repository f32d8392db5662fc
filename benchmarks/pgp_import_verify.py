"""Cost of verified PGP import decryption (issue 14 item 1): decrypt-to-spool-then-read vs the old streamed pipeline.

The old pipeline handed plaintext to the row reader while gpg was still decrypting (rows could be sent before the
integrity check at the end); the verified one (``imports/verified.py``) decrypts the whole file into an unnamed
spool first and reads it after gpg succeeded. Both read every row through the real CSV reader, on the same file;
runs alternate (old, verified, old, ...) and medians are reported with the load average.

    .venv/bin/python benchmarks/pgp_import_verify.py --rows 1000000 --runs 5
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pgp_throughput import gpg, make_key

from airflow_provider_lytics.imports.readers import open_rows
from airflow_provider_lytics.imports.verified import verified_plaintext
from airflow_provider_lytics.io.pgp import PgpCipher


def _rows(stream) -> int:
    return sum(r.rows for r in open_rows("csv", stream, "bench.csv"))


def streamed(cipher: PgpCipher, path: Path) -> int:
    """The old pipeline: rows read while gpg decrypts (no integrity check before the first row)."""
    with cipher.decrypted_reader(str(path)) as plain:
        return _rows(plain)


def verified(cipher: PgpCipher, path: Path) -> int:
    def feed(writer) -> None:
        with path.open("rb") as fh:
            shutil.copyfileobj(fh, writer, 1 << 20)

    with verified_plaintext(str(path), feed, lambda sink: cipher.open_decryptor(sink)) as plain:
        return _rows(plain)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lytics-bench-") as tmp:
        work = Path(tmp)
        fpr, _public, private = make_key(work / "home", "ed")
        plain = work / "users.csv"
        with plain.open("w") as out:
            out.write("id,email,opt_in\n")
            out.writelines(f"u{i},user{i}@example.com,{'YN'[i % 2]}\n" for i in range(args.rows))
        encrypted = work / "users.csv.gpg"
        gpg(work / "home", "--trust-model", "always", "--compress-algo", "none", "--recipient", fpr,
            "--output", str(encrypted), "--encrypt", str(plain))  # fmt: skip
        size = encrypted.stat().st_size / 1e6
        cipher = PgpCipher(private_key=private)
        times: dict[str, list[float]] = {"streamed": [], "verified": []}
        load_before = os.getloadavg()
        for _ in range(args.runs):
            for name, fn in (("streamed", streamed), ("verified", verified)):
                started = time.perf_counter()
                assert fn(cipher, encrypted) == args.rows
                times[name].append(time.perf_counter() - started)
        load_after = os.getloadavg()
        with contextlib.suppress(Exception):
            gpg(work / "home", "--kill", "all")
    old, new = statistics.median(times["streamed"]), statistics.median(times["verified"])
    print(f"{args.rows} rows, {size:.1f} MB ciphertext (uncompressed), {args.runs} alternating runs each")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min), cores {os.cpu_count()}")
    print(f"streamed (old, unverified): median {old:.2f} s  runs {[round(t, 2) for t in times['streamed']]}")
    print(f"verified (spool, then read): median {new:.2f} s  runs {[round(t, 2) for t in times['verified']]}")
    print(f"verified / streamed = {new / old:.2f}")


if __name__ == "__main__":
    main()
