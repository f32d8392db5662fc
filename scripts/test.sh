#!/usr/bin/env bash
# The test command: lint, the whole suite on Airflow 3.3, then the Airflow-facing tests again on Airflow 2.11.
# LYTICS_TEST_AIRFLOW_2=0 skips the Airflow 2.11 pass; extra arguments go to pytest (both passes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh .venv constraints/py3.11-airflow-3.3.txt
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__UNIT_TEST_MODE=True
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== Airflow 3.3: whole suite"
AIRFLOW_HOME="$PWD/.airflow_home" .venv/bin/pytest "$@"
if [ "${LYTICS_TEST_AIRFLOW_2:-1}" = "1" ]; then
  # The emulator and the Go-template engine do not touch Airflow: they run once, above.
  echo "== Airflow 2.11: Airflow-facing tests"
  scripts/bootstrap.sh .venv-airflow2 constraints/py3.11-airflow-2.11.txt
  AIRFLOW_HOME="$PWD/.airflow_home2" .venv-airflow2/bin/pytest --ignore=tests/emulator --ignore=tests/templating "$@"
fi
