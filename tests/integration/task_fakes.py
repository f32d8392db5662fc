"""A task instance for operator and sensor tests that run without a metadata DB (Variables: see conftest)."""

from __future__ import annotations


class TI:
    """A task instance that records XCom pushes in ``xcom``."""

    def __init__(self) -> None:
        self.xcom: dict = {}

    def xcom_push(self, key, value):
        self.xcom[key] = value
