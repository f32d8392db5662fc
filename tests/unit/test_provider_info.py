"""The provider metadata validates against the schemas shipped by the installed Airflow, and the forms agree."""

from __future__ import annotations

import importlib
import json
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema
import pytest

from airflow_provider_lytics import __version__, get_provider_info

AIRFLOW_DIR = Path(airflow.__file__).parent


def _schema(name: str) -> dict:
    path = AIRFLOW_DIR / name
    if not path.exists():
        pytest.skip(f"{name} is not shipped by this Airflow version")
    return json.loads(path.read_text())


def test_entry_point_is_registered_and_returns_provider_info():
    eps = [ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_provider_lytics")]
    assert len(eps) == 1, "exactly one apache_airflow_provider entry point for this package"
    assert eps[0].load()() == get_provider_info()


def test_provider_info_validates_against_installed_runtime_schema():
    jsonschema.validate(get_provider_info(), _schema("provider_info.schema.json"))


def test_connection_types_validate_against_installed_provider_yaml_schema():
    """The stricter provider.yaml schema describes conn-fields and ui-field-behaviour in detail."""
    full = _schema("provider.yaml.schema.json")
    conn_schema = full["properties"]["connection-types"]
    jsonschema.validate(get_provider_info()["connection-types"], conn_schema)


def test_version_is_listed():
    assert get_provider_info()["versions"] == [__version__]


def test_every_declared_module_and_class_imports():
    info = get_provider_info()
    for section in ("hooks", "operators", "sensors", "triggers"):
        for entry in info.get(section, []):
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for conn in info["connection-types"]:
        module, _, cls = conn["hook-class-name"].rpartition(".")
        hook = getattr(importlib.import_module(module), cls)
        assert hook.conn_type == conn["connection-type"]
    for link in info.get("extra-links", []):
        module, _, cls = link.rpartition(".")
        getattr(importlib.import_module(module), cls)


def test_declarative_form_matches_hook_form():
    """Airflow 3.2+ reads provider info, older versions call the hook: both must show the same form."""
    for conn in get_provider_info()["connection-types"]:
        module, _, cls = conn["hook-class-name"].rpartition(".")
        hook = getattr(importlib.import_module(module), cls)
        behaviour = hook.get_ui_field_behaviour()
        declared = conn["ui-field-behaviour"]
        assert behaviour["hidden_fields"] == declared["hidden-fields"]
        assert behaviour["relabeling"] == declared["relabeling"]
        assert behaviour["placeholders"] == declared["placeholders"]


def test_providers_manager_sees_lytics_connection_form():
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    assert "airflow-provider-lytics" in pm.providers
    hooks = pm.hooks
    for conn in get_provider_info()["connection-types"]:  # None here means Airflow refused the hook's form
        assert hooks[conn["connection-type"]] is not None, conn["connection-type"]
    assert "lytics" in hooks
    assert hooks["lytics"].hook_class_name.endswith("LyticsHook")
    widgets = pm.connection_form_widgets
    for name in ("bulk_url", "account_id", "timeout"):
        assert f"extra__lytics__{name}" in widgets  # from conn-fields (3.2+) or get_connection_form_widgets (2.x)
    assert pm.field_behaviours["lytics"]["relabeling"]["password"] == "API token"
    assert "pgp" in hooks and hooks["pgp"].hook_class_name.endswith("PgpHook")
    secret = widgets["extra__pgp__signing_passphrase"]
    assert secret.is_sensitive if hasattr(secret, "is_sensitive") else True
    assert "extra__pgp__public_key" in widgets
    # One passphrase box on the PGP form: the relabelled Password field, no extra field with the same label.
    assert "extra__pgp__passphrase" not in widgets
    labels = [str(getattr(w, "label", "")) for name, w in widgets.items() if name.startswith("extra__pgp__")]
    labels.append(pm.field_behaviours["pgp"]["relabeling"]["password"])
    assert sum("Private key passphrase" in label for label in labels) == 1, labels
    # The Port field is shown (Airflow 3.3's Test button compares it with the stored port).
    for conn_type in ("lytics", "pgp"):
        assert "port" not in pm.field_behaviours[conn_type]["hidden_fields"]


def test_asset_schemes_are_registered():
    """Airflow 3 reads asset-uris, Airflow 2 dataset-uris: either way both schemes get a handler."""
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    if hasattr(pm, "asset_uri_handlers"):
        handlers = pm.asset_uri_handlers
    else:
        pm.initialize_providers_dataset_uri_resources()
        handlers = pm.dataset_uri_handlers
    assert {"lytics", "lytics-export"} <= set(handlers)
