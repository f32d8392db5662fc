#!/usr/bin/env bash
# The test command: lint, then the whole suite on Airflow 3.3 (and on Airflow 2.11 when LYTICS_TEST_AIRFLOW_2=1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh .venv constraints/py3.11-airflow-3.3.txt
export AIRFLOW_HOME="${AIRFLOW_HOME:-$PWD/.airflow_home}"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__UNIT_TEST_MODE=True
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/pytest "$@"
if [ "${LYTICS_TEST_AIRFLOW_2:-0}" = "1" ]; then
  scripts/bootstrap.sh .venv-airflow2 constraints/py3.11-airflow-2.11.txt
  AIRFLOW_HOME="$PWD/.airflow_home2" .venv-airflow2/bin/pytest "$@"
fi
