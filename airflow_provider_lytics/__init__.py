"""Apache Airflow provider for Lytics."""

from __future__ import annotations

__version__ = "0.1.0"


def get_provider_info() -> dict:
    """Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""
    from airflow_provider_lytics.provider_info import provider_info

    return provider_info(__version__)
