"""The package's shape: each module imports only from its own stage or earlier ones (so no
cycles), nothing imports a command, and every function fits on a screen."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tinyprune"
MAX_FUNCTION_LINES = 60

# The stages, in order: a module may import from its own stage and the ones before it only.
# A stage is a module of the package root or a folder; the shims that run the commands
# (`python -m tinyprune.run`, `python -m tinyprune.report`, ...) come last.
STAGES = [
    ("base", ["tinyprune", "tinyprune.config", "tinyprune.files"]),
    ("data", ["tinyprune.data"]),
    ("kernels", ["tinyprune.kernels"]),
    ("nn", ["tinyprune.nn"]),
    ("train", ["tinyprune.train"]),
    ("prune", ["tinyprune.prune"]),
    ("deploy", ["tinyprune.deploy"]),
    ("experiments", ["tinyprune.experiments"]),
    ("report", ["tinyprune.report"]),
    ("cli", ["tinyprune.cli"]),
    ("shims", []),  # the modules run as commands, whatever their folder
]


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


def stage(name: str, tree: ast.Module) -> int:
    """The index in STAGES of module `name` (parsed as tree)."""
    if is_command(tree) or name.endswith(".__main__"):
        return len(STAGES) - 1
    for index, (_, prefixes) in enumerate(STAGES):
        if any(name == p or (p != "tinyprune" and name.startswith(p + ".")) for p in prefixes):
            return index
    raise AssertionError(f"{name} is in no stage of STAGES; add it to one")


def upward_imports(trees: dict[str, ast.Module]) -> list[str]:
    """Each import of a module from a later stage than its own, in words."""
    wrong = []
    for name, tree in trees.items():
        own = stage(name, tree)
        for dependency in sorted(imports(tree)):
            target = stage(dependency, trees.get(dependency, ast.parse("")))
            if target > own:
                wrong.append(
                    f"{name} ({STAGES[own][0]}) imports {dependency} ({STAGES[target][0]})"
                )
    return wrong


def test_every_module_imports_only_its_own_or_earlier_stages():
    wrong = upward_imports(modules())
    assert not wrong, "\n".join(wrong)


def test_an_upward_import_is_caught_and_a_shim_may_import_anything():
    trees = {
        "tinyprune.train.loop": ast.parse("from tinyprune.report.html import write_page"),
        "tinyprune.report.html": ast.parse("from tinyprune.train import loop"),
        "tinyprune.run": ast.parse(
            "import sys\nfrom tinyprune.cli.run import main\n"
            'if __name__ == "__main__":\n    sys.exit(main())'
        ),
        "tinyprune.cli.run": ast.parse("import tinyprune.report.html"),
    }
    assert upward_imports(trees) == [
        "tinyprune.train.loop (train) imports tinyprune.report.html (report)"
    ]


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
    """The commands are the modules of cli/ with a main() and the shims that run them; only a
    shim imports one."""
    trees = modules()
    shims = {name for name, tree in trees.items() if is_command(tree)}
    commands = shims | {
        name
        for name, tree in trees.items()
        if name.startswith("tinyprune.cli.")
        and any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body)
    }
    assert {"tinyprune.run", "tinyprune.deep_compress", "tinyprune.report.__main__"} <= shims
    assert {"tinyprune.cli.run", "tinyprune.cli.sweep", "tinyprune.cli.report"} <= commands
    for name, tree in trees.items():
        if name not in shims:
            assert not imports(tree) & commands, f"{name} imports {imports(tree) & commands}"


def test_every_function_fits_on_a_screen():
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                assert lines <= MAX_FUNCTION_LINES, f"{name}.{node.name} has {lines} lines"
