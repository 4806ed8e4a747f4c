"""The shape of the package: the module import graph of ``reid_dff`` has no cycle, its layers import one way,
and no module is over 600 lines.

The graph is built from the source (``ast``), not by importing, so that imports inside functions (the lazy
ones) count as much as those at the top. The rules, and why:

- Every ``import reid_dff.x.y`` / ``from reid_dff.x import y`` / ``from ..x import y`` is an edge from the
  importing module to the module it names; ``from pkg import name`` is an edge to ``pkg.name`` when that is
  a module, else to ``pkg`` (its ``__init__``).
- Only the named module counts, not its parent packages, although Python runs their ``__init__`` first:
  otherwise every submodule that its package's ``__init__`` re-exports would sit in a "cycle" with each
  sibling it imports, which is the ordinary package layout, not modules that need each other.
- A package ``__init__`` that re-exports its submodules does count (``pkg`` -> ``pkg.sub``). So a submodule
  that imports from its own package's ``__init__`` (``from . import name`` for a re-exported name) forms a
  cycle and is reported: it works only by the order of the ``__init__``'s imports.
- ``if TYPE_CHECKING:`` imports count too: the graph describes which module knows which.

A cycle is a strongly connected component of more than one module.
"""

from __future__ import annotations

import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "reid_dff"
MAX_LINES = 600


def module_files() -> dict[str, str]:
    """``reid_dff.x.y`` -> path of every module of the package (a package is its ``__init__.py``)."""
    modules = {}
    for dirpath, dirnames, filenames in os.walk(os.path.join(REPO, PACKAGE)):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            parts = os.path.relpath(path, REPO)[: -len(".py")].split(os.sep)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def resolve(name: str, modules: dict[str, str]) -> str | None:
    """The module ``name`` refers to: itself, or the closest enclosing module (``pkg.attr`` -> ``pkg``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imported_modules(module: str, path: str, modules: dict[str, str]) -> set[str]:
    """The ``reid_dff`` modules that ``module`` (at ``path``) imports anywhere in its source."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    is_package = os.path.basename(path) == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    targets: set[str | None] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(
                resolve(alias.name, modules) for alias in node.names if alias.name.startswith(PACKAGE)
            )
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source != PACKAGE and not source.startswith(PACKAGE + "."):
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.add(submodule if submodule in modules else resolve(source, modules))
    targets.discard(None)
    targets.discard(module)
    return {t for t in targets if t is not None}


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {module: imported_modules(module, path, modules) for module, path in modules.items()}


def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); each component sorted, components in no particular order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def test_the_cycle_finder_finds_cycles_and_only_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": set(), "f": {"f"}}
    components = sorted(strongly_connected_components(graph))
    assert components == [["a", "b", "c"], ["d"], ["e"], ["f"]]


def test_the_graph_resolves_relative_absolute_and_function_level_imports(tmp_path):
    modules = {"reid_dff": "", "reid_dff.a": "", "reid_dff.a.x": "", "reid_dff.a.y": "", "reid_dff.b": ""}
    source = tmp_path / "x.py"
    source.write_text(
        "from . import y\nfrom .. import b\nimport reid_dff.b as bb\nfrom reid_dff.a import SOMETHING\n"
        "import os\n\ndef f():\n    from .y import g\n"
    )
    found = imported_modules("reid_dff.a.x", str(source), modules)
    assert found == {"reid_dff.a.y", "reid_dff.b", "reid_dff.a"}
    init = tmp_path / "__init__.py"
    init.write_text("from .x import thing\n")
    assert imported_modules("reid_dff.a", str(init), modules) == {"reid_dff.a.x"}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_no_import_cycle_inside_the_package(graph):
    assert len(graph) > 50 and "reid_dff.evaluation.metrics" in graph
    cycles = [c for c in strongly_connected_components(graph) if len(c) > 1]
    detail = [{m: sorted(graph[m] & set(c)) for m in c} for c in cycles]
    assert not cycles, f"import cycles (module -> the members of its cycle it imports): {detail}"


def layer_violations(graph: dict[str, set[str]], layer: str, forbidden: tuple[str, ...]) -> list[str]:
    def inside(module: str, package: str) -> bool:
        return module == package or module.startswith(package + ".")

    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if inside(module, f"{PACKAGE}.{layer}")
        for target in targets
        if any(inside(target, f"{PACKAGE}.{f}") for f in forbidden)
    )


def test_data_imports_nothing_from_evaluation_engine_or_inference(graph):
    assert layer_violations(graph, "data", ("evaluation", "engine", "inference")) == []


def test_evaluation_imports_nothing_from_inference_or_the_cli(graph):
    assert layer_violations(graph, "evaluation", ("inference", "cli")) == []


def test_inference_imports_nothing_from_engine(graph):
    assert layer_violations(graph, "inference", ("engine",)) == []


def test_no_module_is_over_600_lines():
    lengths = {}
    for module, path in module_files().items():
        with open(path, encoding="utf-8") as f:
            lengths[module] = sum(1 for _ in f)
    too_long = {m: n for m, n in lengths.items() if n > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines (split them along their concerns): {too_long}"


# The layers of docs/architecture.md, lowest first: a package may import only from packages of a lower
# layer (and from itself). Packages of one layer do not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("errors",),
    ("utils",),
    ("config",),
    ("data", "modeling"),
    ("evaluation",),
    ("tasks", "inference"),
    ("engine", "visualization"),
    ("experiments",),
    ("cli",),
]


def test_packages_import_only_lower_layers(graph):
    rank = {package: level for level, packages in enumerate(LAYERS) for package in packages}
    top = {m.split(".")[1] for m in graph if m.count(".") >= 1}
    assert top - {"__init__"} <= set(rank), f"packages missing from LAYERS: {sorted(top - set(rank))}"
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module.count(".") >= 1
        for target in targets
        if target.count(".") >= 1
        and target.split(".")[1] != module.split(".")[1]
        and rank[target.split(".")[1]] >= rank[module.split(".")[1]]
    )
    assert not upward, f"imports that do not go down the layers of docs/architecture.md: {upward}"
