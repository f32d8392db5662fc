"""Run the real ``airflow`` CLI of this venv against the example DAGs, in a fresh, migrated Airflow home.

``airflow db migrate`` takes 10-30 s on a loaded machine, so it runs once per test session into a template home;
every test then gets its own copy of that migrated database (a file copy), so tests stay isolated.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

BIN = Path(sys.executable).parent
DAGS = Path(__file__).resolve().parents[2] / "dags"

_template_lock = threading.Lock()
_template_db: Path | None = None


def airflow_version() -> tuple[int, int]:
    """(major, minor) of the Airflow installed in this venv, read in-process.

    Not from ``airflow version``: with ``AIRFLOW__CORE__UNIT_TEST_MODE=True`` it prints a config line first.
    """
    import airflow

    major, minor = airflow.__version__.split(".")[:2]
    return int(major), int(minor)


def base_env(home: Path) -> dict[str, str]:
    """Environment for ``airflow`` commands in ``home`` with the example DAGs; not in unit-test mode."""
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS)}  # fmt: skip
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    return env


def _migrated_template() -> Path:
    """The metadata DB migrated once for this test session (removed at interpreter exit)."""
    global _template_db
    with _template_lock:
        if _template_db is None or not _template_db.exists():
            home = Path(tempfile.mkdtemp(prefix="lytics-airflow-template-"))
            migrate = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=base_env(home),
                                     capture_output=True, text=True, timeout=300)  # fmt: skip
            assert migrate.returncode == 0, migrate.stderr[-2000:]
            import atexit

            atexit.register(shutil.rmtree, home, ignore_errors=True)
            _template_db = home / "airflow.db"
        return _template_db


def migrated_home(home: Path) -> dict[str, str]:
    """A migrated Airflow home at ``home`` (a copy of the session's migrated DB); returns its base env."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_migrated_template(), home / "airflow.db")
    return base_env(home)


def migrated_env(home: Path, lytics_conn: dict) -> dict[str, str]:
    """:func:`migrated_home` plus the ``lytics_default`` connection as an env variable."""
    return {**migrated_home(home), "AIRFLOW_CONN_LYTICS_DEFAULT": json.dumps(lytics_conn)}
