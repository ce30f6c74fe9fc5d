"""The package's shape: no import circle and no import from a lower layer up to a higher
one, read from the source (every import statement, including those inside functions).

Layers, lowest first: the base modules (exceptions, parameters, devices, checkpoints, …)
< ``sensors`` (Sentinel-1/2 facts) < ``models`` (physics) < ``inverse`` < ``vae``
< ``cube`` (the xarray layer) and ``accessors`` < ``io`` < ``plotting``, ``cli`` (and
``python -m`` entry points) < the package root. A module may import its own layer or
lower ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "xr_physcube"

LAYERS: dict[str, int] = {
    "exceptions": 0,
    "_data": 0,
    "_version": 0,
    "_extras": 0,
    "_zarr": 0,
    "parameters": 0,
    "devices": 0,
    "checkpoints": 0,
    "performance": 0,
    "validation": 0,
    "sensors": 1,
    "models": 2,
    "inverse": 3,
    "vae": 4,
    "cube": 5,
    "accessors": 5,
    "io": 6,
    "plotting": 7,
    "cli": 7,
    "": 8,  # xr_physcube/__init__.py
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    if module.endswith(".__main__"):  # ``python -m`` entry points are front doors
        return LAYERS["cli"]
    top = module.split(".")[1] if "." in module else ""
    if top not in LAYERS:
        raise AssertionError(f"{module}: its folder {top!r} has no layer in this test; add one")
    return LAYERS[top]


def package_imports() -> dict[str, set[str]]:
    """module -> the package modules it imports (``from x import y`` counts ``x.y`` when
    ``y`` is a module)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("xr_physcube")}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if not node.module.startswith("xr_physcube"):
                    continue
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in modules else node.module)
        graph[name] = {t for t in targets if t != name}
    return graph


def test_the_graph_is_read():
    graph = package_imports()
    assert "xr_physcube.cube.physics" in graph
    assert "xr_physcube.models.prosail" in graph["xr_physcube.cube.physics"]
    assert len(graph) > 40


def test_no_upward_import():
    upward = [
        f"{src} (layer {layer(src)}) imports {dst} (layer {layer(dst)})"
        for src, targets in package_imports().items()
        for dst in targets
        if layer(dst) > layer(src)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_circle():
    graph = package_imports()
    # a circle through a package and its own __init__ re-exports is still a circle, but
    # a package importing its submodules (``from xr_physcube.vae.model import ...`` in
    # ``vae/__init__``) is not one unless a submodule imports the package back
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize(
    "source, expect",
    [
        ({"xr_physcube.a": {"xr_physcube.b"}, "xr_physcube.b": {"xr_physcube.a"}}, True),
        ({"xr_physcube.a": {"xr_physcube.b"}, "xr_physcube.b": set()}, False),
    ],
)
def test_the_circle_check_can_fail(monkeypatch, source, expect):
    monkeypatch.setattr(__import__(__name__), "package_imports", lambda: source)
    if expect:
        with pytest.raises(AssertionError):
            test_no_import_circle()
    else:
        test_no_import_circle()


def test_the_largest_module_is_well_under_600_lines():
    sizes = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    largest = max(sizes, key=sizes.get)
    assert sizes[largest] < 600, f"{largest}: {sizes[largest]} lines"
