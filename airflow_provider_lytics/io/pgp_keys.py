"""ASCII-armored key text: normalisation, validation and what gpg reports about an imported key.

Key material reaches the provider as text pasted into Airflow connections, so it is checked (armor headers, kind,
escaped newlines) before gpg ever sees it, with errors that say how to export the key properly and never echo key
material. :class:`PgpKeyInfo` is the key-free description of an imported key that the key ring returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from airflow_provider_lytics.io.pgp_errors import PgpKeyFormatError

KeyKind = Literal["public", "private"]

PUBLIC_KEY_HEADER = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
PUBLIC_KEY_FOOTER = "-----END PGP PUBLIC KEY BLOCK-----"
PRIVATE_KEY_HEADER = "-----BEGIN PGP PRIVATE KEY BLOCK-----"
PRIVATE_KEY_FOOTER = "-----END PGP PRIVATE KEY BLOCK-----"

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
