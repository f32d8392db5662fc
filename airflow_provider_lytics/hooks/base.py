"""What the sync and async Lytics hooks share: connection identity, form, retry policy, and settings parsing."""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_lytics.client.config import LyticsSettings, settings_from_connection
from airflow_provider_lytics.client.retry import RetryPolicy
from airflow_provider_lytics.forms import LYTICS_CONN_FIELDS, LYTICS_UI_FIELD_BEHAVIOUR, legacy_form_widgets


class LyticsBaseHook(BaseHook):
    """Base of :class:`LyticsHook` and :class:`LyticsAsyncHook`: one ``lytics`` connection, one retry policy.

    :param lytics_conn_id: Airflow connection id (type ``lytics``): token in Password, API URL in Host,
        extras ``bulk_url``, ``account_id``, ``timeout``.
    :param retry_policy: overrides the default :class:`RetryPolicy`.
    """

    conn_name_attr = "lytics_conn_id"
    default_conn_name = "lytics_default"
    conn_type = "lytics"
    hook_name = "Lytics"

    def __init__(self, lytics_conn_id: str = default_conn_name, *, retry_policy: RetryPolicy | None = None) -> None:
        super().__init__()
        self.lytics_conn_id = lytics_conn_id
        self.retry_policy = retry_policy or RetryPolicy()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form for Airflow 2.11-3.1 (3.2+ reads the same data from the provider info)."""
        return {key: (list(value) if isinstance(value, list) else dict(value))
                for key, value in LYTICS_UI_FIELD_BEHAVIOUR.items()}  # fmt: skip

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields for Airflow 2.11's connection form (3.2+ reads ``conn-fields`` instead)."""
        return legacy_form_widgets(LYTICS_CONN_FIELDS)

    def _settings_from(self, conn: Any, extra: dict[str, Any]) -> LyticsSettings:
        """Settings from a resolved Connection; the token is registered with Airflow's secret masker."""
        settings = settings_from_connection(
            conn_id=self.lytics_conn_id,
            host=conn.host,
            port=conn.port,
            schema=conn.schema,
            password=conn.password,
            extra=extra,
        )
        mask(settings.token)
        return settings


def mask(secret: str) -> None:
    """Register ``secret`` with Airflow's log masker (best effort outside a running task)."""
    try:
        from airflow.providers.common.compat.sdk import mask_secret

        mask_secret(secret)
    except Exception:
        pass
