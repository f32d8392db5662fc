"""File arguments of PGP operations: path or file object, and atomic output for path destinations.

PGP calls accept either a path or a binary file object for their input and output. These helpers turn a
:data:`Source`/:data:`Sink` into an open file object and write path destinations atomically (temporary name, mode
0600, fsync, rename on success, delete on failure), so a failed operation never leaves partial, possibly
plaintext, output behind. While gpg writes a path destination, a :class:`Writeback` thread flushes what it has
written so far, so the fsync before the rename finds little left to write instead of the whole file.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO, Union

PathLike = Union[str, "os.PathLike[str]"]
Source = Union[str, "os.PathLike[str]", IO[bytes]]
Sink = Union[str, "os.PathLike[str]", IO[bytes]]


def _is_path(value: object) -> bool:
    return isinstance(value, (str, os.PathLike))


def _existing_file(source: PathLike) -> Path:
    path = Path(os.fspath(source)).absolute()
    if not path.is_file():
        raise FileNotFoundError(f"PGP input file not found: {path}")
    return path


#: Flush the growing output to disk each time this much more has been written (bounded dirty data).
WRITEBACK_STEP = 32 * 1024 * 1024
#: Seconds between looks at the output's size.
WRITEBACK_INTERVAL = 0.1


class Writeback:
    """Flush a file that another process (gpg) is writing, a step at a time, in a background thread.

    ``fdatasync`` releases the GIL and blocks only this thread, so the disk writes overlap gpg's work and the
    final ``fsync`` in :func:`atomic_path` is short; durability is unchanged (that final fsync still runs).
    """

    def __init__(self, path: Path, *, step: int = WRITEBACK_STEP, interval: float = WRITEBACK_INTERVAL) -> None:
        self.step = step
        self.interval = interval
        self.flushed = 0
        self.flushes = 0
        self._fd = os.open(path, os.O_RDONLY)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lytics-pgp-writeback", daemon=True)

    def poll(self) -> None:
        """Flush if the file grew by at least ``step`` since the last flush."""
        size = os.fstat(self._fd).st_size
        if size - self.flushed >= self.step:
            os.fdatasync(self._fd)
            self.flushed = size
            self.flushes += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(OSError):  # a failing disk shows in the final fsync, which raises
                self.poll()

    def __enter__(self) -> Writeback:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _open_source(source: Source) -> tuple[IO[bytes], bool]:
    if hasattr(source, "read"):
        return source, False  # type: ignore[return-value]
    return open(_existing_file(source), "rb"), True  # type: ignore[arg-type]


@contextlib.contextmanager
def atomic_path(destination: PathLike) -> Iterator[Path]:
    """Yield an empty temporary file (mode 0600) next to ``destination``; on success fsync it and rename it into
    place, on any failure delete it. A failed or interrupted operation never leaves partial (possibly plaintext)
    output behind, and readers of ``destination`` never see a half-written file.
    """
    dest = Path(os.fspath(destination))
    if not dest.parent.is_dir():
        raise FileNotFoundError(f"output directory does not exist: {dest.parent}")
    tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:12]}.part"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        with Writeback(tmp):
            yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_output(destination: PathLike) -> Iterator[BinaryIO]:
    """Like :func:`atomic_path`, but yield the temporary file opened for binary writing."""
    with atomic_path(destination) as tmp, open(tmp, "wb") as fh:
        yield fh  # type: ignore[misc]


@contextlib.contextmanager
def _open_sink(sink: Sink) -> Iterator[IO[bytes]]:
    if hasattr(sink, "write"):
        yield sink  # type: ignore[misc]
    else:
        with atomic_output(sink) as fh:  # type: ignore[arg-type]
            yield fh
