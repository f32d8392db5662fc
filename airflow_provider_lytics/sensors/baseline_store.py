"""Keep an audience membership baseline between reschedule-mode pokes, where every worker can read it.

A rescheduled sensor is a new task process at each poke, possibly on another worker, so the baseline (64-bit
digests of member ids, see :mod:`airflow_provider_lytics.triggers.audience`) cannot stay in memory and is too
big for XCom (8 bytes a member). Two homes, both deleted once the sensor succeeds:

- :class:`ObjectStorageBaseline`: Airflow object storage (``s3://``, ``gs://``, ``file://`` on a shared volume)
  under one file per task instance, a sorted, zlib-compressed array of digests, written to ``<name>.part``
  first and renamed. Any size, any Airflow version.
- :class:`TaskStateBaseline`: Airflow 3.3's task state store (``context["task_state_store"]``), as base64
  text. No setup; Airflow warns above ``[state_store] max_value_storage_bytes`` (64 KB by default, about 6,000
  members) unless a ``[workers] state_store_backend`` offloads large values.
"""

from __future__ import annotations

import base64
import logging
import re
import zlib
from array import array
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)
_MAGIC = b"LYTMEMB1"
STATE_KEY = "lytics_membership_baseline"
_STATE_HINT_BYTES = 65535
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _part(value: Any) -> str:
    return _UNSAFE.sub("_", str(value)).strip("._") or "_"


def baseline_path(base_uri: str, context: Mapping[str, Any], conn_id: str | None = None) -> Any:
    """``<base_uri>/<dag_id>/<run_id>/<task_id>[.<map_index>].members``: one file per task instance."""
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    ti = context["ti"]
    name = _part(ti.task_id)
    map_index = getattr(ti, "map_index", -1)
    if isinstance(map_index, int) and map_index >= 0:
        name += f".{map_index}"
    base = ObjectStoragePath(base_uri, conn_id=conn_id) if conn_id else ObjectStoragePath(base_uri)
    return base / _part(ti.dag_id) / _part(ti.run_id) / f"{name}.members"


def encode_baseline(digests: set[int]) -> bytes:
    values = array("Q", sorted(digests))
    if values.itemsize != 8:  # pragma: no cover - every supported platform has 8-byte 'Q'
        raise RuntimeError("this platform's array('Q') is not 64-bit")
    return _MAGIC + zlib.compress(values.tobytes(), 1)


def decode_baseline(blob: bytes) -> set[int]:
    if not blob.startswith(_MAGIC):
        raise ValueError("not a membership baseline written by LyticsAudienceMembershipSensor")
    values = array("Q")
    values.frombytes(zlib.decompress(blob[len(_MAGIC) :]))
    return set(values)


def save_baseline(path: Any, digests: set[int]) -> None:
    """Write the baseline under a temporary name, then rename it into place (no half-written baseline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.parent / f"{path.name}.part"
    with part.open("wb") as fh:
        fh.write(encode_baseline(digests))
    part.rename(path)


def load_baseline(path: Any) -> set[int] | None:
    """The stored baseline, or ``None`` at the first poke."""
    if not path.exists():
        return None
    with path.open("rb") as fh:
        return decode_baseline(fh.read())


def drop_baseline(path: Any) -> None:
    if path.exists():
        path.unlink()


class ObjectStorageBaseline:
    """The baseline as one file in object storage (see the module docstring)."""

    def __init__(self, path: Any) -> None:
        self.path = path

    def load(self) -> set[int] | None:
        return load_baseline(self.path)

    def save(self, digests: set[int]) -> None:
        save_baseline(self.path, digests)

    def drop(self) -> None:
        drop_baseline(self.path)

    def __str__(self) -> str:
        return str(self.path)


class TaskStateBaseline:
    """The baseline in Airflow 3.3's task state store of this task instance."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def load(self) -> set[int] | None:
        text = self.store.get(STATE_KEY)
        return decode_baseline(base64.b64decode(text)) if text else None

    def save(self, digests: set[int]) -> None:
        text = base64.b64encode(encode_baseline(digests)).decode("ascii")
        if len(text) > _STATE_HINT_BYTES:
            log.warning(
                "The membership baseline is %d bytes in the task state store (%d members); for large audiences "
                "pass baseline_uri= (object storage) or configure [workers] state_store_backend",
                len(text), len(digests),
            )  # fmt: skip
        self.store.set(STATE_KEY, text)

    def drop(self) -> None:
        self.store.delete(STATE_KEY)

    def __str__(self) -> str:
        return f"the task state store (key {STATE_KEY})"


def task_state_store_available() -> bool:
    """Whether this Airflow has the task state store (3.3+)."""
    try:
        from airflow.sdk.execution_time.context import TaskStateStoreAccessor  # noqa: F401
    except ImportError:
        return False
    return True
