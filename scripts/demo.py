"""Run the example DAGs against an embedded Lytics emulator, then print what happened.

Everything lives under ``.demo/`` (Airflow home, input and output files); the emulator runs in this process on a
free loopback port, so the demo needs no services and no network.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"


def write_customers(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "first_name", "plan", "ltv", "country"])
        for i in range(rows):
            writer.writerow([
                f"customer{i}@example.com",
                rng.choice(["Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret"]),
                rng.choice(["free", "free", "pro", "enterprise"]),
                rng.randint(0, 2000),
                rng.choice(["US", "DE", "FR", "JP", "BR"]),
            ])  # fmt: skip


def prepare_airflow(home: Path) -> None:
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    home.mkdir(parents=True, exist_ok=True)
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, stdout=subprocess.DEVNULL)


def run_dag(dag_id: str, conf: dict) -> str:
    sys.path.insert(0, str(ROOT / "dags"))
    module = __import__(dag_id)
    dag = next(v for v in vars(module).values() if getattr(v, "dag_id", None) == dag_id)
    run = dag.test(run_conf=conf)
    return str(run.state)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000, help="customers in the generated CSV")
    args = parser.parse_args()

    from airflow_provider_lytics.emulator.cli import job_timings
    from airflow_provider_lytics.emulator.server import EmulatorServer

    customers = DEMO / "data" / "customers.csv"
    export = DEMO / "out" / "high_value.csv"
    write_customers(customers, args.rows)
    prepare_airflow(DEMO / "airflow_home")

    with EmulatorServer(job_timings=job_timings("fast")) as emulator:
        os.environ["AIRFLOW_CONN_LYTICS_DEFAULT"] = json.dumps(
            {
                "conn_type": "lytics",
                "host": emulator.url,
                "password": emulator.token,
                "extra": {"bulk_url": emulator.bulk_url},
            }
        )
        print(f"Lytics emulator serving {emulator.url}")
        started = time.monotonic()
        state = run_dag(
            "lytics_quickstart",
            {"customers_csv": str(customers), "export_path": str(export), "stream": "crm_customers",
             "audience_slug": "demo_high_value"},
        )  # fmt: skip
        elapsed = time.monotonic() - started
        store = emulator.backend.store
        events = store.stream_event_count("crm_customers")
        profiles = sum(1 for _ in store.profiles())

    exported = sum(1 for _ in export.open()) - 1 if export.exists() else 0
    print(f"lytics_quickstart finished {state} in {elapsed:.1f}s")
    print(f"  imported {args.rows} CSV rows -> {events} events on stream crm_customers, {profiles} profiles")
    print(f"  exported audience demo_high_value -> {export} ({exported} rows)")
    return 0 if state.endswith("success") else 1


if __name__ == "__main__":
    sys.exit(main())
