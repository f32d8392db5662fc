"""Streaming PGP encryption, decryption, signing and verification through the gpg binary.

Every operation runs against a private, throw-away key ring (:class:`PgpKeyring`): a ``mkdtemp`` directory with
mode 0700 whose gpg-agent never caches passphrases, holding only the keys the operation needs, trusted
explicitly. The ring's agent is stopped and its directory removed on exit, also when the operation fails.

Data never sits in this process's memory: python-gnupg feeds gpg's stdin from a file object in a thread and hands
gpg's stdout to a callback chunk by chunk, which writes straight into the caller's sink. Stream stages
(:meth:`PgpCipher.open_encryptor`, :meth:`PgpCipher.encrypted_reader` and their decrypting twins) connect gpg to
other streaming code, e.g. an SFTP upload, through a small bounded in-memory channel, so "encrypt while uploading"
and "decrypt while downloading" never keep a second copy of the file on disk.

The ``gnupg`` module is imported lazily: importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Literal, Union

if TYPE_CHECKING:
    import gnupg

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
Source = Union[str, "os.PathLike[str]", IO[bytes]]
Sink = Union[str, "os.PathLike[str]", IO[bytes]]
KeyKind = Literal["public", "private"]

PUBLIC_KEY_HEADER = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
PUBLIC_KEY_FOOTER = "-----END PGP PUBLIC KEY BLOCK-----"
PRIVATE_KEY_HEADER = "-----BEGIN PGP PRIVATE KEY BLOCK-----"
PRIVATE_KEY_FOOTER = "-----END PGP PRIVATE KEY BLOCK-----"

#: Bytes moved per read from/to gpg; large enough that Python overhead is negligible next to the crypto.
CHUNK_SIZE = 1 << 16
#: Chunks a stream stage may hold between producer and consumer (bounded memory: 8 x 64 KiB).
CHANNEL_CHUNKS = 8
#: A detached signature is a few hundred bytes; refuse to read more than this as one.
MAX_SIGNATURE_BYTES = 1 << 20

#: No passphrase caching (every operation needs the passphrase), loopback pinentry for --passphrase-fd, and a fixed
#: low S2K count for the agent's own copy of imported keys: the copy lives only in the 0700 throw-away ring, and
#: the default (calibrating, then re-protecting with ~65M hash rounds) costs seconds per operation.
_AGENT_CONF = "default-cache-ttl 0\nmax-cache-ttl 0\nallow-loopback-pinentry\ns2k-count 65536\n"
_GPG_OPTIONS = [
    "--pinentry-mode",
    "loopback",
    "--no-auto-key-retrieve",
    "--no-auto-key-locate",
    "--trust-model",
    "always",
]
#: Unix socket paths are limited to 108 bytes; gpg-agent puts its sockets in the key ring directory.
_MAX_SOCKET_PATH = 107
_STATUS_RE = re.compile(r"^\[GNUPG:\] (\S+) ?(.*)$")


# --------------------------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------------------------


class PgpError(Exception):
    """Base class of every PGP failure raised by this provider."""


class PgpUnavailableError(PgpError):
    """The gpg binary (GnuPG 2.1 or later) or python-gnupg is not installed."""


class PgpConfigError(PgpError, ValueError):
    """The PGP configuration (e.g. connection fields) is contradictory or incomplete."""


class PgpKeyFormatError(PgpError, ValueError):
    """Key material is not an ASCII-armored key of the expected kind, or gpg could not use it."""


class PgpKeyMismatchError(PgpError):
    """The private key does not pair with the public key the data was encrypted to (or with the given public key)."""


class PgpPassphraseError(PgpError):
    """The private key's passphrase is wrong, or missing for a protected key."""


class PgpSignatureError(PgpError):
    """A signature is bad, made by an unknown key, or missing."""


class PgpOperationError(PgpError):
    """gpg failed for another reason, e.g. the input is not OpenPGP data or is truncated."""


# --------------------------------------------------------------------------------------------------------------------
# Key text validation
# --------------------------------------------------------------------------------------------------------------------

_HEADERS = {"public": (PUBLIC_KEY_HEADER, PUBLIC_KEY_FOOTER), "private": (PRIVATE_KEY_HEADER, PRIVATE_KEY_FOOTER)}
_EXPORT_HINT = {
    "public": "Export it ASCII armored with `gpg --armor --export <KEY-ID>` and paste the whole output.",
    "private": "Export it ASCII armored with `gpg --armor --export-secret-keys <KEY-ID>` and paste the whole output.",
}


def _to_text(value: str | bytes, name: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            raise PgpKeyFormatError(
                f"{name} contains non-ASCII bytes: it is probably a binary (not ASCII armored) key. "
                f"{_EXPORT_HINT['private' if 'private' in name else 'public']}"
            ) from None
    if not isinstance(value, str):
        raise PgpKeyFormatError(f"{name} must be a string holding an ASCII-armored key, got {type(value).__name__}.")
    return value


def normalize_armored_key(value: str | bytes, kind: KeyKind, *, name: str | None = None) -> str:
    """Return ``value`` as a clean ASCII-armored key block of ``kind``, or raise :class:`PgpKeyFormatError`.

    Tolerates surrounding whitespace, ``\\r\\n`` line ends and newlines escaped as a literal backslash-n (a common
    accident when a key is pasted into JSON connection extras). Never puts key material in the error.
    """
    name = name or f"{kind} key"
    text = _to_text(value, name).strip()
    if "\\n" in text and text.count("\n") <= 1:
        text = text.replace("\\r\\n", "\n").replace("\\n", "\n")
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    header, footer = _HEADERS[kind]
    if text.startswith(header) and text.endswith(footer):
        return text + "\n"
    other = "private" if kind == "public" else "public"
    other_header, other_footer = _HEADERS[other]
    if text.startswith(other_header) and text.endswith(other_footer):
        raise PgpKeyFormatError(
            f"{name} holds a PGP {other.upper()} key block but a {kind.upper()} key is expected here. "
            f"{'Put the public key in the public key field.' if other == 'public' else 'Never share a private key; '}"
            f"{'' if other == 'public' else 'put the public key here instead.'} {_EXPORT_HINT[kind]}"
        )
    if not text:
        raise PgpKeyFormatError(f"{name} is empty. {_EXPORT_HINT[kind]}")
    raise PgpKeyFormatError(
        f"{name} does not begin with '{header}' and end with '{footer}': it is probably not ASCII armored. "
        f"{_EXPORT_HINT[kind]}"
    )


def split_public_key_blocks(value: str | bytes | Sequence[str | bytes], *, name: str = "public keys") -> list[str]:
    """Split one or several concatenated armored public key blocks (or a list of them) into validated blocks."""
    items: Iterable[str | bytes] = [value] if isinstance(value, (str, bytes)) else value
    blocks: list[str] = []
    for item in items:
        text = _to_text(item, name)
        if "\\n" in text and text.count("\n") <= 1:
            text = text.replace("\\r\\n", "\n").replace("\\n", "\n")
        parts = [p for p in text.split(PUBLIC_KEY_FOOTER) if p.strip()]
        if not parts:
            blocks.append(normalize_armored_key(text, "public", name=name))
        for part in parts:
            blocks.append(normalize_armored_key(part + PUBLIC_KEY_FOOTER, "public", name=name))
    return blocks


# --------------------------------------------------------------------------------------------------------------------
# Bounded in-memory channel between a producer and a consumer thread
# --------------------------------------------------------------------------------------------------------------------


class _Channel:
    """A bounded FIFO of byte chunks: writes block when full, reads block when empty.

    ``fail`` makes reads raise (after the buffered data) and ``hang_up`` makes reads return EOF at once and
    writes raise, so neither side ever waits for a peer that has gone away.
    """

    def __init__(self, max_chunks: int = CHANNEL_CHUNKS) -> None:
        self._cond = threading.Condition()
        self._chunks: deque[bytes] = deque()
        self._max = max_chunks
        self._eof = False
        self._error: BaseException | None = None
        self._reader_gone: BaseException | None = None
        self._aborted = False
        self._abort_callbacks: list[Any] = []

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(view), CHUNK_SIZE):
            piece = bytes(view[start : start + CHUNK_SIZE])
            with self._cond:
                while len(self._chunks) >= self._max and self._reader_gone is None:
                    self._cond.wait()
                if self._reader_gone is not None:
                    raise BrokenPipeError(str(self._reader_gone))
                if self._eof:
                    raise ValueError("write to a closed PGP stream")
                self._chunks.append(piece)
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        with self._cond:
            self._error = error
            self._eof = True
            self._cond.notify_all()

    def abort(self, error: BaseException) -> None:
        """The producer failed: drop buffered data, make reads raise ``error`` and stop the consuming gpg."""
        with self._cond:
            self._error = error
            self._eof = True
            self._aborted = True
            self._chunks.clear()
            callbacks = list(self._abort_callbacks)
            self._cond.notify_all()
        for callback in callbacks:
            callback()

    def on_abort(self, callback: Any) -> None:
        with self._cond:
            aborted = self._aborted
            if not aborted:
                self._abort_callbacks.append(callback)
        if aborted:
            callback()

    def hang_up(self, reason: BaseException) -> None:
        with self._cond:
            self._reader_gone = reason
            self._chunks.clear()
            self._cond.notify_all()

    def read(self, size: int) -> bytes:
        with self._cond:
            while not self._chunks and not self._eof and self._reader_gone is None:
                self._cond.wait()
            if self._reader_gone is not None:
                return b""
            if not self._chunks:
                if self._error is not None:
                    raise self._error
                return b""
            chunk = self._chunks.popleft()
            if size >= 0 and len(chunk) > size:
                self._chunks.appendleft(chunk[size:])
                chunk = chunk[:size]
            self._cond.notify_all()
            return chunk


class _ChannelWriter(io.RawIOBase):
    """Writable binary file object feeding a :class:`_Channel`."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self._channel = channel
        self.bytes_written = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed PGP stream")
        data = bytes(b)
        self._channel.write(data)
        self.bytes_written += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._channel.close()
        super().close()


class _ChannelReader(io.RawIOBase):
    """Readable binary file object draining a :class:`_Channel`."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self.channel = channel

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.channel.read(len(b))
        b[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        return self.channel.read(size)


class _CountingReader(io.RawIOBase):
    """Wraps a readable to count bytes read (for operation statistics)."""

    def __init__(self, inner: IO[bytes]) -> None:
        super().__init__()
        self.inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.count += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


# --------------------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgpKeyInfo:
    """What gpg reports about one imported key (no key material)."""

    fingerprint: str
    key_id: str
    uids: tuple[str, ...]
    subkey_ids: tuple[str, ...]
    secret: bool
    can_encrypt: bool
    can_sign: bool

    @property
    def all_key_ids(self) -> tuple[str, ...]:
        return (self.key_id, *self.subkey_ids)


@dataclass(frozen=True)
class PgpOperationStats:
    """Byte counts and duration of one streaming operation."""

    operation: str
    bytes_in: int
    bytes_out: int
    seconds: float


@dataclass(frozen=True)
class PgpSignatureInfo:
    """A verified signature."""

    fingerprint: str
    key_id: str
    username: str | None
    created: str | None


@dataclass
class _Outcome:
    result: Any = None
    sink_error: BaseException | None = None
    bytes_out: int = 0
    status: list[tuple[str, str]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------------------------
# gpg process handling
# --------------------------------------------------------------------------------------------------------------------


def _gnupg_module() -> Any:
    try:
        import gnupg
    except ImportError as exc:  # pragma: no cover - dependency of the provider
        raise PgpUnavailableError("python-gnupg is not installed: pip install python-gnupg") from exc
    return gnupg


def _make_gpg(homedir: str, gpg_binary: str) -> gnupg.GPG:
    """A python-gnupg GPG bound to ``homedir`` that remembers its processes so they can be killed on abort."""
    gnupg = _gnupg_module()

    class _TrackedGPG(gnupg.GPG):  # type: ignore[misc,name-defined]
        def _open_subprocess(self, args: list[str], passphrase: bool = False) -> subprocess.Popen:
            proc = super()._open_subprocess(args, passphrase)
            self.processes.append(proc)
            return proc

        def kill(self) -> None:
            for proc in self.processes:
                if proc.poll() is None:
                    with contextlib.suppress(OSError):
                        proc.kill()

    try:
        gpg = _TrackedGPG.__new__(_TrackedGPG)
        gpg.processes = []
        _TrackedGPG.__init__(gpg, gpgbinary=gpg_binary, gnupghome=homedir, options=list(_GPG_OPTIONS))
    except (OSError, ValueError) as exc:
        raise PgpUnavailableError(
            f"cannot run the gpg binary {gpg_binary!r}: install GnuPG 2.1+ (e.g. apt-get install gnupg)"
        ) from exc
    if not gpg.version or gpg.version < (2, 1):
        raise PgpUnavailableError(f"GnuPG 2.1 or later is required, found {gpg.version}")
    gpg.buffer_size = CHUNK_SIZE
    return gpg


def _parse_status(stderr: str) -> tuple[list[tuple[str, str]], list[str]]:
    status: list[tuple[str, str]] = []
    messages: list[str] = []
    for line in (stderr or "").splitlines():
        m = _STATUS_RE.match(line)
        if m:
            status.append((m.group(1), m.group(2)))
        elif line.startswith("gpg: "):
            messages.append(line[5:].strip())
    return status, messages


def _is_path(value: object) -> bool:
    return isinstance(value, (str, os.PathLike))


def _existing_file(source: PathLike) -> Path:
    path = Path(os.fspath(source)).absolute()
    if not path.is_file():
        raise FileNotFoundError(f"PGP input file not found: {path}")
    return path


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


# --------------------------------------------------------------------------------------------------------------------
# Temporary key ring
# --------------------------------------------------------------------------------------------------------------------


class PgpKeyring:
    """A private, temporary GnuPG home for one or a few operations.

    Use as a context manager. On exit (normal or not) the gpg-agent of the ring is killed and the directory is
    removed. Passphrases are never cached by the agent, so every operation needs the right one.
    """

    def __init__(self, *, gpg_binary: str = "gpg", tmp_dir: PathLike | None = None) -> None:
        self.gpg_binary = gpg_binary
        self._tmp_dir = os.fspath(tmp_dir) if tmp_dir is not None else None
        self.homedir: str | None = None
        self._gpg: Any = None

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def __enter__(self) -> PgpKeyring:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> None:
        if self.homedir is not None:
            return
        home = tempfile.mkdtemp(prefix="lytics-pgp-", dir=self._tmp_dir)
        if len(home) + len("/S.gpg-agent.browser") >= _MAX_SOCKET_PATH:
            shutil.rmtree(home, ignore_errors=True)
            raise PgpConfigError(
                f"temporary key ring path {home!r} is too long for gpg-agent's unix sockets (at most "
                f"{_MAX_SOCKET_PATH - 40} characters for tmp_dir): choose a shorter tmp_dir"
            )
        try:
            Path(home).chmod(0o700)
            (Path(home) / "gpg-agent.conf").write_text(_AGENT_CONF, encoding="ascii")
            self.homedir = home
            self._gpg = _make_gpg(home, self.gpg_binary)
        except BaseException:
            self.homedir = None
            shutil.rmtree(home, ignore_errors=True)
            raise

    def close(self) -> None:
        home, self.homedir = self.homedir, None
        if home is None:
            return
        if self._gpg is not None:
            self._gpg.kill()
        self._gpg = None
        gpg_path = shutil.which(self.gpg_binary)
        gpgconf = (shutil.which("gpgconf", path=str(Path(gpg_path).parent)) if gpg_path else None) or shutil.which(
            "gpgconf"
        )
        if gpgconf:
            try:
                subprocess.run(
                    [gpgconf, "--homedir", home, "--kill", "all"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=30,
                    check=False,
                )
            except (OSError, subprocess.SubprocessError):
                log.warning("Could not stop the gpg-agent of a temporary PGP key ring")
        shutil.rmtree(home, ignore_errors=True)

    @property
    def gpg(self) -> Any:
        if self._gpg is None:
            raise PgpError("the PGP key ring is not open: use it as a context manager")
        return self._gpg

    # -- keys ---------------------------------------------------------------------------------------------------
    def import_key(self, armored: str | bytes, kind: KeyKind, *, name: str | None = None) -> list[PgpKeyInfo]:
        """Import one armored key block (validated first) and return what it contains.

        The key goes to gpg on stdin of a plain subprocess: python-gnupg's own import logs the start of the key
        data at debug level, which must never happen for private keys.
        """
        text = normalize_armored_key(armored, kind, name=name)
        name = name or f"{kind} key"
        proc = subprocess.run(
            [self.gpg_binary, "--homedir", self.gpg.gnupghome, "--batch", "--no-tty", "--status-fd", "2", "--import"],
            input=text.encode("ascii"),
            capture_output=True,
            timeout=60,
            check=False,
        )
        status, messages = _parse_status(proc.stderr.decode("utf-8", "replace"))
        fingerprints = sorted({v.split()[1] for k, v in status if k == "IMPORT_OK" and len(v.split()) > 1})
        if not fingerprints:
            detail = "; ".join(m for m in messages if "key" in m.lower() or "error" in m.lower())[:300]
            raise PgpKeyFormatError(
                f"{name} is armored but gpg could not import it ({detail or 'no key found'}): the block is probably "
                f"truncated or corrupted. {_EXPORT_HINT[kind]}"
            )
        infos = self.list_keys(secret=kind == "private", fingerprints=fingerprints)
        if kind == "private" and not infos:
            detail = "; ".join(m for m in messages if "agent" in m.lower() or "error" in m.lower())[:300]
            raise PgpKeyFormatError(
                f"{name}: gpg imported no secret key from it ({detail or 'only public key material found'}). "
                f"{_EXPORT_HINT['private']}"
            )
        return infos

    def list_keys(self, *, secret: bool = False, fingerprints: Sequence[str] | None = None) -> list[PgpKeyInfo]:
        keys = self.gpg.list_keys(secret=secret, keys=list(fingerprints) if fingerprints else None)
        infos = []
        for key in keys:
            caps = key.get("cap", "") or ""
            infos.append(
                PgpKeyInfo(
                    fingerprint=key["fingerprint"],
                    key_id=key["keyid"],
                    uids=tuple(key.get("uids") or ()),
                    subkey_ids=tuple(s[0] for s in key.get("subkeys") or ()),
                    secret=secret,
                    can_encrypt="E" in caps,
                    can_sign="S" in caps,
                )
            )
        return infos

    # -- running gpg --------------------------------------------------------------------------------------------
    def _run(self, operation: str, call: Any, sink: IO[bytes] | None, source: IO[bytes] | None = None) -> _Outcome:
        """Run ``call(gpg)`` with gpg's stdout streamed into ``sink`` (never buffered in memory).

        When ``source`` is fed by a stream stage, a failing producer kills gpg so that no output is completed
        from partial input.
        """
        outcome = _Outcome()
        gpg = self.gpg
        inner = source.inner if isinstance(source, _CountingReader) else source
        if isinstance(inner, _ChannelReader):
            inner.channel.on_abort(gpg.kill)

        def on_data(chunk: bytes) -> bool:
            if chunk and sink is not None and outcome.sink_error is None:
                try:
                    sink.write(chunk)
                    outcome.bytes_out += len(chunk)
                except BaseException as exc:  # the consumer failed: stop gpg, keep the error
                    outcome.sink_error = exc
                    gpg.kill()
            return False  # never let python-gnupg keep the data

        gpg.on_data = on_data
        try:
            outcome.result = call(gpg)
        except ValueError as exc:
            if "passphrase" in str(exc).lower():
                raise PgpPassphraseError(
                    "the passphrase contains a newline, carriage return or NUL character, which gpg cannot accept: "
                    "check the passphrase in the connection (no trailing newline)"
                ) from None
            raise PgpOperationError(f"{operation} failed: {exc}") from None
        finally:
            gpg.on_data = None
            gpg.processes.clear()
        outcome.status, outcome.messages = _parse_status(getattr(outcome.result, "stderr", ""))
        return outcome

    def _raise_for_decrypt(self, outcome: _Outcome, passphrase_given: bool) -> None:
        result = outcome.result
        if outcome.sink_error is not None:
            raise outcome.sink_error
        if result is not None and result.ok and result.returncode == 0:
            return
        keys = [k for k, _ in outcome.status]
        enc_to = [v.split()[0] for k, v in outcome.status if k == "ENC_TO" and v]
        no_seckey = {v.split()[0] for k, v in outcome.status if k == "NO_SECKEY" and v}
        text = " ".join(outcome.messages).lower()
        if "BAD_PASSPHRASE" in keys or "bad passphrase" in text:
            if not passphrase_given:
                raise PgpPassphraseError(
                    "the private key is passphrase protected but no passphrase was given: set the passphrase "
                    "(connection password or the 'passphrase' extra)"
                )
            raise PgpPassphraseError("wrong passphrase for the private key: check the connection's passphrase")
        if "NEED_PASSPHRASE" in keys and not passphrase_given:
            raise PgpPassphraseError(
                "the private key is passphrase protected but no passphrase was given: set the passphrase "
                "(connection password or the 'passphrase' extra)"
            )
        if enc_to and set(enc_to) <= no_seckey:
            secret = self.list_keys(secret=True)
            ours = ", ".join(
                f"{k.key_id} (fingerprint {k.fingerprint}, subkeys {', '.join(k.subkey_ids)})" for k in secret
            )
            raise PgpKeyMismatchError(
                f"the data was encrypted to key id(s) {', '.join(enc_to)}, but the private key given has key id(s) "
                f"{ours or 'none'}: the private key does not pair with the public key that encrypted the data. "
                "Use the private key of the key pair whose public key encrypted the file."
            )
        if "NODATA" in keys or "no valid openpgp data" in text:
            raise PgpOperationError("the input is not OpenPGP encrypted data (no valid OpenPGP data found)")
        detail = "; ".join(outcome.messages[-3:]) or getattr(result, "status", "") or "unknown error"
        raise PgpOperationError(f"gpg decryption failed (exit {getattr(result, 'returncode', '?')}): {detail}")

    def _raise_for_encrypt(self, outcome: _Outcome, operation: str, passphrase_given: bool) -> None:
        result = outcome.result
        if outcome.sink_error is not None:
            raise outcome.sink_error
        keys = [k for k, _ in outcome.status]
        ok_status = "END_ENCRYPTION" in keys if operation == "encrypt" else "SIG_CREATED" in keys
        if result is not None and result.returncode == 0 and ok_status:
            return
        text = " ".join(outcome.messages).lower()
        if "BAD_PASSPHRASE" in keys or "bad passphrase" in text:
            if not passphrase_given:
                raise PgpPassphraseError(
                    "the signing key is passphrase protected but no passphrase was given: set its passphrase"
                )
            raise PgpPassphraseError("wrong passphrase for the signing key: check the connection's passphrase")
        if "NEED_PASSPHRASE" in keys and not passphrase_given:
            raise PgpPassphraseError(
                "the signing key is passphrase protected but no passphrase was given: set its passphrase"
            )
        if "INV_RECP" in keys or "KEYEXPIRED" in keys or "INV_SGNR" in keys:
            raise PgpKeyFormatError(
                f"gpg cannot {operation} with the given key (expired, revoked or without a usable "
                f"{'encryption' if operation == 'encrypt' else 'signing'} subkey): {'; '.join(outcome.messages[-2:])}"
            )
        detail = "; ".join(outcome.messages[-3:]) or getattr(result, "status", "") or "unknown error"
        raise PgpOperationError(f"gpg {operation} failed (exit {getattr(result, 'returncode', '?')}): {detail}")

    # -- operations -----------------------------------------------------------------------------------------------
    def encrypt(
        self,
        source: IO[bytes] | Path,
        sink: IO[bytes] | Path,
        recipients: Sequence[str],
        *,
        armor: bool = False,
        compress: bool = True,
        sign_with: str | None = None,
        passphrase: str | None = None,
    ) -> PgpOperationStats:
        """Encrypt ``source`` to ``recipients`` (fingerprints in this ring) into ``sink``.

        ``source``/``sink`` are binary file objects, or :class:`~pathlib.Path` objects that gpg reads/writes
        itself (fastest; a path sink should be a temporary name, see :func:`atomic_path`).
        """
        stdin, counting, args, out_path = _io_plan(source, sink)
        args = ([] if compress else ["--compress-algo", "none"]) + args
        started = time.monotonic()
        outcome = self._run(
            "encrypt",
            lambda gpg: gpg.encrypt_file(
                stdin,
                list(recipients),
                sign=sign_with,
                always_trust=True,
                passphrase=passphrase,
                armor=armor,
                output=out_path,
                extra_args=args,
            ),
            None if out_path else sink,  # type: ignore[arg-type]
            counting,
        )
        self._raise_for_encrypt(outcome, "encrypt", passphrase is not None)
        return _stats("encrypt", source, sink, counting, outcome, started)

    def decrypt(
        self,
        source: IO[bytes] | Path,
        sink: IO[bytes] | Path,
        *,
        passphrase: str | None = None,
        require_signature_from: Sequence[str] | None = None,
    ) -> PgpOperationStats:
        """Decrypt ``source`` into ``sink`` (file objects or paths, as for :meth:`encrypt`) with this ring's keys.

        With ``require_signature_from`` (fingerprints), the message must also carry a good signature by one of them.
        """
        stdin, counting, args, out_path = _io_plan(source, sink)
        started = time.monotonic()
        outcome = self._run(
            "decrypt",
            lambda gpg: gpg.decrypt_file(
                stdin, always_trust=True, passphrase=passphrase, output=out_path, extra_args=args
            ),
            None if out_path else sink,  # type: ignore[arg-type]
            counting,
        )
        self._raise_for_decrypt(outcome, passphrase is not None)
        if require_signature_from is not None:
            _check_signature(outcome.result, require_signature_from, embedded=True)
        return _stats("decrypt", source, sink, counting, outcome, started)

    def sign(
        self,
        source: IO[bytes],
        sink: IO[bytes],
        signer: str,
        *,
        passphrase: str | None = None,
        armor: bool = True,
    ) -> PgpOperationStats:
        """Write a detached signature of ``source`` by ``signer`` (fingerprint) into ``sink``."""
        counting = _CountingReader(source)
        started = time.monotonic()
        extra = [] if armor else ["--no-armor"]
        outcome = self._run(
            "sign",
            lambda gpg: gpg.sign_file(
                counting, keyid=signer, passphrase=passphrase, detach=True, clearsign=False, extra_args=extra
            ),
            sink,
            counting,
        )
        self._raise_for_encrypt(outcome, "sign", passphrase is not None)
        return PgpOperationStats("sign", counting.count, outcome.bytes_out, time.monotonic() - started)

    def verify(self, data: IO[bytes], signature: bytes, signers: Sequence[str]) -> PgpSignatureInfo:
        """Check a detached ``signature`` of ``data`` against ``signers`` (fingerprints imported in this ring)."""
        sig_path = Path(self.gpg.gnupghome) / f"sig-{uuid.uuid4().hex[:8]}"
        sig_path.write_bytes(signature)
        try:
            outcome = self._run("verify", lambda gpg: gpg.verify_file(data, extra_args=[str(sig_path), "-"]), None)
        finally:
            sig_path.unlink()
        return _check_signature(outcome.result, signers, embedded=False)


def _io_plan(
    source: IO[bytes] | Path, sink: IO[bytes] | Path
) -> tuple[IO[bytes], _CountingReader | None, list[str], str | None]:
    """How python-gnupg should feed gpg: stdin stream (or a file name argument) and stdout (or ``--output``)."""
    if isinstance(source, Path):
        stdin: IO[bytes] = io.BytesIO(b"")  # gpg reads the file named on its command line
        counting = None
        args = ["--", str(source)]
    else:
        counting = _CountingReader(source)
        stdin, args = counting, []
    out_path = str(sink) if isinstance(sink, Path) else None
    return stdin, counting, args, out_path


def _stats(
    operation: str,
    source: IO[bytes] | Path,
    sink: IO[bytes] | Path,
    counting: _CountingReader | None,
    outcome: _Outcome,
    started: float,
) -> PgpOperationStats:
    bytes_in = source.stat().st_size if isinstance(source, Path) else (counting.count if counting else 0)
    bytes_out = sink.stat().st_size if isinstance(sink, Path) else outcome.bytes_out
    return PgpOperationStats(operation, bytes_in, bytes_out, time.monotonic() - started)


def _check_signature(result: Any, signers: Sequence[str], *, embedded: bool) -> PgpSignatureInfo:
    allowed = {s.upper() for s in signers}
    status, messages = _parse_status(getattr(result, "stderr", ""))
    keys = [k for k, _ in status]
    where = "the decrypted message" if embedded else "the data"
    if "BADSIG" in keys:
        key_id = next(v.split()[0] for k, v in status if k == "BADSIG")
        raise PgpSignatureError(
            f"BAD signature by key id {key_id} on {where}: the data was modified after signing or the signature "
            "belongs to other data"
        )
    if "ERRSIG" in keys or "NO_PUBKEY" in keys:
        key_id = next((v.split()[0] for k, v in status if k in ("ERRSIG", "NO_PUBKEY")), "?")
        raise PgpSignatureError(
            f"cannot check the signature on {where}: it was made by key id {key_id}, which is not among the "
            "signer public keys given; add that signer's public key (or check who signed it)"
        )
    if not getattr(result, "valid", False) or "GOODSIG" not in keys:
        if "NODATA" in keys or "no valid openpgp data" in " ".join(messages).lower():
            raise PgpSignatureError(f"no valid OpenPGP signature found for {where}")
        raise PgpSignatureError(f"{where} carries no valid signature ({'; '.join(messages[-2:]) or 'unsigned'})")
    fingerprint = (result.pubkey_fingerprint or result.fingerprint or "").upper()
    if fingerprint not in allowed:
        raise PgpSignatureError(
            f"the signature on {where} is valid but was made by key {fingerprint}, which is not an expected signer"
        )
    return PgpSignatureInfo(
        fingerprint=fingerprint,
        key_id=result.key_id or fingerprint[-16:],
        username=result.username,
        created=result.creation_date,
    )


# --------------------------------------------------------------------------------------------------------------------
# High-level API holding keys
# --------------------------------------------------------------------------------------------------------------------


class PgpCipher:
    """Encrypt, decrypt, sign and verify with a fixed set of ASCII-armored keys, streaming, via the gpg binary.

    :param public_key: armored public key used to encrypt (recipient).
    :param private_key: armored private key used to decrypt.
    :param passphrase: passphrase of ``private_key`` (``None`` for an unprotected key).
    :param signing_key: armored private key used to sign; defaults to ``private_key``.
    :param signing_passphrase: passphrase of ``signing_key``; defaults to ``passphrase``.
    :param signer_public_keys: armored public key(s) whose signatures are accepted by verify.
    :param gpg_binary: gpg executable name or path.
    :param tmp_dir: where temporary key rings are created (default: the system temp dir).

    Keys are validated (armor headers) at construction; gpg parses them at first use. Each call uses its own
    temporary key ring, destroyed before the call returns.
    """

    def __init__(
        self,
        *,
        public_key: str | bytes | None = None,
        private_key: str | bytes | None = None,
        passphrase: str | None = None,
        signing_key: str | bytes | None = None,
        signing_passphrase: str | None = None,
        signer_public_keys: str | bytes | Sequence[str | bytes] | None = None,
        gpg_binary: str = "gpg",
        tmp_dir: PathLike | None = None,
    ) -> None:
        self.public_key = normalize_armored_key(public_key, "public", name="public_key") if public_key else None
        self.private_key = normalize_armored_key(private_key, "private", name="private_key") if private_key else None
        self.signing_key = (
            normalize_armored_key(signing_key, "private", name="signing_private_key") if signing_key else None
        )
        self.signer_public_keys = (
            split_public_key_blocks(signer_public_keys, name="signer_public_keys") if signer_public_keys else []
        )
        self._passphrase = passphrase or None
        self._signing_passphrase = signing_passphrase or None
        self.gpg_binary = gpg_binary
        self.tmp_dir = tmp_dir

    def __repr__(self) -> str:  # never show keys or passphrases
        have = [n for n in ("public_key", "private_key", "signing_key") if getattr(self, n)]
        return f"PgpCipher(keys={have}, signer_public_keys={len(self.signer_public_keys)})"

    # -- helpers ----------------------------------------------------------------------------------------------
    def _keyring(self) -> PgpKeyring:
        return PgpKeyring(gpg_binary=self.gpg_binary, tmp_dir=self.tmp_dir)

    def _need(self, attr: str, what: str) -> str:
        value = getattr(self, attr)
        if not value:
            raise PgpKeyFormatError(f"no {attr} configured: {what} needs one (set it on the PGP connection)")
        return value

    def _recipients(self, ring: PgpKeyring) -> list[str]:
        infos = ring.import_key(self._need("public_key", "encryption"), "public", name="public_key")
        if not any(k.can_encrypt for k in infos):
            raise PgpKeyFormatError(
                f"public_key {infos[0].key_id} has no usable encryption subkey (expired, revoked or sign-only): "
                "export a key pair that can encrypt"
            )
        return [k.fingerprint for k in infos]

    def _signer(self, ring: PgpKeyring) -> tuple[str, str | None]:
        if self.signing_key:
            infos = ring.import_key(self.signing_key, "private", name="signing_private_key")
            return infos[0].fingerprint, self._signing_passphrase or self._passphrase
        infos = ring.import_key(self._need("private_key", "signing"), "private", name="private_key")
        return infos[0].fingerprint, self._signing_passphrase or self._passphrase

    def _signers(self, ring: PgpKeyring) -> list[str]:
        if not self.signer_public_keys:
            raise PgpKeyFormatError("no signer_public_keys configured: verification needs the signers' public keys")
        fingerprints: list[str] = []
        for block in self.signer_public_keys:
            fingerprints.extend(k.fingerprint for k in ring.import_key(block, "public", name="signer_public_keys"))
        return fingerprints

    # -- key checks -------------------------------------------------------------------------------------------
    def inspect_keys(self) -> dict[str, list[PgpKeyInfo]]:
        """Import every configured key into a throw-away ring and report them; raises on unusable keys.

        When both a public and a private key are configured, they must belong to the same key pair
        (:class:`PgpKeyMismatchError` otherwise).
        """
        report: dict[str, list[PgpKeyInfo]] = {}
        with self._keyring() as ring:
            if self.public_key:
                report["public_key"] = ring.import_key(self.public_key, "public", name="public_key")
            if self.private_key:
                report["private_key"] = ring.import_key(self.private_key, "private", name="private_key")
            if self.signing_key:
                report["signing_private_key"] = ring.import_key(self.signing_key, "private", name="signing_private_key")
            for block in self.signer_public_keys:
                report.setdefault("signer_public_keys", []).extend(
                    ring.import_key(block, "public", name="signer_public_keys")
                )
        if "public_key" in report and "private_key" in report:
            pub = {k.fingerprint for k in report["public_key"]}
            sec = {k.fingerprint for k in report["private_key"]}
            if not pub & sec:
                raise PgpKeyMismatchError(
                    "public_key and private_key are not a key pair: public key "
                    f"{', '.join(k.key_id for k in report['public_key'])} vs private key "
                    f"{', '.join(k.key_id for k in report['private_key'])}. Files encrypted with this public key "
                    "could not be decrypted with this private key."
                )
        return report

    def check_private_key(self) -> PgpKeyInfo:
        """Prove that the private key and its passphrase work by round-tripping a probe message in a throw-away ring.

        Raises :class:`PgpPassphraseError` for a wrong or missing passphrase. A key without an encryption subkey
        is only imported (it can still sign).
        """
        private = self._need("private_key", "the private key check")
        with self._keyring() as ring:
            infos = ring.import_key(private, "private", name="private_key")
            if infos[0].can_encrypt:
                probe = io.BytesIO()
                ring.encrypt(io.BytesIO(b"lytics pgp probe"), probe, [infos[0].fingerprint], compress=False)
                ring.decrypt(io.BytesIO(probe.getvalue()), io.BytesIO(), passphrase=self._passphrase)
            return infos[0]

    # -- whole-stream operations ------------------------------------------------------------------------------
    def encrypt_stream(
        self, source: IO[bytes], sink: IO[bytes], *, armor: bool = False, compress: bool = True, sign: bool = False
    ) -> PgpOperationStats:
        """Encrypt everything read from ``source`` into ``sink`` (both binary file objects)."""
        with self._keyring() as ring:
            recipients = self._recipients(ring)
            signer, passphrase = self._signer(ring) if sign else (None, None)
            return ring.encrypt(
                source, sink, recipients, armor=armor, compress=compress, sign_with=signer, passphrase=passphrase
            )

    def decrypt_stream(self, source: IO[bytes], sink: IO[bytes], *, verify: bool = False) -> PgpOperationStats:
        """Decrypt everything read from ``source`` into ``sink``.

        Plaintext written to ``sink`` before a failure cannot be taken back: use :meth:`decrypt_file` (or a path
        sink) when partial plaintext must not survive a failure.
        """
        with self._keyring() as ring:
            ring.import_key(self._need("private_key", "decryption"), "private", name="private_key")
            signers = self._signers(ring) if verify else None
            return ring.decrypt(source, sink, passphrase=self._passphrase, require_signature_from=signers)

    def encrypt_file(
        self, source: Source, destination: Sink, *, armor: bool = False, compress: bool = True, sign: bool = False
    ) -> PgpOperationStats:
        """Encrypt a file (or readable) into ``destination``; a path destination appears only on success.

        Path to path, gpg reads and writes the files itself: no data passes through Python at all.
        """
        if _is_path(source) and _is_path(destination):
            src_path = _existing_file(source)  # type: ignore[arg-type]
            with self._keyring() as ring, atomic_path(destination) as tmp:  # type: ignore[arg-type]
                recipients = self._recipients(ring)
                signer, passphrase = self._signer(ring) if sign else (None, None)
                return ring.encrypt(
                    src_path, tmp, recipients, armor=armor, compress=compress, sign_with=signer, passphrase=passphrase
                )
        src, owned = _open_source(source)
        try:
            with _open_sink(destination) as out:
                return self.encrypt_stream(src, out, armor=armor, compress=compress, sign=sign)
        finally:
            if owned:
                src.close()

    def decrypt_file(self, source: Source, destination: Sink, *, verify: bool = False) -> PgpOperationStats:
        """Decrypt into ``destination``; a path destination is written under a temp name and renamed on success."""
        if _is_path(source) and _is_path(destination):
            src_path = _existing_file(source)  # type: ignore[arg-type]
            with self._keyring() as ring, atomic_path(destination) as tmp:  # type: ignore[arg-type]
                ring.import_key(self._need("private_key", "decryption"), "private", name="private_key")
                signers = self._signers(ring) if verify else None
                return ring.decrypt(src_path, tmp, passphrase=self._passphrase, require_signature_from=signers)
        src, owned = _open_source(source)
        try:
            with _open_sink(destination) as out:
                return self.decrypt_stream(src, out, verify=verify)
        finally:
            if owned:
                src.close()

    def sign_file(self, source: Source, signature: Sink, *, armor: bool = True) -> PgpOperationStats:
        """Write a detached signature of ``source`` to ``signature`` (path or writable)."""
        src, owned = _open_source(source)
        try:
            with self._keyring() as ring, _open_sink(signature) as out:
                signer, passphrase = self._signer(ring)
                return ring.sign(src, out, signer, passphrase=passphrase, armor=armor)
        finally:
            if owned:
                src.close()

    def verify_file(self, source: Source, signature: Source | bytes) -> PgpSignatureInfo:
        """Verify a detached ``signature`` (path, readable or bytes) of ``source``; raise PgpSignatureError if bad."""
        sig_bytes = _read_signature(signature)
        src, owned = _open_source(source)
        try:
            with self._keyring() as ring:
                return ring.verify(src, sig_bytes, self._signers(ring))
        finally:
            if owned:
                src.close()

    # -- stream stages --------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def open_encryptor(
        self, target: Sink, *, armor: bool = False, compress: bool = True, sign: bool = False
    ) -> Iterator[BinaryIO]:
        """Yield a writable binary stream; plaintext written to it is encrypted into ``target`` as it arrives.

        ``target`` is a writable file object (e.g. an SFTP remote file) or a path (written atomically).
        Encryption is complete when the ``with`` block exits without error.
        """

        def run(src: IO[bytes], out: IO[bytes]) -> PgpOperationStats:
            return self.encrypt_stream(src, out, armor=armor, compress=compress, sign=sign)

        with _open_sink(target) as out, self._writer_stage(lambda src: run(src, out)) as w:
            yield w

    @contextlib.contextmanager
    def open_decryptor(self, target: Sink, *, verify: bool = False) -> Iterator[BinaryIO]:
        """Yield a writable binary stream; ciphertext written to it is decrypted into ``target``.

        With a path ``target``, plaintext lands under a temporary name and is renamed only when decryption
        (and the integrity check) succeeded; it is removed on any failure. This is "decrypt while downloading".
        """
        with (
            _open_sink(target) as out,
            self._writer_stage(lambda src: self.decrypt_stream(src, out, verify=verify)) as w,
        ):
            yield w

    @contextlib.contextmanager
    def encrypted_reader(
        self, source: Source, *, armor: bool = False, compress: bool = True, sign: bool = False
    ) -> Iterator[BinaryIO]:
        """Yield a readable binary stream of the ciphertext of ``source`` (e.g. to hand to an SFTP upload).

        A read raises instead of returning EOF if encryption failed, so a consumer never mistakes a failure for
        the end of the data.
        """
        src, owned = _open_source(source)
        try:
            with self._reader_stage(
                lambda sink: self.encrypt_stream(src, sink, armor=armor, compress=compress, sign=sign)
            ) as r:
                yield r
        finally:
            if owned:
                src.close()

    @contextlib.contextmanager
    def decrypted_reader(self, source: Source, *, verify: bool = False) -> Iterator[BinaryIO]:
        """Yield a readable binary stream of the plaintext of ``source``; the final read raises on failure."""
        src, owned = _open_source(source)
        try:
            with self._reader_stage(lambda sink: self.decrypt_stream(src, sink, verify=verify)) as r:
                yield r
        finally:
            if owned:
                src.close()

    @contextlib.contextmanager
    def _writer_stage(self, run: Any) -> Iterator[BinaryIO]:
        channel = _Channel()
        reader = _ChannelReader(channel)
        writer = _ChannelWriter(channel)
        box: dict[str, Any] = {}

        def worker() -> None:
            try:
                box["stats"] = run(reader)
            except BaseException as exc:
                box["error"] = exc
            finally:
                channel.hang_up(box.get("error") or PgpOperationError("gpg finished before all input was written"))

        thread = threading.Thread(target=worker, name="lytics-pgp-stage", daemon=True)
        thread.start()
        try:
            yield writer  # type: ignore[misc]
        except BaseException as exc:
            stage_error = box.get("error")  # gpg failed first: that is the real cause
            if stage_error is None:
                channel.abort(exc)
            thread.join()
            if stage_error is not None:
                raise stage_error from None
            raise
        with contextlib.suppress(BrokenPipeError):
            writer.close()
        thread.join()
        if "error" in box:
            raise box["error"]

    @contextlib.contextmanager
    def _reader_stage(self, run: Any) -> Iterator[BinaryIO]:
        channel = _Channel()
        reader = _ChannelReader(channel)
        writer = _ChannelWriter(channel)

        def worker() -> None:
            try:
                run(writer)
            except BaseException as exc:
                channel.fail(exc)
            else:
                channel.close()

        thread = threading.Thread(target=worker, name="lytics-pgp-stage", daemon=True)
        thread.start()
        try:
            yield reader  # type: ignore[misc]
        finally:
            channel.hang_up(PgpOperationError("the reader of the PGP stream was closed early"))
            thread.join()


def _read_signature(signature: Source | bytes) -> bytes:
    if isinstance(signature, bytes):
        data = signature
    else:
        fh, owned = _open_source(signature)
        try:
            data = fh.read(MAX_SIGNATURE_BYTES + 1)
        finally:
            if owned:
                fh.close()
    if len(data) > MAX_SIGNATURE_BYTES:
        raise PgpSignatureError("the signature is larger than 1 MiB: pass a detached signature, not the signed data")
    if not data.strip():
        raise PgpSignatureError("the signature is empty")
    return data
