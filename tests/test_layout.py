"""The package's shape: stages import downwards only (no cycles), nothing imports a command, and
every function fits on a screen."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tinyprune"
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, ast.Module]:
    """'tinyprune.nn.model' -> its parsed source, for every module of the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text())
    return found


def imports(tree: ast.Module) -> set[str]:
    """The tinyprune modules that tree imports (from X import y: X)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tinyprune"):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("tinyprune")}
    return names


def is_command(tree: ast.Module) -> bool:
    """Run as `python -m tinyprune.<name>`: it ends in `if __name__ == "__main__":`."""
    return any(
        isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) for node in tree.body
    )


def test_no_import_cycles():
    graph = {name: imports(tree) for name, tree in modules().items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        assert name not in path, "import cycle: " + " -> ".join(path + [name])
        if name in done or name not in graph:
            return
        for dependency in graph[name]:
            visit(dependency, path + [name])
        done.add(name)

    for name in graph:
        visit(name, [])


def test_no_module_imports_a_command():
    trees = modules()
    commands = {name for name, tree in trees.items() if is_command(tree)}
    assert {"tinyprune.run", "tinyprune.sweep", "tinyprune.sensitivity"} <= commands
    for name, tree in trees.items():
        assert not imports(tree) & commands, f"{name} imports {imports(tree) & commands}"


def test_every_function_fits_on_a_screen():
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                assert lines <= MAX_FUNCTION_LINES, f"{name}.{node.name} has {lines} lines"
