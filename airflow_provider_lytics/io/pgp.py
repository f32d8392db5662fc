"""Streaming PGP encryption, decryption, signing and verification through the gpg binary.

Operations run against a private key ring (:class:`PgpKeyring`): a ``mkdtemp`` directory with mode 0700 whose
gpg-agent never caches passphrases, holding only this cipher's keys, trusted explicitly. By default each operation
gets its own ring, removed (agent stopped) before it returns, also when it fails; with ``reuse_keyring=True`` (what
:class:`~airflow_provider_lytics.hooks.pgp.PgpHook` uses) one prepared ring serves every call until ``close()``
(:mod:`~.pgp_prepared`).

Data never sits in this process's memory: python-gnupg feeds gpg's stdin from a file object in a thread and hands
gpg's stdout to a callback chunk by chunk, which writes straight into the caller's sink; when the sink is a plain
file object on a regular file, gpg writes into it itself. Path to path, gpg reads and writes the files. Stream stages
(:meth:`PgpCipher.open_encryptor`, :meth:`PgpCipher.encrypted_reader` and their decrypting twins) connect gpg to
other streaming code, e.g. an SFTP upload, through a small bounded in-memory channel, so "encrypt while uploading"
and "decrypt while downloading" never keep a second copy of the file on disk.

The ``gnupg`` module is imported lazily: importing this module is cheap.

This module holds :class:`PgpCipher`; import the other pieces from their own small modules:
:mod:`~.pgp_errors` (exceptions), :mod:`~.pgp_keys` (armored key validation, key info), :mod:`~.pgp_channel`
(the bounded stream buffer), :mod:`~.pgp_files` (path/file arguments, atomic output) and :mod:`~.pgp_keyring`
(the temporary key ring and everything that runs gpg).
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator, Sequence
from typing import IO, Any, BinaryIO

from airflow_provider_lytics.io.pgp_channel import _Channel, _ChannelReader, _ChannelWriter
from airflow_provider_lytics.io.pgp_errors import (
    PgpKeyFormatError,
    PgpKeyMismatchError,
    PgpOperationError,
    PgpSignatureError,
)
from airflow_provider_lytics.io.pgp_files import (
    PathLike,
    Sink,
    Source,
    _existing_file,
    _is_path,
    _open_sink,
    _open_source,
    atomic_path,
)
from airflow_provider_lytics.io.pgp_keyring import PgpKeyring, PgpOperationStats, PgpSignatureInfo
from airflow_provider_lytics.io.pgp_keys import PgpKeyInfo, normalize_armored_key, split_public_key_blocks
from airflow_provider_lytics.io.pgp_prepared import PreparedKeyring

__all__ = [
    "MAX_SIGNATURE_BYTES",
    "PgpCipher",
]

#: A detached signature is a few hundred bytes; refuse to read more than this as one.
MAX_SIGNATURE_BYTES = 1 << 20


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
    :param reuse_keyring: keep one prepared key ring (keys imported, agent running) for all calls of this object
        instead of building and destroying one per call (:mod:`~.pgp_prepared`); call :meth:`close` (or use the
        object as a context manager) to remove it, otherwise it goes when the object is garbage-collected or the
        process exits. Hooks use this.

    Keys are validated (armor headers) at construction; gpg parses them at first use. Without ``reuse_keyring``
    each call uses its own temporary key ring, destroyed before the call returns. Key checks
    (:meth:`inspect_keys`, :meth:`check_private_key`) always use a throw-away ring.
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
        reuse_keyring: bool = False,
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
        self._prepared = PreparedKeyring(gpg_binary=gpg_binary, tmp_dir=tmp_dir) if reuse_keyring else None

    def close(self) -> None:
        """Remove the reused key ring, if any (the next call prepares a new one)."""
        if self._prepared is not None:
            self._prepared.close()

    def __enter__(self) -> PgpCipher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never show keys or passphrases
        have = [n for n in ("public_key", "private_key", "signing_key") if getattr(self, n)]
        return f"PgpCipher(keys={have}, signer_public_keys={len(self.signer_public_keys)})"

    # -- helpers ----------------------------------------------------------------------------------------------
    def _keyring(self) -> PgpKeyring:
        return PgpKeyring(gpg_binary=self.gpg_binary, tmp_dir=self.tmp_dir)

    @contextlib.contextmanager
    def _ring(self) -> Iterator[PgpKeyring]:
        """The ring for one operation: the reused one, or a throw-away ring removed afterwards."""
        if self._prepared is not None:
            yield self._prepared.get()
            return
        with self._keyring() as ring:
            yield ring

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
        with self._ring() as ring:
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
        with self._ring() as ring:
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
            with self._ring() as ring, atomic_path(destination) as tmp:  # type: ignore[arg-type]
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
            with self._ring() as ring, atomic_path(destination) as tmp:  # type: ignore[arg-type]
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
            with self._ring() as ring, _open_sink(signature) as out:
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
            with self._ring() as ring:
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
