"""The provider's metadata, as Airflow's ProvidersManager reads it.

Kept apart from ``__init__`` so the package import stays trivial; nothing here imports a hook.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_lytics.forms import (
    LYTICS_CONN_FIELDS,
    LYTICS_UI_FIELD_BEHAVIOUR,
    PGP_CONN_FIELDS,
    PGP_UI_FIELD_BEHAVIOUR,
    to_provider_info_behaviour,
)

PACKAGE = "airflow_provider_lytics"
INTEGRATION = "Lytics"
#: Where the Providers page's documentation link goes when the package metadata names no "Documentation" URL.
#: The project has no published home yet (not on PyPI, no repository URL in pyproject), so the only provider
#: documentation link that resolves today is Lytics' own API documentation. Setting ``[project.urls]
#: Documentation`` in pyproject (e.g. the README on the package's PyPI page once published) takes over with no
#: code change.
FALLBACK_DOCUMENTATION_URL = "https://docs.lytics.com/"


def documentation_url() -> str:
    """The distribution's ``Project-URL: Documentation`` if it declares one, else the fallback above."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls = metadata("airflow-provider-lytics").get_all("Project-URL") or []
    except PackageNotFoundError:
        urls = []
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "documentation" and url.strip():
            return url.strip()
    return FALLBACK_DOCUMENTATION_URL


def provider_info(version: str) -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-lytics",
        "name": "Lytics",
        "description": "Lytics customer data platform: imports, audience exports, enrichment, PGP/SFTP file "
        "transfer, audience triggers and Lytics jobs as code.",
        "documentation-url": documentation_url(),
        "versions": [version],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://docs.lytics.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    f"{PACKAGE}.hooks.lytics",
                    f"{PACKAGE}.hooks.lytics_async",
                    f"{PACKAGE}.hooks.pgp",
                    f"{PACKAGE}.hooks.sftp",
                ],
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    f"{PACKAGE}.operators.jobs",
                    f"{PACKAGE}.operators.messaging",
                    f"{PACKAGE}.operators.file_transfer",
                    f"{PACKAGE}.operators.enrichment",
                    f"{PACKAGE}.operators.exports",
                    f"{PACKAGE}.operators.event_exports",
                    f"{PACKAGE}.operators.imports",
                    f"{PACKAGE}.operators.queries",
                    f"{PACKAGE}.operators.metrics",
                    f"{PACKAGE}.operators.content",
                ],
            },
        ],
        "sensors": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    f"{PACKAGE}.sensors.jobs",
                    f"{PACKAGE}.sensors.audience",
                    f"{PACKAGE}.sensors.files",
                ],
            },
        ],
        "triggers": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [f"{PACKAGE}.triggers.jobs", f"{PACKAGE}.triggers.audience"],
            },
        ],
        "extra-links": [
            f"{PACKAGE}.links.LyticsJobLink",
            f"{PACKAGE}.links.LyticsAudienceLink",
            f"{PACKAGE}.links.LyticsStreamLink",
        ],
        # Streams written by imports (lytics://stream/<name>) and exports (lytics-export://<name>); no
        # normalisation is needed, so the handler is Airflow's no-op. Both keys: Airflow 3 reads asset-uris,
        # Airflow 2 dataset-uris.
        "asset-uris": [{"schemes": ["lytics", "lytics-export"], "handler": None}],
        "dataset-uris": [{"schemes": ["lytics", "lytics-export"], "handler": None}],
        "connection-types": [
            {
                "connection-type": "lytics",
                "hook-class-name": f"{PACKAGE}.hooks.lytics.LyticsHook",
                "hook-name": "Lytics",
                "ui-field-behaviour": to_provider_info_behaviour(LYTICS_UI_FIELD_BEHAVIOUR),
                "conn-fields": LYTICS_CONN_FIELDS,
            },
            {
                "connection-type": "pgp",
                "hook-class-name": f"{PACKAGE}.hooks.pgp.PgpHook",
                "hook-name": "PGP keys (Lytics)",
                "ui-field-behaviour": to_provider_info_behaviour(PGP_UI_FIELD_BEHAVIOUR),
                "conn-fields": PGP_CONN_FIELDS,
            },
        ],
    }
