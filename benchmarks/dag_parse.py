"""DAG parse cost: each example DAG file against a BashOperator DAG file with the same number of tasks.

For every file in ``dags/`` a fresh interpreter (the DAG processor's situation: Airflow loaded, the provider not)
imports Airflow, then executes the DAG file and reports the seconds of that step alone and which provider modules
it imported; a generated file with as many ``BashOperator`` tasks as the example's DAGs hold is parsed the same way
in its own fresh interpreter, the two alternating. The goal (issue 17) is the in-process figure: an example file
may cost at most 30 ms more than its BashOperator twin. Whole-process wall and CPU (Airflow's import included)
are recorded beside it.

    .venv/bin/python benchmarks/dag_parse.py --runs 5
    .venv/bin/python benchmarks/dag_parse.py --quick        # two files, one run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

DAGS = h.ROOT / "dags"
GOAL_MS = 30.0

CHILD = r"""
import importlib.util, json, sys, time
import airflow  # noqa: F401  (Airflow's own import is the processor's fixed cost, not the file's)
from airflow.providers.common.compat.sdk import DAG
try:
    from airflow.sdk.definitions._internal.contextmanager import DagContext
except ImportError:
    from airflow.models.dag import DagContext
try:
    from airflow.providers.standard.operators.bash import BashOperator  # noqa: F401
except ImportError:
    from airflow.operators.bash import BashOperator  # noqa: F401
path = sys.argv[1]
before = set(sys.modules)
started, cpu = time.perf_counter(), time.process_time()
spec = importlib.util.spec_from_file_location("parse_bench", path)
DagContext.current_autoregister_module_name = spec.name
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
dags = {id(v): v for v in vars(module).values() if isinstance(v, DAG)}
dags.update({id(d): d for d, _ in DagContext.autoregistered_dags})
tasks = sum(len(d.tasks) for d in dags.values())
new = sorted(m for m in set(sys.modules) - before if m.startswith("airflow_provider_lytics"))
print(json.dumps({"parse_s": seconds, "parse_cpu_s": cpu, "tasks": tasks, "provider_modules": new}))
"""

BASH_TEMPLATE = '''"""Generated twin of an example DAG: {tasks} BashOperator tasks."""
from __future__ import annotations

import datetime

from airflow.providers.common.compat.sdk import DAG

try:
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:
    from airflow.operators.bash import BashOperator

with DAG("bash_twin", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False):
    previous = None
    for i in range({tasks}):
        task = BashOperator(task_id=f"step_{{i}}", bash_command="echo {{{{ ds }}}}")
        if previous is not None:
            previous >> task
        previous = task
'''


def airflow_env(home: Path) -> dict[str, str]:
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS), "PYTHONPATH": str(h.ROOT)}  # fmt: skip
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    h.add_common_args(parser, runs=5)
    parser.add_argument("--files", nargs="*", help="example DAG file names (default: all)")
    args = parser.parse_args()
    files = sorted(DAGS.glob("*.py"))
    if args.files:
        files = [DAGS / name for name in args.files]
    elif args.quick:
        files = [DAGS / "lytics_quickstart.py", DAGS / "lytics_go_template_alerts.py"]
    runs = 1 if args.quick else args.runs
    work = Path(tempfile.mkdtemp(prefix="lytics-parse-bench-"))
    env = airflow_env(work / "home")
    child = work / "child.py"
    child.write_text(CHILD)
    result: dict = {"goal": f"example file parse_s - BashOperator twin parse_s <= {GOAL_MS:g} ms (in-process)",
                    "environment": h.environment(), "files": {}}  # fmt: skip
    try:
        for path in files:
            probe = h.run_process(h.python_cmd(child, path), env=env)
            tasks = max(1, int(probe.inproc.get("tasks", 1)))
            twin = work / f"twin_{path.stem}.py"
            twin.write_text(BASH_TEMPLATE.format(tasks=tasks))
            sides = {
                "example": lambda _run, p=path: h.run_process(h.python_cmd(child, p), env=env),
                "bash_twin": lambda _run, p=twin: h.run_process(h.python_cmd(child, p), env=env),
            }
            measures = h.paired(sides, runs, log=lambda line, n=path.name: print(f"{n}: {line}", file=sys.stderr))
            summary = {name: h.summarize(ms, inproc_keys=("parse_s", "parse_cpu_s")) for name, ms in measures.items()}
            ours = summary["example"]["inproc_parse_s"]["median"]
            twin_s = summary["bash_twin"]["inproc_parse_s"]["median"]
            cpu_over = (
                summary["example"]["inproc_parse_cpu_s"]["median"]
                - summary["bash_twin"]["inproc_parse_cpu_s"]["median"]
            )
            result["files"][path.name] = {
                "tasks": tasks,
                "over_bash_ms": round((ours - twin_s) * 1000, 1),
                "over_bash_cpu_ms": round(cpu_over * 1000, 1),
                "goal_met": (ours - twin_s) * 1000 <= GOAL_MS,
                "provider_modules": probe.inproc.get("provider_modules", []),
                "summary": summary,
                "runs": h.measures_json(measures),
            }
            print(f"{path.name}: +{(ours - twin_s) * 1000:.1f} ms over {tasks} BashOperator tasks, "
                  f"{len(probe.inproc.get('provider_modules', []))} provider modules", file=sys.stderr)  # fmt: skip
            if args.json:  # a long run on a busy machine keeps what it measured so far
                Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    finally:
        shutil.rmtree(work, ignore_errors=True)  # Airflow 2.11 leaves a 'latest' symlink to a folder in its logs
    h.report(args, result)
    print_table(result["files"])
    return 0


def print_table(files: dict) -> None:
    """The benchmarks/README.md table (markdown) on stderr: medians in milliseconds, and the load average seen."""
    print("| file | tasks | provider modules imported | parse CPU ms, file / BashOperator twin "
          "| over twin, CPU ms | over twin, wall ms | load |", file=sys.stderr)  # fmt: skip
    print("|---|---|---|---|---|---|---|", file=sys.stderr)
    for name, row in files.items():
        ours, twin = row["summary"]["example"], row["summary"]["bash_twin"]
        cpu = (ours["inproc_parse_cpu_s"]["median"] * 1000, twin["inproc_parse_cpu_s"]["median"] * 1000)
        load = ours["load"]["median"]
        line = (f"| `{name}` | {row['tasks']} | {len(row['provider_modules'])} | {cpu[0]:.0f} / {cpu[1]:.0f} "
                f"| {row['over_bash_cpu_ms']:+.0f} | {row['over_bash_ms']:+,.0f} | {load:.1f} |")  # fmt: skip
        print(line, file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
