"""A real Airflow 3 deployment on loopback, started from this repository's files and driven from outside.

:class:`AirflowDeployment` runs what a production Airflow runs, each as its own OS process: ``api-server``,
``scheduler``, ``dag-processor``, ``triggerer`` and two Celery workers (``worker-a``, ``worker-b``) on the
``CeleryExecutor``, with the metadata database in PostgreSQL (a fresh database per run) and the Celery broker in
Redis. Everything binds to 127.0.0.1. Tests drive it only through public interfaces: the REST API v2 (with a JWT
from ``/auth/token``, as any client), the ``airflow`` CLI, and a browser.

Each worker reports its own name as the task instance ``hostname`` (``[core] hostname_callable``), so a test can
tell which worker ran a try, and kill that worker's whole process group by PID. Logs of every process stay in
``<root>/logs`` for the failure report; :meth:`stop` ends every process it started and drops the database.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]
AIRFLOW_BIN = Path(sys.executable).with_name("airflow")
PG_DSN = "postgresql+psycopg2://postgres@127.0.0.1:5432/{db}"
REDIS_URL = "redis://127.0.0.1:6379/{index}"
ADMIN_USER = "admin"
#: Celery workers, each consuming the shared ``default`` queue; a task instance's ``hostname`` is the name.
WORKERS = ("worker-a", "worker-b")

_HOSTNAME_MODULE = '''"""Written by the deployment suite: each worker names itself from its environment."""
import os


def hostname() -> str:
    return os.environ.get("LYTICS_DEPLOY_PROCESS", "airflow")
'''


class DeploymentError(RuntimeError):
    """The deployment could not start or a call to it failed; the message says which process and why."""


def service_reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Process:
    """One Airflow process this deployment started (its own process group, so a kill takes its children)."""

    name: str
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class AirflowDeployment:
    """Start, drive and stop a CeleryExecutor Airflow with its own Postgres database and Redis broker index."""

    root: Path
    dags_folder: Path = REPO / "dags"
    redis_index: int = 11
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.home = self.root / "airflow_home"
        self.home.mkdir(exist_ok=True)
        self.logs = self.root / "logs"
        self.logs.mkdir(exist_ok=True)
        self.database = f"lytics_deploy_{os.getpid()}_{secrets.token_hex(3)}"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(12)
        self._token: str | None = None
        self._session = requests.Session()
        pythonpath = self.root / "pythonpath"
        pythonpath.mkdir(exist_ok=True)
        (pythonpath / "lytics_deploy_hostname.py").write_text(_HOSTNAME_MODULE)
        (self.home / "passwords.json").write_text(json.dumps({ADMIN_USER: self.password}))
        self.env = self._environment(pythonpath)

    # ------------------------------------------------------------------ configuration
    def _environment(self, pythonpath: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
        sql = PG_DSN.format(db=self.database)
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "PYTHONPATH": os.pathsep.join(p for p in (str(pythonpath), env.get("PYTHONPATH", "")) if p),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "lytics_deploy_hostname.hostname",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql,
            "AIRFLOW__CELERY__BROKER_URL": REDIS_URL.format(index=self.redis_index),
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + sql,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs / "tasks"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # A killed worker's task must be noticed in seconds, not the default five minutes.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            # Workers call the api-server's execution API; on a busy 2-core machine 5 s is not always enough.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            "AIRFLOW__OPENLINEAGE__DISABLED": "True",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        })  # fmt: skip
        env.update(self.extra_env)
        return env

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 240.0) -> AirflowDeployment:
        """Create the database, migrate it, start every process and wait until the API answers."""
        self._create_database()
        self._flush_broker()
        self.cli("db", "migrate", timeout=timeout)
        for name, args in (
            ("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(self.port)]),
            ("scheduler", ["scheduler"]),
            ("dag-processor", ["dag-processor"]),
            ("triggerer", ["triggerer"]),
        ):
            self._spawn(name, args)
        for worker in WORKERS:
            self.start_worker(worker)
        self.wait_healthy(timeout)
        return self

    def start_worker(self, name: str) -> Process:
        """Start (or restart) Celery worker ``name``; it consumes the ``default`` queue."""
        args = ["celery", "worker", "--queues", "default", "--concurrency", "4", "--celery-hostname", f"{name}@%h",
                "--skip-serve-logs"]  # fmt: skip
        return self._spawn(name, args)

    def kill_worker(self, name: str) -> None:
        """SIGKILL worker ``name`` and every process in its group (its task supervisors and task processes)."""
        proc = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.popen.wait(timeout=30)

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after a grace period) and drop the database."""
        for proc in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.processes.values():
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # stragglers in the group (task processes)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=5)
        self._drop_database()

    def _spawn(self, name: str, args: list[str]) -> Process:
        old = self.processes.get(name)
        if old is not None and old.alive():
            raise DeploymentError(f"{name} is already running (pid {old.pid})")
        log_path = self.logs / f"{name}.log"
        log = log_path.open("ab")
        env = dict(self.env, LYTICS_DEPLOY_PROCESS=name)
        popen = subprocess.Popen(
            [str(AIRFLOW_BIN), *args], env=env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        log.close()
        proc = Process(name, popen, log_path)
        self.processes[name] = proc
        return proc

    def wait_healthy(self, timeout: float) -> None:
        """Wait until the API answers and the scheduler, triggerer and dag-processor report healthy."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                health = requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).json()
                last = health
                parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
                if all((health.get(p) or {}).get("status") == "healthy" for p in parts):
                    return
            except (requests.RequestException, ValueError) as exc:
                last = exc
            time.sleep(1)
        raise DeploymentError(f"Airflow not healthy after {timeout:.0f}s: {last}\n{self.report()}")

    def _check_alive(self) -> None:
        dead = [p for p in self.processes.values() if not p.alive() and p.name not in self._killed_names()]
        if dead:
            raise DeploymentError("exited: " + ", ".join(p.name for p in dead) + "\n" + self.report())

    def _killed_names(self) -> set[str]:
        return {n for n in WORKERS if n in self.processes and self.processes[n].popen.returncode == -signal.SIGKILL}

    def report(self) -> str:
        """The last lines of every process's log (for failure messages; tokens never reach these logs)."""
        return "\n".join(f"--- {p.name} (pid {p.pid}, alive={p.alive()})\n{p.tail()}" for p in self.processes.values())

    # ------------------------------------------------------------------ database and broker
    def _pg(self) -> Any:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
        conn.autocommit = True
        return conn

    def _create_database(self) -> None:
        with contextlib.closing(self._pg()) as conn, conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{self.database}"')

    def _drop_database(self) -> None:
        with contextlib.suppress(Exception), contextlib.closing(self._pg()) as conn, conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def _flush_broker(self) -> None:
        import redis

        redis.Redis(host="127.0.0.1", port=6379, db=self.redis_index).flushdb()

    # ------------------------------------------------------------------ CLI
    def cli(self, *args: str, timeout: float = 180.0, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``airflow <args>`` against this deployment (its config, its database)."""
        done = subprocess.run([str(AIRFLOW_BIN), *args], env=self.env, cwd=self.root, capture_output=True,
                              text=True, timeout=timeout, check=False)  # fmt: skip
        if check and done.returncode != 0:
            raise DeploymentError(f"airflow {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done

    # ------------------------------------------------------------------ REST API v2
    def token(self) -> str:
        """A JWT for the admin user from ``POST /auth/token``, as any API client gets one."""
        if self._token is None:
            credentials = {"username": ADMIN_USER, "password": self.password}
            resp = requests.post(f"{self.base_url}/auth/token", json=credentials, timeout=30)
            if resp.status_code >= 300:
                raise DeploymentError(f"/auth/token answered {resp.status_code}: {resp.text[:300]}")
            self._token = resp.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, *, expect: tuple[int, ...] = (200, 201, 204), **kwargs: Any) -> Any:
        """Call ``/api/v2<path>``; returns the decoded JSON (or None); other statuses raise with the body."""
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {self.token()}"}
        resp = self._session.request(method, f"{self.base_url}/api/v2{path}", headers=headers, timeout=60, **kwargs)
        if resp.status_code not in expect:
            raise DeploymentError(f"{method} /api/v2{path} answered {resp.status_code}: {resp.text[:1000]}")
        return resp.json() if resp.content else None

    def create_connection(self, conn_id: str, spec: dict[str, Any]) -> None:
        """Store a connection in the metadata database through the REST API (replacing one of the same id)."""
        body = {"connection_id": conn_id, "conn_type": spec.get("conn_type")}
        for key in ("host", "login", "password", "schema", "port", "description"):
            if spec.get(key) not in (None, ""):
                body[key] = spec[key]
        extra = spec.get("extra")
        if extra:
            body["extra"] = extra if isinstance(extra, str) else json.dumps(extra)
        self.api("DELETE", f"/connections/{conn_id}", expect=(204, 404))
        self.api("POST", "/connections", json=body)

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 180.0) -> None:
        """Wait until the dag-processor has serialized every DAG in ``dag_ids`` (import errors fail at once)."""
        deadline = time.monotonic() + timeout
        missing: set[str] = set(dag_ids)
        while time.monotonic() < deadline:
            errors = self.api("GET", "/importErrors")["import_errors"]
            if errors:
                raise DeploymentError("DAG import errors: " + json.dumps(errors)[:3000])
            known = {d["dag_id"] for d in self.api("GET", "/dags", params={"limit": 100})["dags"]}
            missing = set(dag_ids) - known
            if not missing:
                return
            time.sleep(2)
        raise DeploymentError(f"DAGs not parsed after {timeout:.0f}s: {sorted(missing)}\n{self.report()}")

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, *, logical_date: str | None = None) -> str:
        """Trigger ``dag_id`` through the REST API (``logical_date`` null unless given); returns the run id."""
        body: dict[str, Any] = {"logical_date": logical_date, "conf": conf or {}}
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})[
            "task_instances"
        ]

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every try of a task instance (the retried ones included), oldest first."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries"
        return sorted(self.api("GET", path)["task_instances"], key=lambda t: t["try_number"])

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.api("GET", path, params={"deserialize": "true", "stringify": "false"})["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The task's log for one try, as the UI shows it (every line's event text)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        body = self.api("GET", path, params={"full_content": "true"}, headers={"Accept": "application/json"})
        content = body.get("content")
        if isinstance(content, list):
            return "\n".join(str(c.get("event", c)) if isinstance(c, dict) else str(c) for c in content)
        return str(content)

    def failure_details(self, dag_id: str, run_id: str) -> str:
        """Every failed task's state and the end of its log, for assertion messages."""
        out = []
        for ti in self.task_instances(dag_id, run_id):
            if ti["state"] not in ("success", "skipped"):
                log = self.task_log(dag_id, run_id, ti["task_id"], max(1, ti["try_number"]))
                out.append(f"{ti['task_id']}: {ti['state']} (try {ti['try_number']})\n{log[-3000:]}")
        return "\n".join(out)


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()
