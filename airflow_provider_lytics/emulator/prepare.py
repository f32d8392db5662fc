"""Everything an example DAG needs besides the servers: sample input files, and the connections as an env file or
in Airflow's metadata database.

Used by ``lytics-emulator sandbox`` (run an example DAG yourself, docker's init step) and by the demo
(``scripts/demo.py``), so both prepare the same files the same way. The default paths are the ones the example
DAGs' params default to (``/tmp/lytics-demo/...``), so ``airflow dags test <dag_id>`` works without ``-c``.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import random
import shlex
from pathlib import Path
from typing import Any

#: Where the example DAGs' default params read their local input.
DEFAULT_DATA_DIR = Path("/tmp/lytics-demo")
#: SFTP paths the example DAGs read (``lytics_import_continuous_sftp_pgp``, ``lytics_pgp_sftp_round_trip``).
CONTINUOUS_IMPORT_DIR = "/imports/customers"
PARTNER_INBOX = "/partner/inbox"
#: Malformed lines appended to the one-time import's file: the quarantine gets one entry per bad record.
BAD_ROWS = 2


def write_customers(path: Path, rows: int, seed: int = 7, start: int = 0, bad_rows: int = 0) -> Path:
    """A CRM-like CSV (email, first_name, plan, ltv, country, updated_at); ``bad_rows`` malformed lines added.

    A ``.gz`` suffix writes gzip. Bad rows alternate a one-column line and a line with an unterminated quote.
    """
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "first_name", "plan", "ltv", "country", "updated_at"])
        for i in range(start, start + rows):
            writer.writerow([
                f"customer{i}@example.com",
                rng.choice(["Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret"]),
                rng.choice(["free", "free", "pro", "enterprise"]),
                rng.randint(0, 2000),
                rng.choice(["US", "DE", "FR", "JP", "BR"]),
                f"2026-11-{1 + i % 28:02d}T12:00:00Z",
            ])  # fmt: skip
        for i in range(bad_rows):
            out.write(f'customer-bad{i}@example.com,"unterminated,pro\n' if i % 2 else "only-one-column\n")
    return path


def write_loyalty(path: Path, rows: int, seed: int = 11) -> Path:
    """The partner's loyalty file: email, loyalty_tier, loyalty_points for customers the quickstart imported."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "loyalty_tier", "loyalty_points"])
        for i in range(rows):
            writer.writerow([f"customer{i}@example.com", rng.choice(["gold", "silver", "silver", "bronze"]),
                             rng.randint(0, 50_000)])  # fmt: skip
    return path


def prepare_sample_files(sandbox: Any, data_dir: Path = DEFAULT_DATA_DIR, rows: int = 2_000) -> list[str]:
    """Write every input file the example DAGs read with their default params; returns one line per file.

    Local: ``customers.csv`` (quickstart), ``import/customers_extra.csv`` with :data:`BAD_ROWS` malformed lines
    (one-time import). On the sandbox's SFTP, encrypted to its PGP key: a customers file for the continuous
    import (backdated past the sensor's minimum age) and the partner's loyalty file for the round trip.
    """
    data_dir = Path(data_dir)
    customers = write_customers(data_dir / "customers.csv", rows)
    extra = write_customers(data_dir / "import" / "customers_extra.csv", rows // 2, seed=8, start=rows,
                            bad_rows=BAD_ROWS)  # fmt: skip
    plain = data_dir / "partner" / "customers_2026-11-27.csv.gz"
    write_customers(plain, 300, seed=21, start=100_000)
    continuous = f"{CONTINUOUS_IMPORT_DIR}/{plain.name}.gpg"
    sandbox.encrypt_to_sftp(plain, continuous, age_seconds=120)
    loyalty = write_loyalty(data_dir / "partner" / "loyalty_2026-11-28.csv", min(rows, 1000))
    inbox = f"{PARTNER_INBOX}/{loyalty.name}.gpg"
    sandbox.encrypt_to_sftp(loyalty, inbox)
    return [
        f"{customers} ({rows} rows; lytics_quickstart)",
        f"{extra} ({rows // 2} rows + {BAD_ROWS} malformed; lytics_import_one_time)",
        f"sftp:{continuous} (300 rows, PGP; lytics_import_continuous_sftp_pgp)",
        f"sftp:{inbox} ({min(rows, 1000)} rows, PGP; lytics_pgp_sftp_round_trip)",
    ]


def write_env_file(path: Path, env: dict[str, str]) -> Path:
    """``export NAME='value'`` lines for ``source`` (and docker's ``env_file`` after stripping ``export``).

    The file holds secrets (token, SFTP password, PGP private key and passphrase): it is created with mode 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"export {name}={shlex.quote(value)}" for name, value in sorted(env.items())]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("# Written by lytics-emulator sandbox; valid while it runs. Contains secrets (mode 0600).\n")
        out.write("\n".join(lines) + "\n")
    path.chmod(0o600)  # an existing file keeps its mode under O_TRUNC
    return path


def import_airflow_connections(connections: dict[str, dict[str, Any]]) -> list[str]:
    """Create (or replace) each connection in the Airflow metadata DB of ``$AIRFLOW_HOME``; returns the ids.

    The DB must be migrated (``airflow db migrate``); otherwise the error says so.
    """
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import delete
    from sqlalchemy.exc import OperationalError

    try:
        with create_session() as session:
            for conn_id, value in connections.items():
                session.execute(delete(Connection).where(Connection.conn_id == conn_id))
                session.add(Connection.from_json(json.dumps(value), conn_id=conn_id))
    except OperationalError as exc:
        raise RuntimeError(
            "could not write connections to Airflow's metadata DB; run `airflow db migrate` with the same "
            f"AIRFLOW_HOME first ({type(exc.orig).__name__}: {str(exc.orig)[:200]})"
        ) from None
    return sorted(connections)


def remove_airflow_connections(conn_ids: list[str]) -> None:
    """Delete connections :func:`import_airflow_connections` created (their secrets die with the sandbox)."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        session.execute(delete(Connection).where(Connection.conn_id.in_(conn_ids)))
