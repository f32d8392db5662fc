"""PgpHook: PGP key material from an Airflow ``pgp`` connection, for streaming encryption and decryption.

Connection fields (extras use names that Airflow masks as secrets where they are secret):

* ``public_key`` (extra, multiline): armored public key the data is encrypted to (the partner's, or the key of
  a Lytics "PGP Public Key" authorization's counterpart).
* ``private_key`` (extra, multiline, masked): armored private key used to decrypt.
* Passphrase of the private key: the connection **Password** field or the ``passphrase`` extra (masked); set
  one of them (if both are set they must be equal).
* ``signing_private_key`` / ``signing_passphrase`` (extras, masked): key that signs; defaults to ``private_key``
  and its passphrase.
* ``signer_public_keys`` (extra, multiline): armored public key block(s) whose signatures are accepted.
* ``armor`` (extra, bool, default false) and ``compress`` (extra, bool, default true): defaults for encryption.
* ``gpg_binary`` (extra): gpg executable, default ``gpg``.

Work happens through :class:`~airflow_provider_lytics.io.pgp.PgpCipher`; nothing heavy is imported at module load.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_lytics.forms import PGP_CONN_FIELDS, PGP_UI_FIELD_BEHAVIOUR

if TYPE_CHECKING:
    from airflow_provider_lytics.io.pgp import PgpCipher
    from airflow_provider_lytics.io.pgp_files import Sink, Source
    from airflow_provider_lytics.io.pgp_keyring import PgpOperationStats, PgpSignatureInfo

#: The connection form, defined with the other forms so the provider info need not import this hook.
CONN_FIELDS = PGP_CONN_FIELDS
UI_FIELD_BEHAVIOUR = PGP_UI_FIELD_BEHAVIOUR

_SECRET_FIELDS = ("private_key", "passphrase", "signing_private_key", "signing_passphrase")


def _as_bool(value: Any, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    from airflow_provider_lytics.io.pgp_errors import PgpConfigError

    raise PgpConfigError(f"PGP connection extra {name!r} must be true or false, got {value!r}")


class PgpHook(BaseHook):
    """PGP keys from an Airflow connection of type ``pgp``; streams encryption/decryption through gpg.

    :param pgp_conn_id: the Airflow connection id.
    :param tmp_dir: where the temporary key ring goes (default: the system temp dir).

    All calls of one hook share one prepared key ring (keys imported once, one gpg-agent), removed by
    :meth:`close`, when the hook is garbage-collected, or at process exit; passphrases are still never cached.

    Usage::

        hook = PgpHook("partner_pgp")
        hook.encrypt_file("/data/export.csv", "/data/export.csv.gpg")
        with hook.open_decryptor("/data/import.csv") as sink:
            sftp_download_into(sink)  # ciphertext in, plaintext out, renamed into place on success
    """

    conn_name_attr = "pgp_conn_id"
    default_conn_name = "pgp_default"
    conn_type = "pgp"
    hook_name = "PGP keys (Lytics)"

    def __init__(self, pgp_conn_id: str = default_conn_name, *, tmp_dir: str | None = None) -> None:
        super().__init__()
        self.pgp_conn_id = pgp_conn_id
        self.tmp_dir = tmp_dir
        self._cipher: PgpCipher | None = None
        self.armor = False
        self.compress = True

    # -- connection form ------------------------------------------------------------------------------------------
    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form for Airflow 2.11-3.1 (3.2+ reads ``CONN_FIELDS`` from the provider info)."""
        return {key: (list(v) if isinstance(v, list) else dict(v)) for key, v in UI_FIELD_BEHAVIOUR.items()}

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The same extra fields as wtforms widgets for Airflow 2.x's Flask UI (ignored by 3.2+)."""
        from airflow_provider_lytics.forms import legacy_form_widgets

        return legacy_form_widgets(CONN_FIELDS)

    # -- reading the connection -----------------------------------------------------------------------------------
    def get_cipher(self) -> PgpCipher:
        """Read (once) and validate the connection's keys; raises a ``PgpError`` subclass naming the field to fix."""
        if self._cipher is None:
            self._cipher = self._build_cipher()
        return self._cipher

    def _build_cipher(self) -> PgpCipher:
        from airflow.providers.common.compat.sdk import mask_secret

        from airflow_provider_lytics.io.pgp import PgpCipher
        from airflow_provider_lytics.io.pgp_errors import PgpConfigError

        conn = self.get_connection(self.pgp_conn_id)
        extra = conn.extra_dejson or {}
        for name in _SECRET_FIELDS:
            if extra.get(name):
                mask_secret(extra[name])
        if conn.password:
            mask_secret(conn.password)
        unknown = sorted(set(extra) - set(CONN_FIELDS))
        if unknown:
            self.log.warning("PGP connection %s: ignoring unknown extras %s", self.pgp_conn_id, unknown)
        passphrase = extra.get("passphrase") or None
        if passphrase and conn.password and passphrase != conn.password:
            raise PgpConfigError(
                f"PGP connection {self.pgp_conn_id!r} has a passphrase in both the Password field and the "
                "'passphrase' extra, and they differ: keep only one"
            )
        passphrase = passphrase or conn.password or None
        if not any(extra.get(k) for k in ("public_key", "private_key", "signing_private_key", "signer_public_keys")):
            raise PgpConfigError(
                f"PGP connection {self.pgp_conn_id!r} holds no keys: set the 'public_key' extra to encrypt and/or "
                "'private_key' (+ passphrase) to decrypt"
            )
        self.armor = _as_bool(extra.get("armor"), "armor", False)
        self.compress = _as_bool(extra.get("compress"), "compress", True)
        return PgpCipher(
            public_key=extra.get("public_key") or None,
            private_key=extra.get("private_key") or None,
            passphrase=passphrase,
            signing_key=extra.get("signing_private_key") or None,
            signing_passphrase=extra.get("signing_passphrase") or None,
            signer_public_keys=extra.get("signer_public_keys") or None,
            gpg_binary=extra.get("gpg_binary") or "gpg",
            tmp_dir=self.tmp_dir,
            reuse_keyring=True,
        )

    def close(self) -> None:
        """Remove the key ring this hook's calls share (also done when the hook is garbage-collected or the
        process exits)."""
        if self._cipher is not None:
            self._cipher.close()

    def _opts(self, armor: bool | None, compress: bool | None) -> dict[str, bool]:
        self.get_cipher()
        return {
            "armor": self.armor if armor is None else armor,
            "compress": self.compress if compress is None else compress,
        }

    # -- operations (defaults for armor/compress come from the connection) ----------------------------------------
    def encrypt_file(
        self,
        source: Source,
        destination: Sink,
        *,
        armor: bool | None = None,
        compress: bool | None = None,
        sign: bool = False,
    ) -> PgpOperationStats:
        """Encrypt ``source`` to the connection's public key into ``destination`` (atomic for paths)."""
        return self.get_cipher().encrypt_file(source, destination, sign=sign, **self._opts(armor, compress))

    def decrypt_file(self, source: Source, destination: Sink, *, verify: bool = False) -> PgpOperationStats:
        """Decrypt ``source`` with the connection's private key; a path destination appears only on success."""
        return self.get_cipher().decrypt_file(source, destination, verify=verify)

    def sign_file(self, source: Source, signature: Sink, *, armor: bool = True) -> PgpOperationStats:
        """Write a detached signature of ``source``."""
        return self.get_cipher().sign_file(source, signature, armor=armor)

    def verify_file(self, source: Source, signature: Source | bytes) -> PgpSignatureInfo:
        """Verify a detached signature against the connection's signer public keys."""
        return self.get_cipher().verify_file(source, signature)

    @contextlib.contextmanager
    def open_encryptor(
        self, target: Sink, *, armor: bool | None = None, compress: bool | None = None, sign: bool = False
    ) -> Iterator[IO[bytes]]:
        """Writable stream: plaintext in, ciphertext out into ``target`` (e.g. an SFTP remote file)."""
        with self.get_cipher().open_encryptor(target, sign=sign, **self._opts(armor, compress)) as stream:
            yield stream

    @contextlib.contextmanager
    def open_decryptor(self, target: Sink, *, verify: bool = False) -> Iterator[IO[bytes]]:
        """Writable stream: ciphertext in (e.g. from an SFTP download), plaintext out into ``target``."""
        with self.get_cipher().open_decryptor(target, verify=verify) as stream:
            yield stream

    @contextlib.contextmanager
    def encrypted_reader(
        self, source: Source, *, armor: bool | None = None, compress: bool | None = None, sign: bool = False
    ) -> Iterator[IO[bytes]]:
        """Readable stream of the ciphertext of ``source`` (e.g. to hand to an upload)."""
        with self.get_cipher().encrypted_reader(source, sign=sign, **self._opts(armor, compress)) as stream:
            yield stream

    @contextlib.contextmanager
    def decrypted_reader(self, source: Source, *, verify: bool = False) -> Iterator[IO[bytes]]:
        """Readable stream of the plaintext of ``source``."""
        with self.get_cipher().decrypted_reader(source, verify=verify) as stream:
            yield stream

    # -- connection test ------------------------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """Parse every key with gpg, check that public and private keys pair and that the passphrase works.

        Never raises and never echoes key material or passphrases.
        """
        from airflow_provider_lytics.io.pgp_errors import PgpError

        try:
            cipher = self._build_cipher()
            report = cipher.inspect_keys()
            parts = []
            for info in report.get("public_key", []):
                uid = info.uids[0] if info.uids else "no user id"
                usable = "can encrypt" if info.can_encrypt else "has NO encryption subkey"
                parts.append(f"public key {info.key_id} ({uid}) {usable}")
            if cipher.private_key:
                info = cipher.check_private_key()
                parts.append(f"private key {info.key_id} unlocks and decrypts")
                if "public_key" in report:
                    parts.append("public and private keys pair")
            if "signing_private_key" in report:
                parts.append(f"signing key {report['signing_private_key'][0].key_id} imported")
            if "signer_public_keys" in report:
                parts.append(f"{len(report['signer_public_keys'])} signer public key(s) imported")
            if report.get("public_key") and not any(k.can_encrypt for k in report["public_key"]):
                return False, "PGP connection: " + "; ".join(parts)
            return True, "PGP connection OK: " + "; ".join(parts)
        except PgpError as exc:
            return False, f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            detail = str(exc)[:300]
            if "-----BEGIN" in detail or "KEY BLOCK" in detail:
                detail = "details withheld because they quote key material"
            return False, f"PGP connection test failed: {type(exc).__name__}: {detail}"
