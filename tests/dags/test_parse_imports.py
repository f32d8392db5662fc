"""Which provider modules parsing each example DAG file imports (issue 17, start-up cost).

A fresh interpreter loads Airflow, then executes every example DAG file in turn; after each file the provider
modules it pulled in are recorded and dropped from ``sys.modules`` (they are pure Python), so every file is judged
on its own imports, not on what an earlier file loaded. Deterministic: no timing, only module names.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"

#: Never imported while parsing: transfer engines, I/O clients and heavy third-party packages.
NEVER_AT_PARSE = (
    "airflow_provider_lytics.io.sftp",
    "airflow_provider_lytics.io.sftp_connect",
    "airflow_provider_lytics.io.pgp",
    "airflow_provider_lytics.io.pgp_keyring",
    "airflow_provider_lytics.io.webhook",
    "airflow_provider_lytics.hooks.sftp",
    "airflow_provider_lytics.hooks.pgp",
    "airflow_provider_lytics.hooks.lytics",
    "airflow_provider_lytics.client.http",
    "airflow_provider_lytics.emulator",
    "airflow_provider_lytics.exports.scan_process",
    "airflow_provider_lytics.imports.sources",
    "airflow_provider_lytics.imports.quarantine",
    "airflow_provider_lytics.lineage",
    "pandas",
    "pyarrow",
    "gnupg",
    "asyncssh",
    "paramiko",
)
#: Engines: never imported while parsing either. The operators validate their arguments at parse time with small
#: modules of their own (imports.settings, exports.options, templating.syntax, triggers.audience_rules) and load
#: the engines in ``execute``.
ENGINES = (
    "airflow_provider_lytics.imports.runner",
    "airflow_provider_lytics.imports.readers",
    "airflow_provider_lytics.imports.sender",
    "airflow_provider_lytics.imports.checkpoint",
    "airflow_provider_lytics.exports.runner",
    "airflow_provider_lytics.exports.scanner",
    "airflow_provider_lytics.exports.outputs",
    "airflow_provider_lytics.exports.destinations",
    "airflow_provider_lytics.exports.encoders",
    "airflow_provider_lytics.exports.events",
    "airflow_provider_lytics.content.importer",
    "airflow_provider_lytics.templating.exec",
    "airflow_provider_lytics.templating.compiler",
    "airflow_provider_lytics.templating.funcs",
    "airflow_provider_lytics.templating.template",
    "airflow_provider_lytics.enrichment.runner",
    "airflow_provider_lytics.jobs.status",
)
#: Packages whose ``__init__`` loads its public names on first use (module ``__getattr__``).
LAZY_PACKAGES = ("airflow_provider_lytics.templating", "airflow_provider_lytics.enrichment")

SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, sys
    import airflow  # noqa: F401
    from airflow.providers.common.compat.sdk import DAG  # noqa: F401
    try:
        from airflow.sdk.definitions._internal.contextmanager import DagContext
    except ImportError:
        from airflow.models.dag import DagContext
    baseline = set(sys.modules)
    report = {}
    for path in sorted(__import__("pathlib").Path(sys.argv[1]).glob("*.py")):
        DagContext.autoregistered_dags.clear()
        spec = importlib.util.spec_from_file_location(f"parse_{path.stem}", path)
        DagContext.current_autoregister_module_name = spec.name
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        new = sorted(set(sys.modules) - baseline)
        report[path.name] = new
        for name in new:  # judge the next file on its own imports
            if name.startswith(("airflow_provider_lytics", "parse_")):
                del sys.modules[name]
    print(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def imports_by_file(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    home = tmp_path_factory.mktemp("airflow_home")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS), "PYTHONPATH": str(ROOT)}  # fmt: skip
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(DAGS)], env=env, capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _hits(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)]


def test_every_example_dag_file_is_checked(imports_by_file: dict[str, list[str]]) -> None:
    assert set(imports_by_file) == {p.name for p in DAGS.glob("*.py")}


def test_parsing_imports_no_transfer_engine_client_or_heavy_package(imports_by_file: dict[str, list[str]]) -> None:
    found = {name: _hits(mods, NEVER_AT_PARSE) for name, mods in imports_by_file.items()}
    assert not {k: v for k, v in found.items() if v}, found


def test_parsing_imports_no_import_export_templating_or_enrichment_engine(
    imports_by_file: dict[str, list[str]],
) -> None:
    found = {name: _hits(mods, ENGINES) for name, mods in imports_by_file.items()}
    assert not {k: v for k, v in found.items() if v}, found


def test_the_check_sees_the_operators(imports_by_file: dict[str, list[str]]) -> None:
    """The import check above would pass vacuously if the files imported nothing: they import the operators."""
    for name, module in (
        ("lytics_pgp_sftp_round_trip.py", "imports"),
        ("lytics_go_template_alerts.py", "messaging"),
        ("lytics_export_one_time.py", "exports"),
        ("lytics_enrichment_round_trip.py", "enrichment"),
    ):
        assert f"airflow_provider_lytics.operators.{module}" in imports_by_file[name]  # fmt: skip


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_lazy_package_loads_nothing_until_a_name_is_used_and_then_every_name(package: str) -> None:
    code = textwrap.dedent(
        f"""
        import importlib, json, sys
        pkg = importlib.import_module({package!r})
        before = sorted(m for m in sys.modules if m.startswith({package!r} + "."))
        missing = [name for name in pkg.__all__ if getattr(pkg, name, None) is None]
        print(json.dumps({{"before": before, "missing": missing, "all": sorted(pkg.__all__),
                          "exports": sorted(pkg._EXPORTS), "dir": set(pkg.__all__) <= set(dir(pkg))}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["before"] == [] and got["missing"] == [] and got["all"] == got["exports"] and got["dir"]
