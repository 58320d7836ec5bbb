"""Layers point one way: no import circles in ctpipe, and no package imports one above it.

The imports are read with ``ast`` from every module (those inside functions too, as they
run sooner or later), so the check needs no import to succeed. The layers, lowest first,
are the picture of the README's architecture section; an arrow only points down.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ctpipe"

#: The layers, lowest first: a module may import its own layer and those below it.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "foundations",
        frozenset(
            {"ctpipe", "errors", "schema", "transforms", "devices", "provenance", "lazy", "kernels"}
        ),
    ),
    ("io and export", frozenset({"io", "export"})),
    (
        "models",
        frozenset(
            {
                "nets",
                "checkpoints",
                "losses",
                "elbo",
                "gan_losses",
                "metrics",
                "simulate",
                "phantom",
                "body_mask",
                "slice_grid",
                "organ_statistics",
            }
        ),
    ),
    (
        "inference and training",
        frozenset(
            {
                "inference",
                "segment",
                "vae_generate",
                "anomaly",
                "inpaint",
                "baselines",
                "evaluate",
                "weights",
                "training",
                "bundle",
            }
        ),
    ),
    ("steps", frozenset({"steps"})),
    ("workflow", frozenset({"workflow", "demo"})),
    ("commands", frozenset({"cli", "pacs", "__main__"})),
)
#: Packages that only the named ones may import: inference never imports training.
IMPORTED_ONLY_BY: Mapping[str, frozenset[str]] = {"training": frozenset({"training", "cli"})}


def module_names(root: Path) -> dict[str, Path]:
    """Every module under ``root`` by dotted name (a package by its ``__init__``)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _target(name: str, modules: Mapping[str, Path]) -> str | None:
    """The module ``name`` refers to: itself, or the closest enclosing module."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imported(node: ast.AST, module: str, is_package: bool) -> Iterable[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            package = module if is_package else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}".rstrip(".")
        yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(root: Path) -> dict[str, set[str]]:
    """``module -> modules of the same package it imports`` (anywhere in its code)."""
    modules = module_names(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for imported in _imported(node, name, path.name == "__init__.py"):
                target = _target(imported, modules)
                if target is not None and target != name:
                    graph[name].add(target)
    return graph


def circles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def top_name(module: str) -> str:
    """The top-level name under the root package (the root itself for ``ctpipe``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_of(module: str, layers=LAYERS) -> int | None:
    """The index of ``module``'s layer, or ``None`` when no layer names it."""
    name = top_name(module)
    return next((i for i, (_, names) in enumerate(layers) if name in names), None)


def upward_imports(graph: Mapping[str, set[str]], layers=LAYERS) -> list[str]:
    """``a -> b`` for every import of a module in a higher layer."""
    found = []
    for module, imported in sorted(graph.items()):
        for target in sorted(imported):
            own, other = layer_of(module, layers), layer_of(target, layers)
            if own is not None and other is not None and other > own:
                found.append(f"{module} ({layers[own][0]}) -> {target} ({layers[other][0]})")
    return found


def forbidden_imports(graph: Mapping[str, set[str]], rules=IMPORTED_ONLY_BY) -> list[str]:
    """``a -> b`` for every import of a package by one its rule does not allow."""
    return [
        f"{module} -> {target}"
        for module, imported in sorted(graph.items())
        for target in sorted(imported)
        if top_name(target) in rules and top_name(module) not in rules[top_name(target)]
    ]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(PACKAGE)


def test_every_module_has_a_layer(graph):
    missing = sorted({top_name(m) for m in graph if layer_of(m) is None})
    assert not missing, f"give these a layer in tests/test_layers.py (LAYERS): {missing}"


def test_no_import_circles(graph):
    found = circles(graph)
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_package_imports_one_above_it(graph):
    found = upward_imports(graph)
    assert not found, "upward imports:\n" + "\n".join(found)


def test_inference_and_workflows_never_import_training(graph):
    found = forbidden_imports(graph)
    assert not found, "only the training code and the CLI import ctpipe.training:\n" + "\n".join(
        found
    )


def test_the_checks_catch_a_circle_and_an_upward_import(tmp_path):
    root = tmp_path / "pkg"
    (root / "low").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "low" / "__init__.py").write_text("")
    (root / "low" / "a.py").write_text("from pkg.low import b\n")
    (root / "low" / "b.py").write_text("def f():\n    from . import a\n    import pkg.high\n")
    (root / "high.py").write_text("import json\n")
    graph = import_graph(root)
    assert circles(graph) == [["pkg.low.a", "pkg.low.b"]]
    layers = (("low", frozenset({"pkg", "low"})), ("high", frozenset({"high"})))
    assert upward_imports(graph, layers) == ["pkg.low.b (low) -> pkg.high (high)"]
    assert forbidden_imports(graph, {"high": frozenset({"high"})}) == ["pkg.low.b -> pkg.high"]
