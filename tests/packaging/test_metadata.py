"""Package metadata says what is true: the license file ships in the sdist, and the Python range matches what the
locks can install (Airflow's common-compat provider in them needs Python 3.11) and what the README says."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_license_file_is_the_apache_2_text():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert PROJECT["license"] == "Apache-2.0"


def test_sdist_includes_the_license(tmp_path):
    done = subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    if done.returncode != 0 and "No module named hatchling" in done.stderr:
        pytest.skip("hatchling is not installed in this environment")
    assert done.returncode == 0, done.stderr
    (sdist,) = tmp_path.glob("airflow_provider_lytics-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert "LICENSE" in names


def test_python_range_is_what_the_locks_and_readme_say():
    lowest = re.fullmatch(r">=3\.(\d+)", PROJECT["requires-python"])
    assert lowest, PROJECT["requires-python"]
    minor = int(lowest.group(1))
    for lock in (ROOT / "constraints").glob("py3.*-airflow-*.txt"):
        assert int(lock.name.split("-")[0].split(".")[1]) >= minor, f"{lock.name} is below requires-python"
    assert minor >= 11, "the locks' apache-airflow-providers-common-compat needs Python 3.11"
    listed = {int(c.rsplit(".", 1)[1]) for c in PROJECT["classifiers"] if re.search(r"Python :: 3\.\d+$", c)}
    assert listed and min(listed) == minor
    readme = (ROOT / "README.md").read_text()
    assert f"Python 3.{minor}+" in readme and "3.10" not in readme
