"""Every benchmark script runs in its ``--quick`` mode and writes well-formed JSON (correctness only: no timing
is asserted), and the shared harness measures what it claims to."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import _harness as h  # noqa: E402

HAS_SSHD = Path("/usr/sbin/sshd").exists() and shutil.which("sftp") is not None
HAS_GPG = shutil.which("gpg") is not None


def test_harness_measures_the_whole_tree_and_parses_the_last_json_line(tmp_path: Path) -> None:
    child = tmp_path / "child.py"
    child.write_text(
        "import json, subprocess, sys\n"
        "subprocess.run([sys.executable, '-c', 'sum(range(3_000_000))'], check=True)\n"
        "print('noise')\n"
        "print(json.dumps({'answer': 42}))\n"
    )
    measure = h.run_process([sys.executable, str(child)])
    assert measure.returncode == 0 and measure.inproc == {"answer": 42}
    assert measure.cpu_s > 0 and measure.cpu_s == pytest.approx(measure.user_s + measure.sys_s)
    assert measure.peak_rss_mb > 1 and measure.wall_s > 0
    with pytest.raises(RuntimeError, match="exited 3"):
        h.run_process([sys.executable, "-c", "raise SystemExit(3)"])


def test_paired_alternates_the_order_of_the_sides() -> None:
    order: list[str] = []

    def side(name: str):
        def run(_run: int) -> h.Measure:
            order.append(name)
            return h.Measure(1.0, 0.5, 0.4, 0.1, 10.0, None, 0.0, 0.0, 0)

        return run

    results = h.paired({"a": side("a"), "b": side("b")}, 3)
    assert order == ["a", "b", "b", "a", "a", "b"]
    summary = h.summarize(results["a"])
    assert summary["wall_s"] == {"median": 1.0, "min": 1.0, "max": 1.0, "n": 3}


def _quick(script: str, tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / f"{script}.json"
    done = subprocess.run([sys.executable, str(BENCH / script), "--quick", "--json", str(out), *extra], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return json.loads(out.read_text())


slow = pytest.mark.slow
long_timeout = pytest.mark.timeout(900)


@slow
@long_timeout
def test_import_throughput_quick(tmp_path: Path) -> None:
    result = _quick("import_throughput.py", tmp_path)
    assert result["all_rows_stored"] is True
    assert set(result["summary"]) == {"curl", "ours"} and "inproc_execute_s" in result["summary"]["ours"]
    assert set(result["cases"]) == {"plain", "quoted", "sink", "sink_quoted"}
    assert all(set(case["summary"]) == {"curl", "ours"} for case in result["cases"].values())


@slow
@long_timeout
@pytest.mark.skipif(not HAS_GPG, reason="needs gpg")
def test_pgp_throughput_quick(tmp_path: Path) -> None:
    result = _quick("pgp_throughput.py", tmp_path)
    assert set(result["ratios"]) == {"encrypt", "decrypt"}
    assert {"encrypt_ours", "encrypt_gpg", "encrypt_gpg_sync", "decrypt_ours"} <= set(result["summary"])


@slow
@long_timeout
@pytest.mark.skipif(not HAS_SSHD, reason="needs OpenSSH sshd and sftp")
def test_sftp_throughput_quick(tmp_path: Path) -> None:
    result = _quick("sftp_throughput.py", tmp_path)
    assert set(result["summary"]) == {"up", "down"}
    assert set(result["summary"]["up"]) == {"ours", "ours_no_fsync", "cli", "cli_fsync"}


@slow
@long_timeout
@pytest.mark.skipif(not (HAS_SSHD and HAS_GPG), reason="needs OpenSSH and gpg")
def test_export_pipeline_quick(tmp_path: Path) -> None:
    result = _quick("export_pipeline.py", tmp_path)
    assert result["verified"] is True and result["rows"] == 2000


@slow
@long_timeout
def test_templating_throughput_quick(tmp_path: Path) -> None:
    result = _quick("templating_throughput.py", tmp_path)
    assert result["rates_in_process"]["field"]["this_engine"] > 0


@slow
@long_timeout
def test_emulator_throughput_quick() -> None:
    done = subprocess.run([sys.executable, str(BENCH / "emulator_throughput.py"), "--quick", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["ingest_curl"]["rows_per_server_cpu_s"] > 0
    assert result["memory"]["profiles"] == 2000 and result["memory"]["traced_bytes_per_profile"] > 0


@slow
@long_timeout
def test_dag_parse_quick(tmp_path: Path) -> None:
    result = _quick("dag_parse.py", tmp_path, "--files", "lytics_quickstart.py")
    row = result["files"]["lytics_quickstart.py"]
    assert row["tasks"] >= 1 and "over_bash_ms" in row


@slow
@long_timeout
def test_event_export_quick(tmp_path: Path) -> None:
    result = _quick("event_export.py", tmp_path)
    assert result["verified"] is True and result["counts"] == {"ours": [2000], "curl": [2000]}
    assert set(result["summary"]) == {"curl", "ours"} and "inproc_wall_s" in result["summary"]["ours"]


@slow
@long_timeout
def test_content_import_quick(tmp_path: Path) -> None:
    result = _quick("content_import.py", tmp_path)
    assert result["all_documents_stored"] is True and result["docs"] == 100
    assert set(result["summary"]) == {"naive", "ours", "ours_c1"}
    assert "inproc_execute_s" in result["summary"]["ours"]
