"""The package's layers, checked over every import (module level and inside functions alike).

Data goes down once (``../shared/DESIGN.md``): the TOM Toolkit adapters stand on the routes (the Consumers), the
routes on the core, the core on the foundation (settings and errors). No module imports one above its own layer,
and no modules import each other round in a cycle, however an import is hidden.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tom_pittgoogle"

#: Layer of each module, by dotted-name prefix (longest prefix wins). Higher layers may import lower ones.
LAYERS = {
    "tom_pittgoogle.conf": 0,
    "tom_pittgoogle.exceptions": 0,
    "tom_pittgoogle.core": 1,
    "tom_pittgoogle.models": 1,  # storage: what the core stores in
    "tom_pittgoogle.routes": 2,
    "tom_pittgoogle.adapters": 3,
    "tom_pittgoogle": 3,  # the Django app's shell: apps, admin, urls, middleware, oauth views, commands, demo
}
#: The original dotted paths, kept for users' settings: each is an alias of the module it names, nothing more.
ALIASES = {"broker_stream_rest", "broker_stream_python", "broker_database_python", "consumer_stream_rest",
           "consumer_stream_python", "consumer_database_python", "alertstream"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts and not (path.parent == PACKAGE and path.stem in ALIASES)
    }


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The package's module that ``name`` (a module, or a name inside one) is, or None if it is not ours."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target and target != module and not module.startswith(target + "."):
                found.add(target)
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _layer(module: str) -> int:
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[prefix]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_runs_upward(module):
    upward = sorted(target for target in GRAPH[module] if _layer(target) > _layer(module))
    assert not upward, f"{module} (layer {_layer(module)}) imports {upward} from above it"


def test_no_modules_import_each_other_round_in_a_cycle():
    # A package's __init__ re-exporting its own modules is not a cycle of behaviour; leave those edges out.
    graph = {m: {t for t in targets if not (MODULES[t].name == "__init__.py" and m.startswith(t + "."))}
             for m, targets in GRAPH.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_original_dotted_paths_are_the_modules_they_name():
    import importlib

    for alias in sorted(ALIASES):
        module = importlib.import_module(f"tom_pittgoogle.{alias}")
        assert module.__name__ != f"tom_pittgoogle.{alias}", f"{alias} should alias the module that holds the code"
    from tom_pittgoogle.broker_stream_rest import BrokerStreamRest
    from tom_pittgoogle.consumer_stream_python import ConsumerStreamPython

    assert BrokerStreamRest.__module__ == "tom_pittgoogle.adapters.broker_stream_rest"
    assert callable(ConsumerStreamPython.stream_alerts) and callable(ConsumerStreamPython.callback)
