#!/usr/bin/env bash
# The demo: start the embedded Lytics emulator and run the example DAGs against it with `dag.test()`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh .venv constraints/py3.11-airflow-3.3.txt
exec .venv/bin/python scripts/demo.py "$@"
