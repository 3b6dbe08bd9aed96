"""Imports point one way: gateway -> workers -> sms, ivr_flows -> models.

Every import of every module is read with ``ast``, those inside functions
too, since a lazy import ties two layers together just the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The higher the number, the higher the layer; a module may import its own
# layer and those below it. sms/ and ivr_flows/ are peers.
LAYERS = {"gateway": 3, "workers": 2, "sms": 1, "ivr_flows": 1, "models": 0}

# The one import that points up: a worker process builds its app (config,
# database, queue) with the web app's create_app, as Redash's worker does.
ALLOWED_UP = {("workers.runtime", "gateway")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) for every import in ``source``, wherever it stands (``package``: for relative ones)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
    return found


def layer_imports() -> list[tuple[str, int, str, str]]:
    """(importing module, line, imported module, imported layer) between the layers' packages."""
    edges = []
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            module = module_name(path)
            parent = module if path.name == "__init__.py" else module.rpartition(".")[0]
            for line, target in imported_modules(path.read_text(), parent):
                top = target.split(".")[0]
                if top in LAYERS and top != package:
                    edges.append((module, line, target, top))
    return edges


def upward_imports() -> list[str]:
    offenders = []
    for module, line, target, top in layer_imports():
        if LAYERS[top] > LAYERS[module.split(".")[0]] and (module, top) not in ALLOWED_UP:
            offenders.append(f"{module}:{line} imports {target}")
    return offenders


def layer_cycles() -> list[list[str]]:
    """Cycles in the graph of which top-level package imports which (the allowed exception left out)."""
    graph: dict[str, set[str]] = {package: set() for package in LAYERS}
    for module, _line, _target, top in layer_imports():
        if (module, top) not in ALLOWED_UP:
            graph[module.split(".")[0]].add(top)
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for following in sorted(graph[node]):
            if following == path[0]:
                cycles.append([*path, following])
            elif following not in path and following > path[0]:  # each cycle once, from its smallest name
                visit(following, [*path, following])

    for start in sorted(graph):
        visit(start, [start])
    return cycles


def test_no_import_points_up_a_layer():
    offenders = upward_imports()
    assert offenders == [], "imports that point up a layer:\n" + "\n".join(offenders)


def test_the_domain_does_not_read_flask():
    """Settings reach models/ as arguments: no current_app, no request, no g."""
    readers = [
        f"{module_name(path)}:{line} imports {target}"
        for path in sorted((ROOT / "models").rglob("*.py"))
        for line, target in imported_modules(path.read_text(), "models")
        if target.split(".")[0] == "flask"
    ]
    assert readers == []


def test_no_import_cycle_between_layers():
    assert layer_cycles() == []


def test_the_walk_sees_imports_inside_functions_and_relative_ones():
    source = "def close():\n    from gateway.webhooks_voice import voice_settings\n    from ..gateway import recordings\n"
    found = sorted(imported_modules(source, "workers.voice"))
    assert found == [(2, "gateway.webhooks_voice"), (3, "workers.gateway")]


def test_the_one_upward_import_allowed_is_the_workers_app():
    ups = {
        (module, top)
        for module, _line, _target, top in layer_imports()
        if LAYERS[top] > LAYERS[module.split(".")[0]]
    }
    assert ALLOWED_UP <= ups, "the exception names an import that no longer exists: drop it"
