"""The house rules, read from the source with ``ast`` (nothing is imported).

- only ``cnnkeras/tracking/`` imports ``mlflow``;
- MLflow's vocabulary (filter strings, the run-kind tag) is spelled only in
  ``cnnkeras/tracking/schema.py``;
- no module over 300 lines and no function over 50 lines in the library;
- no import cycle among the modules' top-level imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cnnkeras", "tuning", "experiments")
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50
SCHEMA = Path("cnnkeras/tracking/schema.py")
VOCABULARY = ("tags.`", "attributes.status", "cnnkeras.kind", "mlflow.parentRunId")


def sources(root: Path = ROOT, packages=PACKAGES) -> list[Path]:
    return sorted(p for package in packages for p in (root / package).rglob("*.py"))


def imported_modules(tree: ast.AST, top_level_only: bool = False) -> set:
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def mlflow_importers(root: Path = ROOT, packages=PACKAGES) -> list[str]:
    found = []
    for path in sources(root, packages):
        relative = path.relative_to(root)
        if relative.parts[:2] == ("cnnkeras", "tracking"):
            continue
        if any(name.split(".")[0] == "mlflow" for name in imported_modules(ast.parse(
                path.read_text()))):
            found.append(str(relative))
    return found


def vocabulary_outside_schema(root: Path = ROOT, packages=PACKAGES) -> list[str]:
    found = []
    for path in sources(root, packages):
        if path.relative_to(root) == SCHEMA:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and any(
                    word in node.value for word in VOCABULARY):
                found.append(f"{path.relative_to(root)}:{node.lineno}: {node.value[:40]!r}")
    return found


def oversized(root: Path = ROOT, packages=PACKAGES) -> list[str]:
    found = []
    for path in sources(root, packages):
        text = path.read_text()
        relative = path.relative_to(root)
        if len(text.splitlines()) > MAX_MODULE_LINES:
            found.append(f"{relative}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{relative}:{node.lineno}: {node.name} is {length} lines")
    return found


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_cycles(root: Path = ROOT, packages=PACKAGES) -> list[list[str]]:
    """Cycles among the modules' top-level imports (imports inside functions are lazy)."""
    modules = {module_name(p, root): p for p in sources(root, packages)}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in imported_modules(ast.parse(path.read_text()), top_level_only=True):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and not name.startswith(f"{imported}."):
                targets.add(imported)
        graph[name] = targets
    cycles, state = [], {}

    def visit(name, trail):
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                cycles.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return cycles


def test_the_checks_find_what_they_look_for(tmp_path):
    package = tmp_path / "cnnkeras"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text(
        "import mlflow\nfrom cnnkeras import b\nQUERY = 'tags.`cnnkeras.kind` = \"train\"'\n"
        + "def long():\n" + "    x = 1\n" * 60 + "\n" * 300)
    (package / "b.py").write_text("from cnnkeras import a\n")
    assert mlflow_importers(tmp_path, ("cnnkeras",)) == ["cnnkeras/a.py"]
    assert len(vocabulary_outside_schema(tmp_path, ("cnnkeras",))) == 1
    assert {line.split(":")[0] for line in oversized(tmp_path, ("cnnkeras",))} == {
        "cnnkeras/a.py"}
    assert len(oversized(tmp_path, ("cnnkeras",))) == 2  # the module and the function
    assert import_cycles(tmp_path, ("cnnkeras",)) == [["cnnkeras.a", "cnnkeras.b", "cnnkeras.a"]]


def test_only_tracking_imports_mlflow():
    assert mlflow_importers() == []


def test_mlflow_vocabulary_is_spelled_only_in_the_schema():
    assert vocabulary_outside_schema() == []


def test_no_module_over_300_lines_and_no_function_over_50():
    assert oversized() == []


def test_no_import_cycles():
    assert import_cycles() == []
