"""The package's layers (docs/architecture.md): no module imports from a layer above its own,
function-local imports included, and library modules hold no command line."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "src" / "pig_lightning"

#: top-level module or package -> layer; a module may import its own layer and those below
LAYERS = {
    "atomic": 0, "settings": 0, "lazy": 0, "file_checks": 0, "plotting": 0,
    "weights": 1,
    "models": 2, "data": 2, "evaluation": 2, "losses": 2, "nonfinite": 2,
    "module": 3,
    "load": 4,
    "training": 5, "retrieval": 5, "explain": 5, "export": 5, "serving": 5,
    "commands": 6, "cli": 6, "__main__": 6,
}


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        out.append((parts[0], path))
    return out


def imported_parts(path: Path) -> list[tuple[str, int]]:
    """The top-level part of ``pig_lightning`` each import of ``path`` names, with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names if node.module == "pig_lightning"]
        for name in names:
            parts = name.split(".")
            if parts[0] == "pig_lightning" and len(parts) > 1:
                found.append((parts[1], node.lineno))
    return found


def test_every_part_of_the_package_has_a_layer():
    unknown = {top for top, path in modules() if path.name != "__init__.py" or path.parent != PACKAGE} - set(LAYERS)
    assert not unknown, f"give these a layer in LAYERS and docs/architecture.md: {sorted(unknown)}"


def test_no_module_imports_from_a_layer_above_its_own():
    upward = []
    for top, path in modules():
        if path.parent == PACKAGE and path.name == "__init__.py":
            continue  # the package face: lazy look-ups, no imports
        for target, line in imported_parts(path):
            if LAYERS.get(target, -1) > LAYERS[top]:
                upward.append(f"{path.relative_to(PACKAGE)}:{line} ({top}, layer {LAYERS[top]}) imports "
                              f"{target} (layer {LAYERS[target]})")
    assert not upward, "\n".join(upward)


def test_library_modules_define_no_command_line():
    with_main = [str(path.relative_to(PACKAGE)) for top, path in modules()
                 if top not in ("commands", "cli", "__main__")
                 and any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in ast.parse(path.read_text()).body)]
    assert not with_main, f"move these main()s to pig_lightning/commands/: {with_main}"
