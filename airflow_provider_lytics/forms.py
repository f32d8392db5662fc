"""Connection forms, declared once and served two ways.

Airflow 3.2+ reads ``conn-fields``/``ui-field-behaviour`` from the provider info without importing hooks;
Airflow 2.11-3.1 call ``get_ui_field_behaviour()`` on the hook. Both read the dictionaries below, so the two
forms cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_lytics.client.config import DEFAULT_API_URL, DEFAULT_BULK_URL, DEFAULT_TIMEOUT

#: Default of the ``ui_url`` field (kept here, not imported from links, so forms stay import-light).
DEFAULT_UI_URL = "https://app.lytics.com"

# Why the Port field is shown on both forms: Airflow 3.3's Test button (connection list) posts the stored
# connection back with ``port: Number(stored port)``, i.e. 0 when the port is empty (NULL), and the
# ``/connections/test`` route refuses a request whose port differs from the stored one unless it carries a
# fresh password ("The host or port to test differs from the stored connection", 400). A hidden, empty port
# can therefore never be tested from the list. With the field shown, a connection saved with its port (443
# for https://api.lytics.io; 0 for PGP, which has no port) passes that check. Port 0 means "no port" to us.
LYTICS_UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["login", "schema"],
    "relabeling": {"host": "API base URL", "password": "API token", "port": "API port"},
    "placeholders": {
        "host": DEFAULT_API_URL,
        "port": "443 (fill it in: Airflow's Test button needs a stored port)",
        "password": "Lytics API token (Account > Security > Access Tokens)",
        "extra": '{"bulk_url": "https://bulk.lytics.io", "account_id": "", "timeout": 60}',
    },
}

LYTICS_CONN_FIELDS: dict[str, Any] = {
    "bulk_url": {
        "label": "Bulk upload URL",
        "description": "Host for large file uploads (the API host caps bodies at 10 MB). "
        f"Default {DEFAULT_BULK_URL}; point it at the emulator URL when developing offline.",
        "schema": {"type": ["string", "null"], "format": "url", "default": DEFAULT_BULK_URL},
    },
    "account_id": {
        "label": "Account id",
        "description": "Optional Lytics account id to act on when the token reaches several accounts.",
        "schema": {"type": ["string", "null"]},
    },
    "ui_url": {
        "label": "Lytics UI URL",
        "description": "Base of the Lytics web app the task links (Lytics Job/Audience/Stream) open. "
        f"Default {DEFAULT_UI_URL}.",
        "schema": {"type": ["string", "null"], "format": "url", "default": DEFAULT_UI_URL},
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Per-request timeout in seconds.",
        "schema": {"type": ["number", "null"], "minimum": 1, "default": DEFAULT_TIMEOUT},
    },
}


PGP_CONN_FIELDS: dict[str, dict[str, Any]] = {
    "public_key": {
        "label": "Public key (encrypt)",
        "description": "ASCII-armored public key files are encrypted to: from '-----BEGIN PGP PUBLIC KEY BLOCK-----' "
        "to '-----END PGP PUBLIC KEY BLOCK-----' (gpg --armor --export KEY-ID).",
        "schema": {"type": ["string", "null"], "format": "multiline"},
    },
    "private_key": {
        "label": "Private key (decrypt)",
        "description": "ASCII-armored private key that decrypts files: from '-----BEGIN PGP PRIVATE KEY BLOCK-----' "
        "to '-----END PGP PRIVATE KEY BLOCK-----' (gpg --armor --export-secret-keys KEY-ID). Stored as a secret.",
        "schema": {"type": ["string", "null"], "format": "multiline"},
    },
    "signing_private_key": {
        "label": "Signing private key",
        "description": "Optional ASCII-armored private key used to sign; defaults to the private key above.",
        "schema": {"type": ["string", "null"], "format": "multiline"},
    },
    "signing_passphrase": {
        "label": "Signing key passphrase",
        "description": "Passphrase of the signing key; defaults to the private key passphrase.",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "signer_public_keys": {
        "label": "Signer public keys (verify)",
        "description": "ASCII-armored public key block(s) of the parties whose signatures are accepted.",
        "schema": {"type": ["string", "null"], "format": "multiline"},
    },
    "armor": {
        "label": "ASCII-armored output",
        "description": "Write encrypted files as ASCII armor (.asc) instead of binary (.gpg). Default: binary.",
        "schema": {"type": ["boolean", "null"], "default": False},
    },
    "compress": {
        "label": "Compress before encrypting",
        "description": "Turn off for data that is already compressed (gzip, zip, parquet): encryption gets faster.",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "gpg_binary": {
        "label": "gpg binary",
        "description": "GnuPG 2.1+ executable name or path on the workers. Default: gpg.",
        "schema": {"type": ["string", "null"]},
    },
}

PGP_UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["host", "schema", "login"],
    # The Password field is the passphrase; the "passphrase" extra is not a second form field (see
    # PGP_CONN_FIELDS), so the form shows one passphrase box.
    "relabeling": {"password": "Private key passphrase", "port": "Port (unused)"},
    "placeholders": {
        "password": "passphrase of the private key; empty if it has none",
        "port": "0 (PGP has no port; 0 lets Airflow's Test button compare it)",
        "extra": '{"public_key": "-----BEGIN PGP PUBLIC KEY BLOCK-----\\n...", "armor": false, "compress": true}',
    },
}


def to_provider_info_behaviour(behaviour: dict[str, Any]) -> dict[str, Any]:
    """The hook-style (snake_case) behaviour in the kebab-case shape provider info uses."""
    return {
        "hidden-fields": list(behaviour.get("hidden_fields", [])),
        "relabeling": dict(behaviour.get("relabeling", {})),
        "placeholders": dict(behaviour.get("placeholders", {})),
    }


def legacy_form_widgets(conn_fields: dict[str, Any]) -> dict[str, Any]:
    """The same fields as wtforms widgets, for Airflow 2.11's Flask UI (``get_connection_form_widgets``).

    Airflow 3.2+ ignores this method when the provider info declares ``conn-fields``; the imports are local
    because flask_appbuilder and wtforms exist only where the old UI does.
    """
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextAreaFieldWidget, BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, PasswordField, StringField
    from wtforms.validators import Optional

    # Airflow 2.x accepts only StringField, PasswordField, IntegerField and BooleanField here.
    widgets: dict[str, Any] = {}
    for name, spec in conn_fields.items():
        schema = spec.get("schema", {})
        types = schema.get("type")
        label, description = lazy_gettext(spec["label"]), spec.get("description")
        if "boolean" in (types if isinstance(types, list) else [types]):
            widgets[name] = BooleanField(label, default=bool(schema.get("default")), description=description)
            continue
        fmt = schema.get("format")
        if fmt == "password":
            field_cls, widget = PasswordField, BS3PasswordFieldWidget()
        elif fmt == "multiline":
            field_cls, widget = StringField, BS3TextAreaFieldWidget()
        else:
            field_cls, widget = StringField, BS3TextFieldWidget()
        widgets[name] = field_cls(label, widget=widget, validators=[Optional()], description=description)
    return widgets
