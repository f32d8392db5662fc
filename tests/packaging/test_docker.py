"""Static checks of docker/: there is no Docker engine here, so verify what the files promise instead."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from airflow_provider_lytics.emulator.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())


def _arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE, re.M)
    assert match, f"Dockerfile declares no default for ARG {name}"
    return match.group(1)


def test_base_image_matches_the_lock_file():
    lock = (ROOT / "constraints" / "py3.11-airflow-3.3.txt").read_text()
    locked = re.search(r"^apache-airflow==(\S+)$", lock, re.M).group(1)
    assert _arg("AIRFLOW_VERSION") == locked
    assert "FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}" in DOCKERFILE
    assert f"constraints/py3.11-airflow-{'.'.join(locked.split('.')[:2])}.txt" in DOCKERFILE


def test_every_copied_path_exists():
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY"):
            sources = [part for part in shlex.split(line)[1:-1] if not part.startswith("--")]
            for source in sources:
                assert (ROOT / source).exists(), f"Dockerfile copies missing path {source}"


def test_installs_with_the_lock_and_gpg():
    assert re.search(r"pip install .*-c /opt/lytics/constraints\.txt", DOCKERFILE)
    assert "gnupg" in DOCKERFILE


def _service(name: str) -> dict:
    return COMPOSE["services"][name]


def test_compose_sandbox_command_parses_with_the_real_cli():
    sandbox = _service("lytics-sandbox")
    assert sandbox["entrypoint"] == ["lytics-emulator"]
    args = build_parser().parse_args(sandbox["command"])
    assert args.command == "sandbox" and args.airflow_connections and not args.free_ports
    # The DAGs' default params read /tmp/lytics-demo; Airflow must see the same files at the same path.
    assert str(args.data_dir) == "/tmp/lytics-demo"
    assert "lytics-demo:/tmp/lytics-demo" in sandbox["volumes"]
    assert "lytics-demo:/tmp/lytics-demo" in _service("airflow")["volumes"]


def test_sandbox_shares_airflows_network_and_metadata_db():
    """The sandbox writes 127.0.0.1 connections into Airflow's DB: both must share the network and AIRFLOW_HOME."""
    from airflow_provider_lytics.emulator.sandbox import FIXED_PORTS

    sandbox, airflow = _service("lytics-sandbox"), _service("airflow")
    assert sandbox["network_mode"] == "service:airflow"
    assert sandbox["environment"]["AIRFLOW_HOME"] == airflow["environment"]["AIRFLOW_HOME"]
    home_mount = f"airflow-home:{airflow['environment']['AIRFLOW_HOME']}"
    for name in ("airflow-init", "airflow", "lytics-sandbox"):
        assert home_mount in _service(name)["volumes"], name
    published = {p.split(":")[1] for p in airflow["ports"]}
    assert {str(FIXED_PORTS.api), str(FIXED_PORTS.bulk), str(FIXED_PORTS.sftp), "8080"} <= published
    assert sandbox["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert _service("airflow")["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert _service("airflow-init")["command"] == ["db", "migrate"]


def test_named_volumes_are_writable_by_the_airflow_user():
    """Docker copies a mount point's owner into a new named volume: each one must be created for uid 50000."""
    created = set()
    for match in re.finditer(r"install -d -o airflow -g root -m 07[57]5 ([^\n]+)", DOCKERFILE):
        created |= set(match.group(1).split())
    for name, service in COMPOSE["services"].items():
        assert service.get("user") == "50000:0", f"{name} must run as the image's airflow user"
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source in COMPOSE["volumes"]:  # a named volume, not a bind mount
                assert target in created, f"{name}: {target} is not created for uid 50000 in the Dockerfile"


def test_image_compiles_bytecode():
    assert re.search(r"pip install [^\n]*--compile", DOCKERFILE)  # the provider and its dependencies
    assert "compileall -q /opt/airflow/dags" in DOCKERFILE
