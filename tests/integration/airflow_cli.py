"""Run the real ``airflow`` CLI of this venv against the example DAGs, in a fresh, migrated Airflow home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
DAGS = Path(__file__).resolve().parents[2] / "dags"


def migrated_env(home: Path, lytics_conn: dict) -> dict[str, str]:
    """Environment for ``airflow`` commands: its own home and DB (migrated here), the example DAGs, and the
    ``lytics_default`` connection; not in unit-test mode."""
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS), "AIRFLOW_CONN_LYTICS_DEFAULT": json.dumps(lytics_conn)}  # fmt: skip
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    migrate = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True,
                             timeout=180)  # fmt: skip
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    return env
