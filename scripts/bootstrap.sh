#!/usr/bin/env bash
# Create or refresh a virtualenv with the provider (editable) and its pinned dependencies.
# Usage: scripts/bootstrap.sh [VENV_DIR] [CONSTRAINTS_FILE]
# Defaults: .venv and constraints/py3.11-airflow-3.3.txt. Re-installs only when pyproject or the lock changed.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv}"
lock="${2:-constraints/py3.11-airflow-3.3.txt}"
python="${PYTHON:-python3}"

if ! command -v uv >/dev/null 2>&1; then
  "$python" -m pip install --quiet --disable-pip-version-check uv
fi
uv_bin="$(command -v uv || echo "$("$python" -m site --user-base)/bin/uv")"

stamp="$venv/.lytics-bootstrap"
want="$(cat pyproject.toml "$lock" | sha256sum | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$venv/bin/python" ] || "$uv_bin" venv --quiet --python "$python" "$venv"
"$uv_bin" pip install --quiet --compile-bytecode --python "$venv/bin/python" -c "$lock" -e ".[dev]"
echo "$want" > "$stamp"
