"""``lytics-emulator``: serve the local Lytics emulator, or seed a state file offline.

    lytics-emulator serve [--host 127.0.0.1] [--port 8765] [--bulk-port PORT] [--token TOKEN ...] [--db PATH]
                          [--job-timings fast|realistic] [--sftp-port PORT [--sftp-root DIR] [--sftp-user U:P ...]]
                          [--now 2026-03-08T03:00:00-05:00 [--frozen-clock]]
    lytics-emulator seed --users N [--db PATH] [--seed S]
    lytics-emulator sandbox [--data-dir /tmp/lytics-demo] [--outputs DIR] [--env-file FILE]
                            [--airflow-connections] [--users N] [--rows N] [--free-ports]

Exit codes: 0 success (also after SIGINT/SIGTERM), 2 bad arguments or unusable port/database.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sqlite3
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow_provider_lytics.emulator.backend import DEFAULT_TOKEN

EXIT_USAGE = 2


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be an integer 0-65535, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, got {port}")
    return port


def _instant(value: str) -> float:
    from airflow_provider_lytics.emulator.clock import ClockError, parse_instant

    try:
        return parse_instant(value, "--now")
    except ClockError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {number}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lytics-emulator", description="Local Lytics API emulator.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{serve,seed,sandbox}")

    serve = commands.add_parser("serve", help="serve the emulated Lytics API until SIGINT/SIGTERM")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8765, help="TCP port, 0 picks a free one (default 8765)")
    serve.add_argument(
        "--bulk-port",
        type=_port,
        default=None,
        help="port playing bulk.lytics.io (no 10 MB upload cap); default --port + 1, or a free one with --port 0",
    )
    serve.add_argument(
        "--token",
        action="append",
        dest="tokens",
        metavar="TOKEN",
        help=f"accepted API token; repeat for several (default {DEFAULT_TOKEN!r})",
    )
    serve.add_argument("--db", help="SQLite file keeping state across restarts (default: in memory)")
    serve.add_argument(
        "--job-timings",
        choices=sorted(JOB_TIMING_PRESETS),
        default="fast",
        help="job state machine pace (default fast)",
    )
    serve.add_argument("--http", choices=("auto", "httptools", "h11"), default="auto", help=argparse.SUPPRESS)
    serve.add_argument(
        "--sftp-port",
        type=_port,
        help="also serve Lytics-style managed SFTP on this port (0 picks a free one; default: no SFTP)",
    )
    serve.add_argument(
        "--unmapped-streams",
        choices=("profile", "raw"),
        default="profile",
        help="rows of a stream no LQL query reads: merge every field into profiles (default) or keep them raw",
    )
    serve.add_argument(
        "--sftp-root",
        help="data root of the managed SFTP server (default: 'sftp' next to --db, else ./lytics-emulator-sftp)",
    )
    serve.add_argument(
        "--sftp-user",
        action="append",
        dest="sftp_users",
        metavar="USER:PASSWORD",
        help=(
            "SFTP login; repeat for several (each then gets its own directory); "
            "default user lytics, password lytics-emulator-sftp-password"
        ),
    )

    serve.add_argument(
        "--now",
        type=_instant,
        metavar="ISO8601",
        help="start the emulator's clock at this instant (with a UTC offset, e.g. 2026-03-08T03:00:00-05:00); "
        "it then runs at the real rate (job quiet windows, schedules, sleeps and stamps follow it). "
        "GET/POST /_emulator/clock reads, sets and advances it while serving",
    )
    serve.add_argument(
        "--frozen-clock",
        action="store_true",
        help="stop the emulator's clock (at --now, else at start-up): it moves only by POST /_emulator/clock "
        '{"advance_seconds": N}',
    )

    seed = commands.add_parser("seed", help="generate a synthetic user population into a state file")
    seed.add_argument("--users", type=_positive_int, required=True, help="number of users to generate")
    seed.add_argument("--db", help="SQLite file to seed (without it the population is generated and discarded)")
    seed.add_argument("--seed", type=int, default=0, help="random seed, same seed = same population (default 0)")
    _add_sandbox_parser(commands)
    return parser


def _add_sandbox_parser(commands: Any) -> None:
    """``sandbox``: everything the example DAGs need (servers, data, files, connections) until SIGINT/SIGTERM."""
    from airflow_provider_lytics.emulator.prepare import DEFAULT_DATA_DIR

    sandbox = commands.add_parser(
        "sandbox",
        help="start the whole offline sandbox the example DAGs need (API, bulk, SFTP, enrichment, webhooks, PGP), "
        "write their sample files and connections, and run until SIGINT/SIGTERM",
    )
    sandbox.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                         help=f"sample input files the example DAGs read (default {DEFAULT_DATA_DIR})")  # fmt: skip
    sandbox.add_argument("--outputs", type=Path, help="kept after stop (default: DATA_DIR/outputs)")
    sandbox.add_argument("--env-file", type=Path,
                         help="write AIRFLOW_CONN_* for every connection the examples use here (mode 0600; "
                         "removed at stop)")  # fmt: skip
    sandbox.add_argument("--airflow-connections", action="store_true",
                         help="also create the connections in the Airflow metadata DB of $AIRFLOW_HOME (run "
                         "`airflow db migrate` first; removed at stop)")  # fmt: skip
    sandbox.add_argument("--users", type=_positive_int, default=2_000, help="profiles seeded (default 2000)")
    sandbox.add_argument("--rows", type=_positive_int, default=2_000, help="rows in customers.csv (default 2000)")
    sandbox.add_argument("--free-ports", action="store_true",
                         help="free ports instead of the fixed 8765 (API), 8766 (bulk), 2222 (SFTP), 8767 "
                         "(enrichment), 8768 (webhooks)")  # fmt: skip


#: ``--job-timings`` presets, as JobTimings keyword arguments. "realistic" is Lytics-like pacing (seconds to
#: minutes); "fast" keeps the same state machine but moves in fractions of a second for local DAG runs.
JOB_TIMING_PRESETS: dict[str, dict[str, Any]] = {
    "fast": {
        "initializing": 0.05,
        "running": 0.2,
        "sleep_between_runs": 2.0,
        "fault_backoff": 0.5,
        "fault_backoff_max": 5.0,
    },
    "realistic": {},
}


def job_timings(preset: str) -> Any:
    """The :class:`JobTimings` for a ``--job-timings`` preset name."""
    from airflow_provider_lytics.emulator.jobs import JobTimings

    if preset not in JOB_TIMING_PRESETS:
        raise ValueError(f"job timings must be one of {list(JOB_TIMING_PRESETS)}, got {preset!r}")
    return JobTimings(**JOB_TIMING_PRESETS[preset])


def _token_hint(token: str) -> str:
    if token == DEFAULT_TOKEN:
        return f"token: {token} (default; send it raw in the Authorization header)"
    return f"token: {token[:3]}... ({len(token)} chars, as given with --token)"


def _sftp_users(values: Sequence[str] | None) -> dict[str, dict[str, Any]] | None:
    if not values:
        return None
    users: dict[str, dict[str, Any]] = {}
    for value in values:
        name, sep, password = value.partition(":")
        if not sep or not name or not password:
            raise ValueError(f"--sftp-user must look like USER:PASSWORD, got {name or value!r}:***")
        users[name] = {"password": password}
    return users


def _sftp_root(args: argparse.Namespace) -> Path:
    if args.sftp_root:
        return Path(args.sftp_root)
    if args.db:
        return Path(args.db).resolve().parent / "sftp"
    return Path.cwd() / "lytics-emulator-sftp"


def _serve(args: argparse.Namespace) -> int:
    from airflow_provider_lytics.emulator.server import EmulatorServer, EmulatorStartError

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    bulk_port = args.bulk_port
    if bulk_port is None:
        bulk_port = args.port + 1 if 0 < args.port < 65535 else 0
    from airflow_provider_lytics.emulator.clock import EmulatorClock

    server = EmulatorServer(
        clock=EmulatorClock(args.now, frozen=args.frozen_clock),
        host=args.host,
        port=args.port,
        bulk_port=bulk_port,
        db_path=args.db,
        tokens=args.tokens,
        job_timings=job_timings(args.job_timings),
        http=args.http,
    )
    sftp = None
    try:
        try:
            sftp_users = _sftp_users(args.sftp_users)
            server.start()
            server.backend.store.unmapped = args.unmapped_streams
            if args.sftp_port is not None:
                from airflow_provider_lytics.emulator.sftp import serve_sftp

                root = _sftp_root(args)
                root.mkdir(parents=True, exist_ok=True)
                sftp = serve_sftp(root, host=args.host, port=args.sftp_port, users=sftp_users)
        except (EmulatorStartError, ValueError) as exc:
            print(f"lytics-emulator: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"Lytics emulator serving on {server.url}", flush=True)
        print(f"bulk host: {server.bulk_url}", flush=True)
        print(_token_hint(server.token), flush=True)
        if args.db:
            print(f"state file: {args.db}", flush=True)
        if server.clock.mode != "real":
            snap = server.clock.snapshot()
            print(f"clock: {snap['mode']} at {snap['now']} (GET/POST /_emulator/clock)", flush=True)
        if sftp is not None:
            print(sftp.describe(), flush=True)
            print(f"sftp host key: {sftp.host_public_key}", flush=True)
        while not stop.wait(0.5):
            if not server.running:
                print("lytics-emulator: error: the HTTP server stopped unexpectedly", file=sys.stderr)
                return 1
        print("Lytics emulator stopping", flush=True)
        return 0
    finally:
        if sftp is not None:
            sftp.stop()
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _seed(args: argparse.Namespace) -> int:
    from airflow_provider_lytics.emulator.backend import build_backend
    from airflow_provider_lytics.emulator.seed import seed_population

    backend = build_backend(args.db)
    try:
        counts = seed_population(backend.store, args.users, seed=args.seed)
    finally:
        backend.close()
    print(json.dumps({"db": args.db, "users": args.users, "seed": args.seed, "counts": counts}, default=str))
    if not args.db:
        print("note: no --db given, the population was generated in memory and discarded", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "sandbox":
            from airflow_provider_lytics.emulator.sandbox_cli import run_sandbox

            return run_sandbox(args)
        return _seed(args)
    except (OSError, sqlite3.Error) as exc:
        # e.g. an unwritable --db directory: name the file instead of dumping a traceback.
        where = f" (--db {args.db})" if getattr(args, "db", None) else ""
        print(f"lytics-emulator: error{where}: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
