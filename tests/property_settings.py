"""Hypothesis settings for the property-based tests: few examples in CI, many at release time.

``LYTICS_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/emulator/test_filterql_properties.py
tests/templating/test_properties.py`` runs the long fuzz (see docs/guarantees.md). No deadline: time per case is
bounded by the engines' own operation limits, not by wall-clock budgets that depend on machine load.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings


def fuzz_settings(ci_examples: int = 100) -> settings:
    examples = int(os.environ.get("LYTICS_FUZZ_EXAMPLES", ci_examples))
    return settings(
        max_examples=examples, deadline=None, derandomize="LYTICS_FUZZ_EXAMPLES" not in os.environ,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )  # fmt: skip
