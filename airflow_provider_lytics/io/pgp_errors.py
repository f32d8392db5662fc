"""The exception hierarchy of the provider's PGP support.

Every failure of the streaming PGP code is a :class:`PgpError`; the subclasses say what to fix (a missing gpg, a
key of the wrong kind, a key pair that does not match, a wrong passphrase, a bad signature, or anything else gpg
refused). They live in their own module so that key validation, the key ring and :class:`~.pgp.PgpCipher` can all
raise them without importing each other.
"""

from __future__ import annotations


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
