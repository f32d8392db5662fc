"""``lytics-emulator sandbox``: the whole offline environment the example DAGs need, ready to run them yourself.

Starts :class:`~airflow_provider_lytics.emulator.sandbox.LyticsSandbox` on fixed ports, writes the sample input
files (:func:`~airflow_provider_lytics.emulator.prepare.prepare_sample_files`), writes every connection as
``AIRFLOW_CONN_*`` lines to ``--env-file`` and/or into Airflow's metadata DB (``--airflow-connections``), prints
what it did (never a secret) and runs until SIGINT/SIGTERM. At stop, the env file and the connections it created
are removed: their token, passwords and private key belong to this run's servers and key ring only.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

READY_LINE = "sandbox ready"


def _audience_ids(sandbox: Any) -> str:
    """``slug=id`` of the audiences the example DAGs name, read through the emulator's own API."""
    import requests

    pairs = []
    for slug in ("demo_high_value", "high_value", "demo_enrichment_audience"):
        response = requests.get(f"{sandbox.lytics.url}/api/segment/{slug}",
                                headers={"Authorization": sandbox.lytics.token}, timeout=30)  # fmt: skip
        if response.ok:
            pairs.append(f"{slug}={response.json()['data']['id']}")
    return ", ".join(pairs)


def run_sandbox(args: argparse.Namespace) -> int:
    """Run the sandbox command; 0 after SIGINT/SIGTERM, 2 when something could not start (the message says why)."""
    from airflow_provider_lytics.emulator.prepare import (
        import_airflow_connections,
        prepare_sample_files,
        remove_airflow_connections,
        write_env_file,
    )
    from airflow_provider_lytics.emulator.sandbox import FIXED_PORTS, LyticsSandbox, SandboxPorts

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    data_dir = args.data_dir.expanduser().resolve()
    outputs = (args.outputs or data_dir / "outputs").expanduser().resolve()
    sandbox = LyticsSandbox(outputs, users=args.users, ports=SandboxPorts() if args.free_ports else FIXED_PORTS)
    imported: list[str] = []
    wrote_env = False
    try:
        try:
            sandbox.start()
        except Exception as exc:  # port in use, no gpg...: say what, not a traceback
            print(f"lytics-emulator sandbox: error: {exc}", file=sys.stderr)
            return 2
        print("Sandbox up:\n" + sandbox.describe(), flush=True)
        print("Sample files:", flush=True)
        for line in prepare_sample_files(sandbox, data_dir, rows=args.rows):
            print(f"  {line}", flush=True)
        env = sandbox.connection_env()
        conn_ids = sorted(sandbox.connections())
        if args.env_file:
            write_env_file(args.env_file, env)
            wrote_env = True
            print(f"Env file: {args.env_file} (connections {', '.join(conn_ids)}); "
                  f"`source` it in the shell that runs Airflow", flush=True)  # fmt: skip
        if args.airflow_connections:
            try:
                imported = import_airflow_connections(sandbox.connections())
            except Exception as exc:
                print(f"lytics-emulator sandbox: error: {exc}", file=sys.stderr)
                return 2
            print(f"Airflow connections created in the metadata DB: {', '.join(imported)}", flush=True)
        print(f"Audience ids (e.g. lytics_realtime_audience_setup's segment_id param): {_audience_ids(sandbox)}",
              flush=True)  # fmt: skip
        print(f"{READY_LINE}; stop with Ctrl-C or SIGTERM", flush=True)
        while not stop.wait(0.5):
            pass
        print("Sandbox stopping", flush=True)
        return 0
    finally:
        if imported:
            try:
                remove_airflow_connections(imported)
            except Exception as exc:
                print(f"lytics-emulator sandbox: could not remove the connections: {exc}", file=sys.stderr)
        if wrote_env:
            args.env_file.unlink(missing_ok=True)
        sandbox.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
