"""The one way this provider's sensors hand their wait to a trigger (deadline and padding in one place)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any


def defer_to_trigger(sensor: Any, make_trigger: Callable[[float], Any]) -> None:
    """Defer ``sensor`` into ``make_trigger(end_time)`` and resume in ``execute_complete``.

    The trigger gets the sensor's ``timeout`` as an absolute deadline so it yields a timeout event itself; the
    framework's own deferral timeout is padded by two poll intervals so that event arrives first.
    """
    end_time = time.time() + float(sensor.timeout)
    sensor.defer(
        trigger=make_trigger(end_time),
        method_name="execute_complete",
        timeout=timedelta(seconds=float(sensor.timeout) + 2 * float(sensor.poke_interval)),
    )
