"""Layers import one way: no module imports from a layer above its own (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "inferplan"

# each top-level module or package of inferplan, and its layer; a module may import only from lower layers
LAYERS = {
    "errors": 0, "fileio": 0,
    "store": 1, "specs": 1, "workload": 1,
    "perf": 2,
    "sim": 3,
    "plan": 4, "measure": 4,
    "deploy": 5,
    "report": 6,
    "runs": 7,
    "api": 8,
    "ui": 9,
    "cli": 10,
}


def _imports(path: Path) -> set[str]:
    """The inferplan top-level parts one file imports, at any depth (also inside functions)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
        out |= {n.split(".")[1] for n in names if n.startswith("inferplan.")}
    return out


def _edges() -> list[tuple[str, str, str]]:
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        part = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if part in ("__init__", "__main__"):
            continue
        edges += [(part, target, str(path.relative_to(PACKAGE))) for target in _imports(path) if target != part]
    return edges


def test_every_part_has_a_layer() -> None:
    parts = {p.name.removesuffix(".py") for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))} - {"__init__", "__main__"}
    assert parts == set(LAYERS), parts ^ set(LAYERS)


def test_no_import_goes_up_or_sideways() -> None:
    bad = [f"{where}: {part} (layer {LAYERS[part]}) imports {target} (layer {LAYERS[target]})"
           for part, target, where in _edges() if LAYERS[target] >= LAYERS[part]]
    assert not bad, "\n".join(bad)
    assert ("deploy", "plan", "deploy/fleet_files.py") in _edges()  # the walk sees real edges


def test_the_command_line_goes_through_the_public_api_only() -> None:
    """One door: a verb reaches the modelling code through ``inferplan.api``, never a module below it."""
    cli = [(target, where) for part, target, where in _edges() if part == "cli"]
    assert {target for target, _ in cli} == {"api", "ui"}, sorted(cli)
    assert {where for target, where in cli if target == "ui"} == {"cli/ui.py"}  # the one verb that serves it


def test_the_workbench_goes_through_the_public_api_only() -> None:
    """The web workbench calls what the command line calls: ``inferplan.api`` and nothing below it."""
    ui = [(target, where) for part, target, where in _edges() if part == "ui"]
    assert {target for target, _ in ui} == {"api"}, sorted(ui)


def test_every_name_the_api_loads_on_use_exists() -> None:
    """Each lazily loaded name of ``inferplan.api`` resolves, and ``__all__`` lists exactly the API's names."""
    import inferplan.api as api

    for name in api.__all__:
        assert getattr(api, name) is not None, name
    assert set(api.__all__) == set(api._LAZY) | {"InputError", "DEFAULT_DEVICES", "DEFAULT_SLO"}
