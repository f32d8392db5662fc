"""Where an import remembers acknowledged batches, so a retried task (on any worker) re-sends nothing acknowledged.

Stores, best first:

* :class:`TaskStateCheckpointStore`: Airflow 3.3+ ``context["task_state_store"]``, scoped by the server to
  (dag, run, task, map index) and kept across retries; cleared when the task succeeds.
* :class:`VariableCheckpointStore`: an Airflow Variable keyed by dag/task/run/map index, for Airflow 2.11-3.2
  (the metadata database survives any worker). Deleted when the import succeeds.
* :class:`FileCheckpointStore`: a JSON file at a durable path the user chooses (a shared volume); written
  atomically (temporary file, fsync, rename).

The document is small JSON: per source part the acknowledged line ranges and the ranges that were in flight
when the try stopped, plus the counts Lytics reported so far. Each durable store also keeps a lease document next
to the checkpoint (see :mod:`~airflow_provider_lytics.imports.lease`): one run at a time may use a checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

CHECKPOINT_VERSION = 1
TASK_STATE_KEY = "lytics_import_checkpoint"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class CheckpointStore(Protocol):
    """Load, save and clear one JSON checkpoint document."""

    description: str

    def load(self) -> dict[str, Any] | None: ...

    def save(self, document: Mapping[str, Any]) -> None: ...

    def clear(self) -> None: ...


class MemoryCheckpointStore:
    """Keeps the checkpoint in this process only (dry runs, tests, ``checkpoint="none"``)."""

    description = "in memory (not resumable)"

    def __init__(self) -> None:
        self.document: dict[str, Any] | None = None

    def load(self) -> dict[str, Any] | None:
        return json.loads(json.dumps(self.document)) if self.document is not None else None

    def save(self, document: Mapping[str, Any]) -> None:
        self.document = json.loads(json.dumps(document))

    def clear(self) -> None:
        self.document = None

    #: Not shared with any other run: no lease needed.
    supports_lease = False


class CheckpointWriteError(Exception):
    """A checkpoint store did not keep what was written to it; the import stops before sending anything more."""


def write_verified(
    write: Callable[[Any], None], read: Callable[[], Any], document: Mapping[str, Any], where: str, attempts: int = 3
) -> None:
    """Write ``document``, read it back, and repeat up to ``attempts`` times; raise :class:`CheckpointWriteError`."""
    wanted = json.loads(json.dumps(document))  # what a JSON round trip through Airflow's API gives back
    for _ in range(attempts):
        write(wanted)
        if read() == wanted:
            return
    raise CheckpointWriteError(
        f"{where} did not keep the import checkpoint after {attempts} writes (each read back differently): the "
        "import stops so that no batch is sent that a retry would not know about. Check the api-server logs and "
        "the workers' [workers] execution_api_timeout, or use another checkpoint store (checkpoint='variable' or "
        "a durable file path)"
    )


class TaskStateCheckpointStore:
    """Airflow 3.3 task state store (``context["task_state_store"]``), every write read back.

    The Task SDK's ``set()`` sends the value to the worker's supervisor and does not look at the answer: a write
    the API server refused or never received (a timeout on a busy deployment) fails silently. A checkpoint that
    silently did not persist would make a retry re-send batches Lytics already acknowledged, so each write is
    verified by reading it back (one more small round trip per batch), retried ``write_attempts`` times, and
    otherwise stops the import with :class:`CheckpointWriteError`.
    """

    description = "Airflow task state store"

    def __init__(self, accessor: Any, key: str = TASK_STATE_KEY, *, write_attempts: int = 3) -> None:
        self.accessor, self.key, self.write_attempts = accessor, key, write_attempts

    def load(self) -> dict[str, Any] | None:
        value = self.accessor.get(self.key)
        return value if isinstance(value, dict) else None

    def save(self, document: Mapping[str, Any]) -> None:
        self._set_verified(self.key, document)

    def _set_verified(self, key: str, document: Mapping[str, Any]) -> None:
        write_verified(
            lambda value: self.accessor.set(key, value), lambda: self.accessor.get(key), document,
            f"Airflow's task state store key {key!r}", self.write_attempts,
        )  # fmt: skip

    def clear(self) -> None:
        self.accessor.delete(self.key)

    supports_lease = True

    def lease_load(self) -> dict[str, Any] | None:
        value = self.accessor.get(self.key + "_lease")
        return value if isinstance(value, dict) else None

    def lease_save(self, document: Mapping[str, Any]) -> None:
        self._set_verified(self.key + "_lease", document)

    def lease_clear(self) -> None:
        self.accessor.delete(self.key + "_lease")


class VariableCheckpointStore:
    """An Airflow Variable holding the JSON document (fallback for Airflow before 3.3); every write read back
    (on Airflow 3 the Task SDK's ``Variable.set()`` does not report a lost write either)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.description = f"Airflow Variable {key!r}"

    def load(self) -> dict[str, Any] | None:
        from airflow.providers.common.compat.sdk import Variable

        value = Variable.get(self.key, None)  # second positional is the default on Airflow 2 and 3
        if not value:
            return None
        return json.loads(value) if isinstance(value, str) else value

    def save(self, document: Mapping[str, Any]) -> None:
        from airflow.providers.common.compat.sdk import Variable

        write_verified(lambda value: Variable.set(self.key, json.dumps(value, separators=(",", ":"))), self.load,
                       document, self.description)  # fmt: skip

    def clear(self) -> None:
        from airflow.providers.common.compat.sdk import Variable

        with contextlib.suppress(Exception):
            Variable.delete(self.key)

    supports_lease = True

    def lease_load(self) -> dict[str, Any] | None:
        from airflow.providers.common.compat.sdk import Variable

        value = Variable.get(self.key + "__lease", None)
        if not value:
            return None
        value = json.loads(value) if isinstance(value, str) else value
        return value if isinstance(value, dict) else None

    def lease_save(self, document: Mapping[str, Any]) -> None:
        from airflow.providers.common.compat.sdk import Variable

        key = self.key + "__lease"
        write_verified(lambda value: Variable.set(key, json.dumps(value, separators=(",", ":"))), self.lease_load,
                       document, f"Airflow Variable {key!r}")  # fmt: skip

    def lease_clear(self) -> None:
        from airflow.providers.common.compat.sdk import Variable

        with contextlib.suppress(Exception):
            Variable.delete(self.key + "__lease")


class FileCheckpointStore:
    """A JSON file at a durable location (e.g. a shared volume), replaced atomically on every save."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.description = f"checkpoint file {self.path}"

    def load(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        try:
            value = json.loads(text)
        except ValueError:
            raise ValueError(f"Checkpoint file {self.path} is not valid JSON: delete it to start over") from None
        return value if isinstance(value, dict) else None

    def save(self, document: Mapping[str, Any]) -> None:
        _write_atomically(self.path, document)

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    supports_lease = True

    @property
    def _lease_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lease")

    def lease_load(self) -> dict[str, Any] | None:
        try:
            value = json.loads(self._lease_path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def lease_save(self, document: Mapping[str, Any]) -> None:
        _write_atomically(self._lease_path, document)

    def lease_clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._lease_path.unlink()


def _write_atomically(path: Path, document: Mapping[str, Any]) -> None:
    """Write JSON to a temporary file next to ``path``, fsync it and rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(document, out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()
        raise


def variable_key(dag_id: str, task_id: str, run_id: str, map_index: int = -1) -> str:
    """``lytics_import_ckpt__<dag>__<task>__<run>[__<map index>]`` with unsafe characters replaced."""
    parts = [dag_id, task_id, run_id] + ([str(map_index)] if map_index not in (-1, None) else [])
    return "lytics_import_ckpt__" + "__".join(_UNSAFE.sub("_", p) for p in parts)


def store_for_context(context: Mapping[str, Any], checkpoint: str | None) -> CheckpointStore:
    """Pick the store: ``"auto"`` (task state store when the context has one, else a Variable), ``"task_state"``,
    ``"variable"``, ``"none"``, or a file path / ``file://`` URL for :class:`FileCheckpointStore`."""
    mode = (checkpoint or "auto").strip()
    if mode == "none":
        return MemoryCheckpointStore()
    accessor = context.get("task_state_store")
    if mode in ("auto", "task_state"):
        if accessor is not None:
            return TaskStateCheckpointStore(accessor)
        if mode == "task_state":
            raise ValueError(
                "checkpoint='task_state' needs Airflow 3.3+ (context has no task_state_store): use 'auto', "
                "'variable' or a durable file path"
            )
        mode = "variable"
    if mode == "variable":
        ti = context.get("ti") or context.get("task_instance")
        dag_id = getattr(ti, "dag_id", None) or "dag"
        task_id = getattr(ti, "task_id", None) or "task"
        run_id = context.get("run_id") or getattr(ti, "run_id", None) or "run"
        map_index = getattr(ti, "map_index", -1)
        index = map_index if isinstance(map_index, int) else -1
        return VariableCheckpointStore(variable_key(dag_id, task_id, str(run_id), index))
    path = mode[len("file://") :] if mode.startswith("file://") else mode
    if not Path(path).is_absolute():
        raise ValueError(
            f"checkpoint={checkpoint!r} is not 'auto', 'task_state', 'variable', 'none' or an absolute file path"
        )
    return FileCheckpointStore(path)
