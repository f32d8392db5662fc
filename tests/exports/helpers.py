"""Shared helpers for export tests: seeding the emulator, a fast-retry hook, reading exported files back."""

from __future__ import annotations

import csv
import gzip
import io
import json
import subprocess
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FIELDS = ["user_id", "email", "first_name", "interests"]
SEGMENT_QL = 'FILTER status = "active" FROM user ALIAS actives WITH name = "Actives"'


def user(i: int, *, status: str = "active", name: str | None = None) -> dict[str, Any]:
    return {
        "user_id": f"u{i:06d}",
        "email": f"user{i}@example.com",
        "first_name": name or f"Name{i}",
        "interests": ["a", "b"] if i % 2 else ["c"],
        "status": status,
    }


def seed(emulator: Any, users: Iterable[dict[str, Any]], *, segment: bool = True) -> None:
    """Ingest ``users`` straight into the emulator's store and (once) create the ``actives`` audience."""
    store = emulator.backend.store
    batch: list[dict[str, Any]] = []
    for u in users:
        batch.append(u)
        if len(batch) >= 5000:
            store.ingest("crm", batch)
            batch = []
    if batch:
        store.ingest("crm", batch)
    if segment and store.segments.get("actives") is None:
        store.segments.create({"segment_ql": SEGMENT_QL}, None, rename_taken_slug=False)


def fast_hook() -> Any:
    from airflow_provider_lytics.client.retry import RetryPolicy
    from airflow_provider_lytics.hooks.lytics import LyticsHook

    return LyticsHook(retry_policy=RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05, jitter=False))


def plaintext(path: Path, *, gpg_home: Path | None = None) -> bytes:
    """The data inside an export file: gpg CLI decrypt (``.gpg``/``.asc``), then gunzip/unzip."""
    data = path.read_bytes()
    name = path.name
    if name.endswith((".gpg", ".asc")):
        assert gpg_home is not None, "encrypted file needs the gpg home"
        data = subprocess.run(
            ["gpg", "--homedir", str(gpg_home), "--batch", "--no-tty", "--pinentry-mode", "loopback",
             "--passphrase", "", "--decrypt"],
            input=data, capture_output=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        name = name.rsplit(".", 1)[0]
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    elif name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            (member,) = zf.namelist()
            data = zf.read(member)
    return data


def rows_of(path: Path, *, gpg_home: Path | None = None, delimiter: str = ",") -> list[dict[str, Any]]:
    data = plaintext(path, gpg_home=gpg_home)
    kinds = path.name.split(".")[1:]
    if "ndjson" in kinds:
        return [json.loads(line) for line in data.decode().splitlines() if line]
    if "parquet" in kinds:
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data)).to_pylist()
    return list(csv.DictReader(io.StringIO(data.decode()), delimiter=delimiter))


def make_recipient_key(base: Path) -> tuple[str, Path]:
    """One unprotected Curve25519 key pair in a gpg home under ``base``: (armored public key, home)."""
    home = base / "gnupg"
    home.mkdir(mode=0o700, parents=True)
    spec = (
        "Key-Type: EDDSA\nKey-Curve: ed25519\nSubkey-Type: ECDH\nSubkey-Curve: cv25519\n"
        "Name-Real: Export test\nName-Email: export@example.com\nExpire-Date: 0\n%no-protection\n%commit\n"
    )
    gpg = ["gpg", "--homedir", str(home), "--batch", "--no-tty"]
    subprocess.run([*gpg, "--gen-key"], input=spec.encode(), check=True, capture_output=True, timeout=60)
    public = subprocess.run([*gpg, "--armor", "--export"], check=True, capture_output=True, timeout=60).stdout
    return public.decode(), home


def stop_agent(home: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False)
