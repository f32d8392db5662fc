"""The real Go engine, for differential tests: builds ``gorender.go`` once per session (skips without Go)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
GOPATH = Path("/usr/share/gocode")  # Debian's golang-*-dev packages (sprig) install sources here


class GoRenderer:
    """Renders batches of (template, data) cases with Go's text/template plus sprig."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def render(self, cases: list[tuple[str, object]]) -> list[dict]:
        payload = json.dumps([{"template": t, "data": d} for t, d in cases])
        proc = subprocess.run([str(self.binary)], input=payload.encode(), capture_output=True, timeout=60, check=True)
        return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def go_renderer(tmp_path_factory: pytest.TempPathFactory) -> GoRenderer:
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed (apt-get install golang-go golang-github-masterminds-sprig-dev)")
    if not (GOPATH / "src/github.com/Masterminds/sprig").is_dir():
        pytest.skip("sprig sources missing: apt-get install golang-github-masterminds-sprig-dev")
    work = tmp_path_factory.mktemp("gorender")
    shutil.copy(HERE / "gorender.go", work / "gorender.go")
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(GOPATH), "GOFLAGS": "",
           "GOCACHE": str(Path(os.environ.get("GOCACHE", "/tmp/lytics-gocache")))}  # fmt: skip
    proc = subprocess.run([go, "build", "-o", str(work / "gorender"), "gorender.go"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=240)  # fmt: skip
    if proc.returncode != 0:
        pytest.skip(f"could not build the Go renderer: {proc.stderr.strip()[:500]}")
    return GoRenderer(work / "gorender")
