#!/usr/bin/env bash
# The declared lower bounds, tested: resolve the LOWEST versions of this package's direct dependencies
# (`uv pip compile --resolution lowest-direct`, Airflow pinned to a supported version), install them into their own
# venv (.venv-lowest) and run the Airflow-facing tests that exercise them: tests/unit plus the hook, operator,
# SFTP and PGP integration tests. A failure here means a lower bound in pyproject.toml must be raised.
# Usage: scripts/test-lowest.sh [AIRFLOW_VERSION (default 2.11.2)] [extra pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
airflow_version="${1:-2.11.2}"
shift || true
venv=.venv-lowest
python="${PYTHON:-python3}"
command -v uv >/dev/null 2>&1 || "$python" -m pip install --quiet --disable-pip-version-check uv

[ -x "$venv/bin/python" ] || uv venv --quiet --python "$python" "$venv"
work="$venv/resolution"
mkdir -p "$work"
echo "apache-airflow==${airflow_version}" > "$work/airflow-pin.txt"
echo "== Resolving the lowest direct dependencies with apache-airflow==${airflow_version}"
uv pip compile pyproject.toml --extra emulator --extra parquet --resolution lowest-direct --python-version 3.11 \
  -c "$work/airflow-pin.txt" --no-emit-package airflow-provider-lytics --quiet -o "$work/lowest-direct.txt"
# What the lowest resolution picked for each direct dependency (a bound the resolver cannot reach shows here).
grep -E '^(apache-airflow|apache-airflow-providers-[a-z-]+|asyncssh|python-gnupg|pandas|requests|aiohttp|asgiref|starlette|uvicorn|msgspec|pyarrow)==' \
  "$work/lowest-direct.txt" | sed 's/^/  /'

# The package and its dependencies exactly as resolved; the test tools resolve normally next to them.
uv pip install --quiet --python "$venv/bin/python" -r "$work/lowest-direct.txt"
uv pip install --quiet --python "$venv/bin/python" -c "$work/lowest-direct.txt" --no-deps -e .
uv pip install --quiet --python "$venv/bin/python" -c "$work/lowest-direct.txt" \
  "pytest>=8" "pytest-asyncio>=0.23" "pytest-timeout>=2.3" "jsonschema>=4" "hypothesis>=6.100" "hatchling>=1.21"

echo "== Airflow-facing tests on the lowest direct dependencies"
export AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__UNIT_TEST_MODE=True AIRFLOW_HOME="$PWD/.airflow_home_lowest"
rc=0
"$venv/bin/pytest" -q tests/unit tests/integration/test_lytics_hook.py tests/integration/test_lytics_async_hook.py \
  tests/integration/test_exports_operator.py tests/integration/test_imports_local.py tests/integration/test_sftp.py \
  tests/integration/test_pgp.py tests/integration/test_file_transfer.py tests/jobs/test_operators.py "$@" || rc=$?
echo "Lowest-direct pass: $([ $rc -eq 0 ] && echo passed || echo "FAILED (pytest exit $rc)") in $((SECONDS - started)) s"
exit $rc
