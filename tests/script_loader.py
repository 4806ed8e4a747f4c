"""The repository's scripts (``tools/``, ``bench/``) loaded as modules, the way the tests call their ``main``.

Importable from every test module: pyproject.toml puts ``tests/`` on pytest's ``pythonpath``.
"""

import importlib.util
import os
from types import ModuleType

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_script(relative_path: str, module_name: str) -> ModuleType:
    """A fresh module executed from ``REPO/relative_path`` (each call re-executes it)."""
    spec = importlib.util.spec_from_file_location(module_name, os.path.join(REPO, relative_path))
    assert spec is not None and spec.loader is not None, relative_path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py``."""
    return load_script(os.path.join("tools", f"{name}.py"), f"tool_{name}")
