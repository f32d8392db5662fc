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


def test_compose_emulator_command_parses_with_the_real_cli():
    emulator = COMPOSE["services"]["lytics-emulator"]
    assert emulator["entrypoint"] == ["lytics-emulator"]
    args = build_parser().parse_args(emulator["command"])
    assert (args.command, args.port, args.bulk_port, args.sftp_port) == ("serve", 8765, 8766, 2222)
    published = {p.split(":")[1] for p in emulator["ports"]}
    assert published == {"8765", "8766", "2222"}


def test_compose_airflow_connection_points_at_the_emulator_service():
    import json

    from airflow_provider_lytics.client.config import settings_from_connection

    env = COMPOSE["services"]["airflow"]["environment"]
    conn = json.loads(env["AIRFLOW_CONN_LYTICS_DEFAULT"])
    settings = settings_from_connection(conn_id="lytics_default", host=conn["host"], port=None, schema=None,
                                        password=conn["password"], extra=conn["extra"])  # fmt: skip
    assert settings.api_url == "http://lytics-emulator:8765"
    assert settings.bulk_url == "http://lytics-emulator:8766"
    assert COMPOSE["services"]["airflow"]["depends_on"]["lytics-emulator"]["condition"] == "service_healthy"
