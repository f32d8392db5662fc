"""The package has one retry driver (client/retry.py): every retry loop runs in it, no other code backs off.

A source scan finds hand-written retry loops and back-off arithmetic outside the driver; the waits that remain
elsewhere are polling, pacing or lease renewal, listed here with the reason. The SFTP connect loop, the one
retry loop with no behaviour test elsewhere, is exercised through the driver below.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

import airflow_provider_lytics
from airflow_provider_lytics.io import sftp_connect
from airflow_provider_lytics.io.sftp_config import SftpConfig
from airflow_provider_lytics.io.sftp_errors import SftpConnectError

PACKAGE = Path(airflow_provider_lytics.__file__).parent
DRIVER = "client/retry.py"
#: the retry loops of the package: each builds a RetryTracker and runs its attempts in it
RETRY_LOOPS = {
    "client/http.py": "sync Lytics transport",
    "hooks/lytics_async.py": "async Lytics transport",
    "imports/sender.py": "import batch sender",
    "enrichment/runner.py": "enrichment requests",
    "io/webhook.py": "webhook delivery",
    "io/sftp_connect.py": "SFTP connect",
}
#: files that sleep for something other than a retry, and why
OTHER_WAITS = {
    "operators/jobs.py": "polls a Lytics job's status until a run ends",
    "triggers/jobs.py": "polls a Lytics job's status until a run ends",
    "triggers/audience.py": "polls audience sizes and memberships",
    "enrichment/ratelimit.py": "paces requests to a requests-per-second limit",
    "content/importer.py": "paces document upserts to a requests-per-second limit",
    "io/webhook.py": "paces requests to a requests-per-second limit (RateLimiter)",
    "exports/lease.py": "waits for another worker's lease to lapse",
    "imports/lease.py": "waits for another worker's lease to lapse",
}
#: restart loops with no wait in between, which the driver does not model
RESTARTS = {
    "exports/scanner.py": "restarts a scan whose cursor expired, at once and inside a generator",
}
SLEEP = re.compile(r"sleep\(")
BACKOFF_MATH = re.compile(r"\.(next_delay|backoff|delay)\(")
HAND_LOOP = re.compile(r"\battempts?\s*\+=\s*1\b|for\s+attempts?\s+in\s+range\(")


def sources() -> dict[str, str]:
    """Every module of the provider except the emulator (a stand-in for Lytics, not provider code)."""
    return {
        str(path.relative_to(PACKAGE)): path.read_text()
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0] != "emulator"
    }


def test_backoff_arithmetic_lives_only_in_the_driver():
    found = [name for name, text in sources().items() if name != DRIVER and BACKOFF_MATH.search(text)]
    assert found == [], f"back-off computed outside {DRIVER}: {found}; run the loop with RetryTracker.run"


def test_no_hand_written_attempt_loops():
    found = [name for name, text in sources().items() if name != DRIVER and HAND_LOOP.search(text)]
    assert found == sorted(RESTARTS), f"attempt counting outside {DRIVER}: {found}; run the loop with RetryTracker.run"


def test_every_other_sleep_is_a_poll_a_pace_or_a_lease():
    found = {name for name, text in sources().items() if name != DRIVER and SLEEP.search(text)}
    unexplained = found - set(OTHER_WAITS)
    assert not unexplained, (
        f"{sorted(unexplained)} sleep(): a retry belongs in RetryTracker.run/run_async ({DRIVER}); any other wait "
        "goes in OTHER_WAITS with its reason"
    )
    assert set(OTHER_WAITS) <= found, "OTHER_WAITS lists a file that no longer waits"


@pytest.mark.parametrize("name", sorted(RETRY_LOOPS))
def test_each_retry_loop_runs_in_the_driver(name):
    text = sources()[name]
    assert "RetryTracker(" in text and re.search(r"\.run(_async)?\(attempt", text), RETRY_LOOPS[name]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_sftp_connect_retries_a_refused_connection_through_the_driver(monkeypatch, caplog):
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(sftp_connect, "_sleep", record)
    config = SftpConfig(host="127.0.0.1", port=_closed_port(), username="u", password="pw",
                        no_host_key_check=True, look_for_keys=False, conn_retry_attempts=4)  # fmt: skip
    with pytest.raises(SftpConnectError, match=r"after 4 attempt\(s\)"):
        await sftp_connect.connect(config)
    assert waits == [2.0, 4.0, 5.0]
    assert caplog.text.count("SFTP connect to") == 3
