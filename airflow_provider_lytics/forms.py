"""Connection forms, declared once and served two ways.

Airflow 3.2+ reads ``conn-fields``/``ui-field-behaviour`` from the provider info without importing hooks;
Airflow 2.11-3.1 call ``get_ui_field_behaviour()`` on the hook. Both read the dictionaries below, so the two
forms cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_lytics.client.config import DEFAULT_API_URL, DEFAULT_BULK_URL, DEFAULT_TIMEOUT

LYTICS_UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["login", "schema", "port"],
    "relabeling": {"host": "API base URL", "password": "API token"},
    "placeholders": {
        "host": DEFAULT_API_URL,
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
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Per-request timeout in seconds.",
        "schema": {"type": ["number", "null"], "minimum": 1, "default": DEFAULT_TIMEOUT},
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
    from wtforms import PasswordField, StringField, TextAreaField
    from wtforms.validators import Optional

    widgets: dict[str, Any] = {}
    for name, spec in conn_fields.items():
        fmt = spec.get("schema", {}).get("format")
        if fmt == "password":
            field_cls, widget = PasswordField, BS3PasswordFieldWidget()
        elif fmt == "multiline":
            field_cls, widget = TextAreaField, BS3TextAreaFieldWidget()
        else:
            field_cls, widget = StringField, BS3TextFieldWidget()
        widgets[name] = field_cls(
            lazy_gettext(spec["label"]), widget=widget, validators=[Optional()], description=spec.get("description")
        )
    return widgets
