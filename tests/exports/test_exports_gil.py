"""The export's shorter switch interval: lowered while running, restored afterwards, never raised."""

from __future__ import annotations

import sys
import threading

import pytest

from airflow_provider_lytics.exports.gil import SCAN_SWITCH_INTERVAL, responsive_gil
from airflow_provider_lytics.exports.runner import AudienceExport, ExportSpec


@pytest.fixture
def default_interval():
    saved = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    yield 0.005
    sys.setswitchinterval(saved)


def test_lowered_inside_restored_after(default_interval):
    with responsive_gil():
        assert sys.getswitchinterval() == pytest.approx(SCAN_SWITCH_INTERVAL)
    assert sys.getswitchinterval() == pytest.approx(default_interval)


def test_restored_after_an_error(default_interval):
    with pytest.raises(RuntimeError), responsive_gil():
        raise RuntimeError("boom")
    assert sys.getswitchinterval() == pytest.approx(default_interval)


def test_never_raises_a_lower_interval():
    saved = sys.getswitchinterval()
    sys.setswitchinterval(0.0001)
    try:
        with responsive_gil(0.0005):
            assert sys.getswitchinterval() == pytest.approx(0.0001, abs=2e-6)
        assert sys.getswitchinterval() == pytest.approx(0.0001, abs=2e-6)
    finally:
        sys.setswitchinterval(saved)


def test_overlapping_users_restore_only_when_the_last_leaves(default_interval):
    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        with responsive_gil():
            entered.set()
            release.wait(10)

    t = threading.Thread(target=other)
    with responsive_gil():
        t.start()
        assert entered.wait(10)
    # the first user left, the other is still inside: still lowered
    assert sys.getswitchinterval() == pytest.approx(SCAN_SWITCH_INTERVAL)
    release.set()
    t.join(10)
    assert sys.getswitchinterval() == pytest.approx(default_interval)


class _Recorder:
    """Stands in for the run body: records the interval it ran under."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.seen: float | None = None

    def __call__(self) -> str:
        self.seen = sys.getswitchinterval()
        if self.fail:
            raise RuntimeError("scan failed")
        return "result"


@pytest.mark.parametrize("fail", [False, True])
def test_export_run_uses_and_restores_it(default_interval, fail):
    export = AudienceExport.__new__(AudienceExport)
    export.spec = ExportSpec(segment="all", fields=["email"])
    body = _Recorder(fail)
    export._run = body  # type: ignore[method-assign]
    if fail:
        with pytest.raises(RuntimeError, match="scan failed"):
            export.run()
    else:
        assert export.run() == "result"
    assert body.seen == pytest.approx(SCAN_SWITCH_INTERVAL)
    assert sys.getswitchinterval() == pytest.approx(default_interval)


def test_export_can_leave_the_interval_alone(default_interval):
    export = AudienceExport.__new__(AudienceExport)
    export.switch_interval = None
    body = _Recorder(False)
    export._run = body  # type: ignore[method-assign]
    export.run()
    assert body.seen == pytest.approx(default_interval)
