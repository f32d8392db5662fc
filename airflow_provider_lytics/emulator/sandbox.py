"""A complete offline Lytics environment as one object: everything the example DAGs talk to, on loopback ports.

:class:`LyticsSandbox` starts, in this process:

- the Lytics API + bulk host (:class:`~airflow_provider_lytics.emulator.server.EmulatorServer`, fast job timings),
  seeded with a deterministic population (:func:`~airflow_provider_lytics.emulator.seed.seed_population`) and the
  audiences the DAGs expect (``all_users``, ``high_value``, ``demo_high_value``, ``demo_enrichment_audience``...);
- the managed SFTP server (:class:`~airflow_provider_lytics.emulator.sftp.EmulatorSftpServer`), host key pinned;
- the emulated enrichment vendor (:class:`~airflow_provider_lytics.emulator.enrichment_service.EnrichmentService`);
- a webhook receiver that records every delivery (Go-template alerts, ``webhook_triggers`` jobs);
- a PGP key pair made by the ``gpg`` CLI in a private temporary directory;

and exposes the Airflow connections for every conn id the example DAGs use as ``AIRFLOW_CONN_*`` values
(:meth:`connection_env`; :meth:`apply_env` sets them). :meth:`stop` (or leaving the ``with`` block) stops every
server, kills the gpg agent and removes the temporary directory (SFTP data, key ring, host key): only the
``outputs`` directory the caller chose stays behind. The private key lives only in that directory and in the
connection env values, never in logs or files the caller keeps.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

#: Audiences seeded on top of the population's starter segments (slug -> FilterQL).
DEMO_SEGMENTS: dict[str, str] = {
    # The quickstart DAG (re)defines this one from the CSV it imports; seeding it lets other DAGs run first too.
    "demo_high_value": 'FILTER AND (plan = "pro", ltv >= 500) FROM user ALIAS demo_high_value '
    'WITH name = "Demo high value"',
}
#: Users in ``demo_enrichment_audience``: small, so the enrichment DAG's 10 requests/s keeps the demo quick.
ENRICHMENT_AUDIENCE_SIZE = 20
#: Deliveries the webhook receiver keeps (oldest dropped first): memory stays flat in a long demo.
MAX_DELIVERIES = 50_000
_GPG_TIMEOUT = 60


class SandboxError(RuntimeError):
    """The sandbox could not start (missing gpg binary, port in use...); the message says what to fix."""


@dataclass(frozen=True)
class Delivery:
    """One request the webhook receiver accepted (auth headers are never recorded)."""

    path: str
    content_type: str
    body: Any


class WebhookReceiver:
    """A tiny HTTP server that answers 200 to every POST and records it; a stand-in for a partner's endpoint."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._requested_port = port
        self._deliveries: deque[Delivery] = deque(maxlen=MAX_DELIVERIES)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise SandboxError("the webhook receiver is not running; call start() first")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def deliveries(self, path_prefix: str = "") -> list[Delivery]:
        """Recorded deliveries whose path starts with ``path_prefix``, oldest first."""
        with self._lock:
            return [d for d in self._deliveries if d.path.startswith(path_prefix)]

    def clear(self) -> None:
        with self._lock:
            self._deliveries.clear()

    def start(self) -> WebhookReceiver:
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with receiver._lock:
                    receiver._deliveries.append(Delivery(self.path, self.headers.get("Content-Type", ""), body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "11")
                self.end_headers()
                self.wfile.write(b'{"ok":true}')

            def log_message(self, format: str, *args: Any) -> None:
                """Silence the per-request stderr lines."""

        self._server = ThreadingHTTPServer((self.host, self._requested_port), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None


@dataclass
class PgpKeyPair:
    """A key pair made by the gpg CLI in ``home`` (a private temp dir); the armored private key stays in memory."""

    home: Path
    fingerprint: str
    public_key: str
    private_key: str = field(repr=False)
    passphrase: str = field(repr=False)


def _gpg(home: Path, *args: str, stdin: bytes | None = None) -> bytes:
    """Run ``gpg`` in batch mode against ``home``; errors carry gpg's message (never the passphrase)."""
    binary = shutil.which("gpg")
    if binary is None:
        raise SandboxError("the gpg binary is not on PATH: install GnuPG 2.2+ (e.g. apt-get install gnupg)")
    cmd = [binary, "--batch", "--no-tty", "--homedir", str(home), *args]
    done = subprocess.run(cmd, input=stdin, capture_output=True, timeout=_GPG_TIMEOUT, check=False)
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise SandboxError(f"gpg {args[0]} failed: {' | '.join(message)}")
    return done.stdout


def generate_key_pair(home: Path, uid: str = "Lytics demo partner <partner@example.invalid>") -> PgpKeyPair:
    """An ed25519/cv25519 key pair (fast to make) protected by a random passphrase, exported armored."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    passphrase = secrets.token_urlsafe(24)
    unlock = ("--pinentry-mode", "loopback", "--passphrase-fd", "0")
    _gpg(home, *unlock, "--quick-generate-key", uid, "future-default", "default", "never",
         stdin=passphrase.encode())  # fmt: skip
    listing = _gpg(home, "--with-colons", "--list-secret-keys").decode()
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    public = _gpg(home, "--armor", "--export", fingerprint).decode()
    private = _gpg(home, *unlock, "--armor", "--export-secret-keys", fingerprint, stdin=passphrase.encode()).decode()
    return PgpKeyPair(home, fingerprint, public, private, passphrase)


@dataclass(frozen=True)
class SandboxPorts:
    """Loopback ports of the sandbox's servers; 0 picks a free one (tests, the demo)."""

    api: int = 0
    bulk: int = 0
    sftp: int = 0
    enrichment: int = 0
    webhooks: int = 0


#: The ports ``lytics-emulator sandbox`` uses by default, so docs and connections can name them.
FIXED_PORTS = SandboxPorts(api=8765, bulk=8766, sftp=2222, enrichment=8767, webhooks=8768)


class LyticsSandbox:
    """Every server the example DAGs need, started together and stopped together (``with LyticsSandbox(...)``).

    :param outputs: directory kept after :meth:`stop` (exports, downloads, results); created when missing.
    :param users: size of the seeded population.
    :param seed: random seed of the population (same seed, same profiles).
    :param now: start the emulator's clock at this aware instant (it then runs at the real rate), so a run sees the
        same time of day whenever it happens; ``None`` is real time. ``self.lytics.clock`` (or
        ``POST /_emulator/clock``) moves it later.
    :param job_timings: how fast emulated Lytics jobs move: a ``--job-timings`` preset name (default ``fast``) or a
        :class:`~airflow_provider_lytics.emulator.jobs.JobTimings` (e.g. runs long enough that a deferrable
        operator is certain to defer before the run ends).
    :param ports: where each server listens (default: free ports).
    """

    def __init__(
        self,
        outputs: Path | str,
        *,
        users: int = 2_000,
        seed: int = 0,
        now: datetime | None = None,
        job_timings: Any = "fast",
        ports: SandboxPorts | None = None,
    ) -> None:
        if now is not None and (not isinstance(now, datetime) or now.utcoffset() is None):
            raise ValueError(f"now must be a timezone-aware datetime (e.g. tzinfo=ZoneInfo(...)), got {now!r}")
        self.now = now
        self.job_timings = job_timings
        if not isinstance(users, int) or users < ENRICHMENT_AUDIENCE_SIZE:
            raise ValueError(f"users must be an integer >= {ENRICHMENT_AUDIENCE_SIZE}, got {users!r}")
        self.outputs = Path(outputs).expanduser().resolve()
        self.users = users
        self.seed = seed
        self.ports = ports or SandboxPorts()
        self.workdir: Path | None = None
        self.lytics: Any = None
        self.sftp: Any = None
        self.enrichment: Any = None
        self.webhooks: WebhookReceiver | None = None
        self.pgp: PgpKeyPair | None = None
        self.seeded: dict[str, Any] = {}
        self._applied: dict[str, str | None] = {}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LyticsSandbox:
        """Start everything; on any failure, stop what already started and re-raise."""
        from airflow_provider_lytics.emulator.cli import job_timings
        from airflow_provider_lytics.emulator.clock import EmulatorClock
        from airflow_provider_lytics.emulator.enrichment_service import EnrichmentService
        from airflow_provider_lytics.emulator.server import EmulatorServer
        from airflow_provider_lytics.emulator.sftp import EmulatorSftpServer

        try:
            self.outputs.mkdir(parents=True, exist_ok=True)
            self.workdir = Path(tempfile.mkdtemp(prefix="lytics-sandbox-"))  # mode 0700
            self.pgp = generate_key_pair(self.workdir / "gnupg")
            clock = EmulatorClock(self.now)
            ports = self.ports
            timings = job_timings(self.job_timings) if isinstance(self.job_timings, str) else self.job_timings
            self.lytics = EmulatorServer(job_timings=timings, clock=clock, port=ports.api, bulk_port=ports.bulk).start()
            self.seeded = self._seed()
            users = {"lytics": {"password": secrets.token_urlsafe(16)}}
            self.sftp = EmulatorSftpServer(self.workdir / "sftp" / "root", port=ports.sftp, users=users).start()
            self.enrichment = EnrichmentService(port=ports.enrichment).start()
            self.webhooks = WebhookReceiver(port=ports.webhooks).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every server, restore env vars set by :meth:`apply_env`, remove the temp dir. Safe to repeat."""
        self.restore_env()
        for name in ("webhooks", "enrichment", "sftp", "lytics"):
            server = getattr(self, name)
            if server is not None:
                try:
                    server.stop()
                except Exception:  # one server failing to stop must not keep the others running
                    log.warning("stopping the sandbox's %s failed", name, exc_info=True)
                setattr(self, name, None)
        if self.workdir is not None:
            if self.pgp is not None and shutil.which("gpgconf"):
                subprocess.run(["gpgconf", "--homedir", str(self.pgp.home), "--kill", "all"],
                               capture_output=True, timeout=_GPG_TIMEOUT, check=False)  # fmt: skip
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        self.pgp = None

    def __enter__(self) -> LyticsSandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ data
    def _seed(self) -> dict[str, Any]:
        from airflow_provider_lytics.emulator.seed import seed_population

        store = self.lytics.backend.store
        summary = seed_population(store, self.users, seed=self.seed)
        ids = ", ".join(f'"u{i:08d}"' for i in range(ENRICHMENT_AUDIENCE_SIZE))
        segments = {
            **DEMO_SEGMENTS,
            "demo_enrichment_audience": f"FILTER user_id IN ({ids}) FROM user ALIAS demo_enrichment_audience "
            'WITH name = "Demo enrichment audience"',
        }
        for slug, text in segments.items():
            store.segments.create({"segment_ql": text}, None, rename_taken_slug=False)
            summary["segments"].append(slug)
        return summary

    @property
    def sftp_root(self) -> Path:
        """Local directory the SFTP server serves as ``/`` (to drop partner files or inspect uploads)."""
        if self.sftp is None:
            raise SandboxError("the sandbox is not running; call start() first")
        return self.sftp.root

    def sftp_path(self, remote: str) -> Path:
        """Local path of the SFTP path ``remote`` (e.g. ``/imports/customers/a.csv.gpg``)."""
        local = (self.sftp_root / remote.lstrip("/")).resolve()
        if self.sftp_root != local and self.sftp_root not in local.parents:
            raise ValueError(f"{remote!r} points outside the SFTP root")
        return local

    def encrypt_to_sftp(self, plaintext: Path, remote: str, *, age_seconds: float = 0) -> Path:
        """Encrypt ``plaintext`` to the sandbox key with the gpg CLI straight into the SFTP path ``remote``.

        ``age_seconds`` backdates the file's mtime (sensors ignore files younger than their ``min_age_seconds``).
        """
        if self.pgp is None:
            raise SandboxError("the sandbox is not running; call start() first")
        target = self.sftp_path(remote)
        target.parent.mkdir(parents=True, exist_ok=True)
        _gpg(self.pgp.home, "--trust-model", "always", "--yes", "--encrypt", "--recipient", self.pgp.fingerprint,
             "--output", str(target), str(plaintext))  # fmt: skip
        if age_seconds:
            stamp = target.stat().st_mtime - age_seconds
            os.utime(target, (stamp, stamp))
        return target

    def decrypt(self, ciphertext: Path) -> bytes:
        """Plaintext of a file encrypted to the sandbox key (to check what a DAG uploaded)."""
        if self.pgp is None:
            raise SandboxError("the sandbox is not running; call start() first")
        return _gpg(self.pgp.home, "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--decrypt",
                    str(ciphertext), stdin=self.pgp.passphrase.encode())  # fmt: skip

    # ------------------------------------------------------------------ connections
    def connections(self) -> dict[str, dict[str, Any]]:
        """Every conn id the example DAGs use -> its Airflow connection (JSON form)."""
        if self.lytics is None or self.pgp is None or self.webhooks is None:
            raise SandboxError("the sandbox is not running; call start() first")
        # Ports stored explicitly (0 = none for PGP): Airflow 3.3's Test button needs one (see forms.py).
        lytics = {"conn_type": "lytics", "host": self.lytics.url, "port": urlsplit(self.lytics.url).port,
                  "password": self.lytics.token, "extra": {"bulk_url": self.lytics.bulk_url}}  # fmt: skip
        sftp = self.sftp.airflow_connection("lytics")
        pgp = {"conn_type": "pgp", "port": 0, "password": self.pgp.passphrase,
               "extra": {"public_key": self.pgp.public_key, "private_key": self.pgp.private_key}}  # fmt: skip
        enrichment = {"conn_type": "http", "host": self.enrichment.host, "port": self.enrichment.port,
                      "schema": "http", "password": self.enrichment.api_key}  # fmt: skip
        webhook = {"conn_type": "http", "host": self.webhooks.host, "port": self.webhooks.port, "schema": "http"}
        return {
            "lytics_default": lytics,
            "lytics_sftp": sftp,
            "partner_sftp": sftp,
            "lytics_pgp": pgp,
            "partner_pgp": pgp,
            "enrichment_api": enrichment,
            "lytics_alerts_webhook": webhook,
            "lytics_audience_webhook": webhook,  # the webhook_triggers job's receiver (path: a DAG param)
        }

    def connection_env(self) -> dict[str, str]:
        """``AIRFLOW_CONN_<ID>`` env values for :meth:`connections`."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in self.connections().items()}

    def apply_env(self) -> dict[str, str]:
        """Set :meth:`connection_env` in ``os.environ`` (restored by :meth:`stop`); returns what was set."""
        env = self.connection_env()
        for name, value in env.items():
            self._applied.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        return env

    def restore_env(self) -> None:
        for name, previous in self._applied.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous
        self._applied.clear()

    def describe(self) -> str:
        """A few lines for the demo banner (no secrets)."""
        if self.lytics is None or self.pgp is None or self.webhooks is None:
            raise SandboxError("the sandbox is not running; call start() first")
        return "\n".join([
            f"  Lytics API      {self.lytics.url} (bulk {self.lytics.bulk_url}), "
            f"{self.seeded.get('profiles')} seeded profiles",
            f"  managed SFTP    {self.sftp.describe()}",
            f"  enrichment API  {self.enrichment.url}",
            f"  webhooks        {self.webhooks.url}",
            f"  PGP key         {self.pgp.fingerprint} (temporary key ring, removed at stop)",
        ])  # fmt: skip
