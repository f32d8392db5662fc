"""PgpKeyring: a throw-away GnuPG home, the gpg processes run in it, and the reading of gpg's status output.

The ring is a ``mkdtemp`` directory (mode 0700) whose gpg-agent never caches passphrases; keys are imported
validated, operations stream through python-gnupg with gpg's stdout handed chunk by chunk to the caller's sink,
and gpg's ``--status-fd`` lines are turned into the precise :mod:`~.pgp_errors` exceptions. This is everything that
talks to the gpg binary; :class:`~.pgp.PgpCipher` builds on it and only decides which keys each operation needs.
``gnupg`` is imported lazily.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from airflow_provider_lytics.io.pgp_channel import CHUNK_SIZE, _ChannelReader, _CountingReader
from airflow_provider_lytics.io.pgp_errors import (
    PgpConfigError,
    PgpError,
    PgpKeyFormatError,
    PgpKeyMismatchError,
    PgpOperationError,
    PgpPassphraseError,
    PgpSignatureError,
    PgpUnavailableError,
)
from airflow_provider_lytics.io.pgp_files import PathLike
from airflow_provider_lytics.io.pgp_keys import _EXPORT_HINT, KeyKind, PgpKeyInfo, normalize_armored_key

if TYPE_CHECKING:
    import gnupg

#: Named after the module this code came from, so existing logging configuration keeps applying to it.
log = logging.getLogger("airflow_provider_lytics.io.pgp")

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
#: Until a private key is imported the ring needs no gpg-agent: public-key imports and encryption run without one,
#: which saves starting the agent and stopping it again.
_NO_AGENT = "--no-autostart"
#: Unix socket paths are limited to 108 bytes; gpg-agent puts its sockets in the key ring directory.
_MAX_SOCKET_PATH = 107
_STATUS_RE = re.compile(r"^\[GNUPG:\] (\S+) ?(.*)$")


# --------------------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------------------


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
        stdout_fd: int | None = None  # set on a per-call copy: gpg writes its output into this file itself

        def _open_subprocess(self, args: list[str], passphrase: bool = False) -> subprocess.Popen:
            if self.stdout_fd is None:
                proc = super()._open_subprocess(args, passphrase)
            else:
                cmd = self.make_args(args, passphrase)
                pipe = subprocess.PIPE
                proc = gnupg.Popen(cmd, shell=False, stdin=pipe, stdout=self.stdout_fd, stderr=pipe, env=self.env)
                proc.stdout = io.BytesIO()  # python-gnupg drains stdout: empty, the data went to the file
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
        options = [*_GPG_OPTIONS, _NO_AGENT]
        _TrackedGPG.__init__(gpg, gpgbinary=gpg_binary, gnupghome=homedir, options=options)  # type: ignore[call-arg]
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


# --------------------------------------------------------------------------------------------------------------------
# Temporary key ring
# --------------------------------------------------------------------------------------------------------------------


class PgpKeyring:
    """A private, temporary GnuPG home for one or many operations.

    Use as a context manager (or ``open``/``close``). On close (normal or not) the gpg-agent of the ring, if one
    was started, is stopped and the directory is removed. Passphrases are never cached by the agent, so every
    operation needs the right one. A key block imported twice is imported once (the first result is returned).
    Operations may run from several threads at once: each runs its own gpg process.
    """

    def __init__(self, *, gpg_binary: str = "gpg", tmp_dir: PathLike | None = None) -> None:
        self.gpg_binary = gpg_binary
        self._tmp_dir = os.fspath(tmp_dir) if tmp_dir is not None else None
        self.homedir: str | None = None
        self._gpg: Any = None
        self._lock = threading.Lock()
        self._imported: dict[tuple[str, str], list[PgpKeyInfo]] = {}
        self._calls: set[Any] = set()

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
        for gpg in [self._gpg, *self._calls]:
            if gpg is not None:
                gpg.kill()
        self._gpg = None
        self._calls.clear()
        self._imported.clear()
        if not any(Path(home).glob("S.gpg-agent*")):  # no agent was started (public keys only)
            shutil.rmtree(home, ignore_errors=True)
            return
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
        data at debug level, which must never happen for private keys. gpg lists what it imported in the same
        run (``import-show``), so no second gpg process is needed to learn the key ids and capabilities.
        """
        text = normalize_armored_key(armored, kind, name=name)
        with self._lock:
            known = self._imported.get((kind, text))
            if known is None:
                known = self._import(text, kind, name or f"{kind} key")
                self._imported[(kind, text)] = known
            return list(known)

    def _import(self, text: str, kind: KeyKind, name: str) -> list[PgpKeyInfo]:
        gpg = self.gpg
        if kind == "private" and _NO_AGENT in gpg.options:
            gpg.options.remove(_NO_AGENT)  # secret keys live in the agent: from now on gpg may start it
        agent = [_NO_AGENT] if _NO_AGENT in gpg.options else []
        proc = subprocess.run(
            [self.gpg_binary, "--homedir", gpg.gnupghome, *agent, "--batch", "--no-tty", "--status-fd", "2",
             "--with-colons", "--import-options", "import-show", "--import"],
            input=text.encode("ascii"),
            capture_output=True,
            timeout=60,
            check=False,
        )  # fmt: skip
        status, messages = _parse_status(proc.stderr.decode("utf-8", "replace"))
        imported = [v.split() for k, v in status if k == "IMPORT_OK" and len(v.split()) > 1]
        fingerprints = {fields[1] for fields in imported}
        if not fingerprints:
            detail = "; ".join(m for m in messages if "key" in m.lower() or "error" in m.lower())[:300]
            raise PgpKeyFormatError(
                f"{name} is armored but gpg could not import it ({detail or 'no key found'}): the block is probably "
                f"truncated or corrupted. {_EXPORT_HINT[kind]}"
            )
        infos = _parse_listing(proc.stdout.decode("utf-8", "replace"), fingerprints)
        if kind == "private":
            # IMPORT_OK flag 16: the secret part reached the agent (an import can keep only the public part).
            with_secret = {f[1] for f in imported if f[0].isdigit() and int(f[0]) & 16}
            infos = [
                PgpKeyInfo(i.fingerprint, i.key_id, i.uids, i.subkey_ids, True, i.can_encrypt, i.can_sign)
                for i in infos
                if i.secret and i.fingerprint in with_secret
            ]
        if kind == "private" and not infos:
            detail = "; ".join(m for m in messages if "agent" in m.lower() or "error" in m.lower())[:300]
            raise PgpKeyFormatError(
                f"{name}: gpg imported no secret key from it ({detail or 'only public key material found'}). "
                f"{_EXPORT_HINT['private']}"
            )
        return infos

    def _call_gpg(self) -> Any:
        """A python-gnupg object for one operation: same ring and options, its own processes and data callback."""
        gpg = copy.copy(self.gpg)
        gpg.processes = []
        with self._lock:
            self._calls.add(gpg)
        return gpg

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
    def _run(self, operation: str, call: Any, sink: IO[bytes] | None, source: Any = None) -> _Outcome:
        """Run ``call(gpg)`` with gpg's stdout streamed into ``sink`` (never buffered in memory).

        When ``source`` is fed by a stream stage, a failing producer kills gpg so that no output is completed
        from partial input.
        """
        outcome = _Outcome()
        gpg = self._call_gpg()
        direct = _regular_file_fd(sink)
        if direct is not None:  # gpg writes straight into the caller's file: the output never crosses Python
            sink.flush()  # type: ignore[union-attr]
            start = os.lseek(direct, 0, os.SEEK_CUR)
            gpg.stdout_fd = direct
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
            with self._lock:
                self._calls.discard(gpg)
            if direct is not None:
                outcome.bytes_out = os.lseek(direct, 0, os.SEEK_CUR) - start
                sink.seek(0, os.SEEK_CUR)  # type: ignore[union-attr]  # resync the buffered object with the fd
        outcome.status, outcome.messages = _parse_status(getattr(outcome.result, "stderr", ""))
        return outcome

    def _raise_for_decrypt(
        self, outcome: _Outcome, passphrase_given: bool, signers: Sequence[str] | None = None
    ) -> None:
        result = outcome.result
        if outcome.sink_error is not None:
            raise outcome.sink_error
        if result is not None and result.ok and result.returncode == 0:
            return
        keys = [k for k, _ in outcome.status]
        decrypted = "DECRYPTION_OKAY" in keys and "DECRYPTION_FAILED" not in keys and "GOODMDC" in keys
        if decrypted and "BADSIG" in keys:  # the plaintext is intact but its signature does not match it
            _check_signature(result, signers or (), embedded=True)
        if decrypted and ("ERRSIG" in keys or "NO_PUBKEY" in keys):
            if signers is not None:
                _check_signature(result, signers, embedded=True)  # raises PgpSignatureError naming the signer
            return  # signed by a key we do not have, and no signature was asked for: the decryption is good
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
        self._raise_for_decrypt(outcome, passphrase is not None, require_signature_from)
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


def _unescape(field: str) -> str:
    """gpg's colon listings escape ``:`` and control characters as ``\\xNN``."""
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), field)


def _parse_listing(listing: str, fingerprints: set[str]) -> list[PgpKeyInfo]:
    """Key infos from gpg's ``--with-colons`` listing (``pub``/``sec`` records with their ``fpr``, ``uid``,
    ``sub``/``ssb`` records), limited to the primary keys in ``fingerprints``."""
    keys: list[dict[str, Any]] = []
    expect_fpr = None
    for line in listing.splitlines():
        fields = line.split(":")
        record = fields[0]
        if record in ("pub", "sec"):
            keys.append({"secret": record == "sec", "keyid": fields[4], "caps": fields[11] if len(fields) > 11
                         else "", "fpr": "", "uids": [], "subkeys": []})  # fmt: skip
            expect_fpr = "primary"
        elif record in ("sub", "ssb") and keys:
            keys[-1]["subkeys"].append(fields[4])
            expect_fpr = None
        elif record == "fpr" and keys and expect_fpr == "primary":
            keys[-1]["fpr"] = fields[9]
            expect_fpr = None
        elif record == "uid" and keys and len(fields) > 9:
            keys[-1]["uids"].append(_unescape(fields[9]))
    return [
        PgpKeyInfo(
            fingerprint=k["fpr"],
            key_id=k["keyid"],
            uids=tuple(k["uids"]),
            subkey_ids=tuple(k["subkeys"]),
            secret=k["secret"],
            can_encrypt="E" in k["caps"],
            can_sign="S" in k["caps"],
        )
        for k in keys
        if k["fpr"] in fingerprints
    ]


def _regular_file_fd(sink: IO[bytes] | None) -> int | None:
    """The descriptor of ``sink`` when it is a plain Python file object on a regular file (whose ``write`` does
    nothing but write), so gpg can write into it directly; ``None`` for anything else (pipes, wrappers)."""
    if type(sink) not in (io.BufferedWriter, io.BufferedRandom, io.FileIO):
        return None
    try:
        fd = sink.fileno()  # type: ignore[union-attr]
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (OSError, ValueError):
        return None


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
        stdin, args = cast(IO[bytes], counting), []
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
