"""The layering of sg/ and agent/: no import cycles, and no import of a higher layer.

Read from the source with ``ast`` (imports under ``TYPE_CHECKING`` and inside
functions count too), so the rule holds for what a reader sees, not only for
what happens to run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sg", "agent")

#: Layers, lowest first. A module may import modules of a lower layer, and modules
#: of its own unit (the first matching prefix below); nothing else.
LAYERS: tuple[tuple[str, int], ...] = (
    ("sg.errors", 0),
    ("sg.redact", 0),
    ("sg.lazylog", 0),
    ("sg.logsetup", 1),
    ("sg.model", 1),
    ("sg.timings", 1),
    ("sg.verdict", 2),
    ("sg.guard", 2),
    ("sg.config", 3),
    ("sg.store", 3),
    ("sg.drivers", 3),
    ("sg.backends", 4),
    ("sg.heartbeat", 5),
    ("sg.watch", 5),
    ("sg.group", 6),
    ("sg.testing", 8),
    ("sg.cli", 8),
    ("sg.api", 8),
    ("agent", 9),
    # The sgctl console script, over sg.cli.
    ("sg.sgctl", 9),
    # The package itself re-exports the public API: above the group, below the apps.
    ("sg", 7),
)


def unit_of(module: str) -> tuple[str, int]:
    """The (prefix, layer) a module belongs to."""
    for prefix, layer in LAYERS:
        # The bare package name matches only itself: a new module needs a layer of its own.
        if module == prefix or (prefix != "sg" and module.startswith(prefix + ".")):
            return prefix, layer
    raise AssertionError(f"module {module} has no layer: add it to LAYERS")


def modules() -> dict[str, Path]:
    """Every module of the packages, by dotted name."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """The project modules ``name`` imports, resolved to module names."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            # The longest known module that is the target or contains it.
            parts = target.split(".")
            for end in range(len(parts), 0, -1):
                candidate = ".".join(parts[:end])
                if candidate in known:
                    if candidate != name:
                        yield candidate
                    break


def graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    mods = modules()
    known = set(mods)
    return {name: set(imports_of(name, path, known)) for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def violations(edges: dict[str, set[str]]) -> list[str]:
    """Imports of a higher layer, or of another unit of the same layer."""
    bad = []
    for module, targets in sorted(edges.items()):
        unit, layer = unit_of(module)
        for target in sorted(targets):
            target_unit, target_layer = unit_of(target)
            if target_unit == unit:
                continue
            if target_layer >= layer:
                bad.append(f"{module} (layer {layer}) imports {target} (layer {target_layer})")
    return bad


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_no_module_imports_a_higher_layer() -> None:
    assert violations(graph()) == []


def test_the_library_never_imports_the_agent() -> None:
    edges = graph()
    assert [
        f"{m} -> {t}" for m, ts in edges.items() if m.startswith("sg") for t in ts if t.startswith("agent")
    ] == []


# -- the checks themselves can fail ------------------------------------------------------


def test_cycle_detection_finds_a_planted_cycle() -> None:
    edges = {"sg.group": {"sg.heartbeat"}, "sg.heartbeat": {"sg.group"}, "sg.model": set()}
    assert cycles(edges) == [["sg.group", "sg.heartbeat"]]


@pytest.mark.parametrize(
    ("module", "target"),
    [
        ("sg.store.sql", "sg.group"),
        ("sg.drivers.db", "sg.store.base"),
        ("sg.store.sql", "sg.drivers.base"),
        ("sg.group", "sg.api.app"),
        ("sg.model", "sg.timings"),
        ("sg.cli", "agent.daemon"),
    ],
)
def test_layer_check_finds_a_planted_upward_import(module: str, target: str) -> None:
    assert violations({module: {target}}) != []


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("from . import base\nfrom .base import Driver\nfrom ..store import sql\n")
    known = {"sg.drivers.base", "sg.store.sql", "sg.drivers", "sg.store"}
    assert set(imports_of("sg.drivers.x", source, known)) == {
        "sg.drivers.base",
        "sg.store.sql",
        "sg.drivers",
        "sg.store",
    }
