"""Input files for the example DAGs, made the way the demo makes them (one definition: ``scripts/demo.py``)."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from types import ModuleType

from tests.deployment.airflow_deployment import REPO


@cache
def demo_module() -> ModuleType:
    """``scripts/demo.py`` as a module (it is a script, not a package member)."""
    spec = importlib.util.spec_from_file_location("lytics_demo_script", REPO / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module
