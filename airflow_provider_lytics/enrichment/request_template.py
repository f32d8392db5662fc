"""Request templates: ``{field}`` placeholders filled from a user's identifiers.

A string that is exactly one placeholder (``"{email}"``) is replaced by the raw value, keeping its JSON type;
otherwise values are substituted as text (URL-encoded in paths). ``{{`` and ``}}`` are literal braces. Besides
the identifier fields, ``{email_domain}`` is available when the user has an ``email``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from airflow_provider_lytics.enrichment.base import EnrichmentConfigError

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|[{}]")
DERIVED = ("email_domain",)


def placeholders(template: Any) -> set[str]:
    """Every placeholder name used anywhere in ``template`` (strings, nested dicts and lists)."""
    found: set[str] = set()
    if isinstance(template, str):
        for match in _TOKEN.finditer(template):
            token = match.group(0)
            if match.group(1):
                found.add(match.group(1))
            elif token in ("{", "}"):
                raise EnrichmentConfigError(
                    f"template {template!r} has a stray {token!r}: "
                    "write {field} for a value, {{ or }} for a literal brace"
                )
    elif isinstance(template, Mapping):
        for key, value in template.items():
            found |= placeholders(str(key)) | placeholders(value)
    elif isinstance(template, list | tuple):
        for item in template:
            found |= placeholders(item)
    return found


def template_values(identifiers: Mapping[str, Any]) -> dict[str, Any]:
    """Identifiers plus derived values (``email_domain``)."""
    values = dict(identifiers)
    email = values.get("email")
    if isinstance(email, str) and "@" in email and "email_domain" not in values:
        values["email_domain"] = email.rsplit("@", 1)[1].strip().lower()
    return values


def render_text(template: str, values: Mapping[str, Any], *, url_quote: bool = False) -> str:
    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name = match.group(1)
        if name is None:
            raise EnrichmentConfigError(f"template {template!r} has a stray {token!r}")
        if name not in values or values[name] is None:
            raise KeyError(name)
        text = str(values[name])
        return quote(text, safe="") if url_quote else text

    return _TOKEN.sub(replace, template)


def render_value(template: Any, values: Mapping[str, Any]) -> Any:
    """Fill a JSON-like template; a missing value raises ``KeyError`` naming the placeholder."""
    if isinstance(template, str):
        match = _TOKEN.fullmatch(template)
        if match and match.group(1):
            if values.get(match.group(1)) is None:
                raise KeyError(match.group(1))
            return values[match.group(1)]
        return render_text(template, values)
    if isinstance(template, Mapping):
        return {render_text(str(k), values): render_value(v, values) for k, v in template.items()}
    if isinstance(template, list | tuple):
        return [render_value(item, values) for item in template]
    return template
