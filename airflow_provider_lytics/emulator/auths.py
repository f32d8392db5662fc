"""AuthRegistry: the emulator's per-account authorizations (provider credentials jobs refer to by id).

Authorizations are created through ``/v2/auth`` (or the v1 form) and referenced by jobs' ``auth_ids``. Their
secret settings are write-only: they never appear in API views nor in the StateDB, only runners read them through
``secret_config``. The registry is its own module because it has its own storage and secrecy rules; the job engine
owns one and consults it.
"""

from __future__ import annotations

import builtins
import copy
import secrets
import threading
from collections.abc import Callable
from typing import Any

from airflow_provider_lytics.emulator.catalog import PROVIDERS, resolve_provider
from airflow_provider_lytics.emulator.job_errors import AuthNotFound, JobError
from airflow_provider_lytics.emulator.job_time import rfc3339
from airflow_provider_lytics.emulator.persistence import StateDB

# ----------------------------------------------------------------------------------------------------------------
# Authorizations: secrets are write-only and never leave this object except through ``secret_config``.
# ----------------------------------------------------------------------------------------------------------------


class AuthRegistry:
    """Authorizations per account. API views never include ``config``, and neither does the StateDB: only the public
    part is persisted (kind ``auth``), secrets stay in memory. After an emulator restart the authorizations are
    listed as before, but their secrets must be supplied again (re-create the authorization) before a runner can
    use them."""

    def __init__(self, db: StateDB, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock
        self._lock = threading.RLock()
        self._auths: dict[str, dict[str, Any]] = {k: {**v, "config": None} for k, v in db.load("auth").items()}

    def _persist(self, doc: dict[str, Any]) -> None:
        self._db.put("auth", doc["id"], {k: v for k, v in doc.items() if k != "config"})

    def create(self, account_id: str, user_id: str, body: Any, auth_type: str | None = None) -> dict[str, Any]:
        """Validate and store an authorization from a v2 AuthRequest or a v1 ``{provider_id, config[]}`` body."""
        if not isinstance(body, dict):
            raise JobError("request body must be a JSON object describing the authorization", code="JSON-BADREQ-025")
        label = body.get("label") if body.get("label") is not None else body.get("name")
        if not isinstance(label, str) or not label.strip():
            raise JobError("label is required: a non-empty string naming the authorization", code="AUTH-BADREQ-008")
        config = body.get("config")
        if isinstance(config, list):  # v1 form: [{"name": ..., "value": ...}]
            if not all(isinstance(item, dict) and isinstance(item.get("name"), str) for item in config):
                raise JobError("config entries must be objects with name and value", code="AUTH-BADREQ-008")
            config = {item["name"]: item.get("value") for item in config}
        if not isinstance(config, dict):
            raise JobError("config is required: a JSON object of the authorization's settings", code="AUTH-BADREQ-008")
        provider_ref = body.get("provider_id") or body.get("provider_slug")
        if not provider_ref:
            raise JobError("provider_id or provider_slug is required", code="AUTH-BADREQ-008")
        provider = resolve_provider(provider_ref)
        if provider is None:
            known = ", ".join(sorted(PROVIDERS))
            raise JobError(f"unknown provider {provider_ref!r}; known: {known}", code="PROVIDER-NOTFOUND-016")
        kind = auth_type or body.get("type") or provider.auth_method or "generic"
        if not isinstance(kind, str):
            raise JobError("type must be a string", code="AUTH-BADREQ-008")
        now = rfc3339(self._clock())
        doc = {
            "id": secrets.token_hex(16),
            "account_id": account_id,
            "user_id": user_id,
            "label": label.strip(),
            "description": body.get("description") or "",
            "provider_id": provider.id,
            "provider_slug": provider.slug,
            "provider_name": provider.name,
            "type": kind,
            "status": "healthy",
            "created": now,
            "updated": now,
            "last_accessed_at": None,
            "config": copy.deepcopy(config),
        }
        with self._lock:
            self._auths[str(doc["id"])] = doc
            self._persist(doc)
        return self.view(doc)

    def _find(self, account_id: str, auth_id: str) -> dict[str, Any] | None:
        doc = self._auths.get(auth_id)
        return doc if doc is not None and doc["account_id"] == account_id else None

    def get(self, account_id: str, auth_id: str) -> dict[str, Any] | None:
        with self._lock:
            doc = self._find(account_id, auth_id)
            return self.view(doc) if doc else None

    def exists(self, account_id: str, auth_id: str) -> bool:
        with self._lock:
            return self._find(account_id, auth_id) is not None

    def list(self, account_id: str) -> list[dict[str, Any]]:
        with self._lock:
            docs = [d for d in self._auths.values() if d["account_id"] == account_id]
        return [self.view(d) for d in sorted(docs, key=lambda d: d["created"])]

    def delete(self, account_id: str, auth_id: str) -> dict[str, Any]:
        with self._lock:
            doc = self._find(account_id, auth_id)
            if doc is None:
                raise AuthNotFound(f"authorization {auth_id} not found in this account")
            del self._auths[auth_id]
            self._db.delete("auth", auth_id)
        return self.view(doc)

    def list_all(self) -> builtins.list[str]:
        with self._lock:
            return list(self._auths)

    def clear(self) -> None:
        with self._lock:
            self._auths.clear()

    def secret_config(self, account_id: str, auth_id: str) -> dict[str, Any]:
        """The stored secret settings, for emulator runners only (never for an API response)."""
        with self._lock:
            doc = self._find(account_id, auth_id)
            if doc is None:
                raise AuthNotFound(f"authorization {auth_id} not found in this account")
            if doc["config"] is None:
                raise JobError(
                    f"authorization {auth_id} has no secret settings in this emulator process: secrets are kept in "
                    "memory only, so after a restart create the authorization again",
                    code="AUTH-BADREQ-008",
                )
            doc["last_accessed_at"] = rfc3339(self._clock())
            self._persist(doc)
            return copy.deepcopy(doc["config"])

    @staticmethod
    def view(doc: dict[str, Any]) -> dict[str, Any]:
        out = {k: copy.deepcopy(v) for k, v in doc.items() if k != "config"}
        out["unhealthy"] = doc["status"] == "unhealthy"
        return out

    @staticmethod
    def v1_view(doc: dict[str, Any], aid: int) -> dict[str, Any]:
        return {
            "id": doc["id"],
            "aid": aid,
            "account_id": doc["account_id"],
            "name": doc["label"],
            "provider_id": doc["provider_id"],
            "provider_name": doc["provider_name"],
            "user_id": doc["user_id"],
            "created": doc["created"],
            "updated": doc["updated"],
        }
