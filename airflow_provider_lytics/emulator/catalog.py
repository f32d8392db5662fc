"""The emulator's catalog of providers and workflows, and the lookups that resolve a name to one of them.

Jobs are created for a workflow (``sftp_import``, ``webhook_triggers`` ...) and authorizations for a provider
(``sftp``, ``webhook`` ...). The catalog is static data with stable ids derived from the slugs, so ids survive an
emulator restart; it is kept apart from the job state machine because the routes, the authorization registry and
the engine all read it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from airflow_provider_lytics.emulator.job_errors import WorkflowNotFound

# ----------------------------------------------------------------------------------------------------------------
# Catalog of providers and workflows (ids are stable 32-char hex derived from the slug).
# ----------------------------------------------------------------------------------------------------------------


def _stable_id(kind: str, slug: str) -> str:
    return hashlib.md5(f"{kind}:{slug}".encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Provider:
    slug: str
    name: str
    namespace: str
    categories: tuple[str, ...]
    auth_method: str = ""
    no_auth: bool = False
    description: str = ""

    @property
    def id(self) -> str:
        return _stable_id("provider", self.slug)

    def as_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "slug": self.slug,
            "name": self.name,
            "namespace": self.namespace,
            "description": self.description,
            "categories": list(self.categories),
            "auth_method": self.auth_method,
            "auth_description": "",
            "no_auth": self.no_auth,
            "hidden": False,
        }


@dataclass(frozen=True)
class Workflow:
    slug: str
    name: str
    provider: str
    category: str  # "import" | "export" | "enrichment"
    one_shot: bool = False  # default when the config does not say continuous true/false
    required: tuple[str, ...] = ()  # config keys the job cannot run without
    description: str = ""

    @property
    def id(self) -> str:
        return _stable_id("workflow", self.slug)

    @property
    def provider_id(self) -> str:
        return PROVIDERS[self.provider].id

    def as_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "slug": self.slug,
            "name": self.name,
            "description": self.description,
            "provider_id": self.provider_id,
            "provider_slug": self.provider,
            "category": self.category,
            "hidden": False,
        }


PROVIDERS: dict[str, Provider] = {
    p.slug: p
    for p in (
        Provider("lytics", "Lytics", "lytics", ("import", "export"), no_auth=True, description="Built-in jobs"),
        Provider(
            "sftp", "SFTP", "sftp", ("import", "export"), auth_method="sftp", description="Client or managed SFTP"
        ),
        Provider("webhook", "Webhooks", "webhook", ("export", "enrichment"), auth_method="header_param_auth"),
        Provider("google", "Google Cloud", "gcs", ("import", "export"), auth_method="service_account"),
        Provider("amazon", "Amazon Web Services", "aws", ("import", "export"), auth_method="access_key"),
    )
}

WORKFLOWS: dict[str, Workflow] = {
    w.slug: w
    for w in (
        Workflow("lytics_simple_csv_export", "CSV Export", "lytics", "export", one_shot=True),
        Workflow("sample_export", "Sample Export", "lytics", "export", one_shot=True),
        Workflow("eventscopy", "Events Copy", "lytics", "export", one_shot=True),
        Workflow("csv_import", "CSV Import", "lytics", "import", one_shot=True),
        Workflow("sftp_import", "SFTP Import", "sftp", "import"),
        Workflow("sftp_export", "SFTP Export", "sftp", "export"),
        Workflow("gcs_import", "Google Cloud Storage Import", "google", "import"),
        Workflow("s3_import", "Amazon S3 Import", "amazon", "import"),
        Workflow("webhook_triggers", "Audience Triggers", "webhook", "export", required=("segment_ids", "webhook_url")),
        Workflow(
            "webhook_enrichment", "User Enrichment", "webhook", "enrichment", required=("segment_ids", "webhook_url")
        ),
    )
}

#: Spec-style kebab-case paths (``/v2/job/sftp-import``) and vendor names that mean the same workflow.
_WORKFLOW_ALIASES = {"lytics-sftp-export": "sftp_export", "lytics_sftp_export": "sftp_export"}


def resolve_workflow(name: str | None) -> Workflow:
    """The workflow for a slug, its kebab-case form or its id; :class:`WorkflowNotFound` otherwise."""
    if not name or not isinstance(name, str):
        raise WorkflowNotFound("workflow is required: give it in the path (/v2/job/{workflow}) or the body")
    key = _WORKFLOW_ALIASES.get(name, name.replace("-", "_"))
    if key in WORKFLOWS:
        return WORKFLOWS[key]
    for wf in WORKFLOWS.values():
        if wf.id == name:
            return wf
    known = ", ".join(sorted(WORKFLOWS))
    raise WorkflowNotFound(f"unknown workflow {name!r}; known workflows: {known}")


def resolve_provider(name: str | None) -> Provider | None:
    if not name:
        return None
    if name in PROVIDERS:
        return PROVIDERS[name]
    for p in PROVIDERS.values():
        if name in (p.id, p.namespace):
            return p
    return None
