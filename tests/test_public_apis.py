"""Only public Keras, KerasTuner and TensorFlow APIs, so a library release cannot break us.

Every ``.py`` under ``cnnkeras/``, ``experiments/`` and ``tuning/`` is read with
``ast`` (nothing is imported) for three kinds of reach into a library's insides:

- an import from ``keras.src``, ``keras_tuner.src`` or ``tensorflow.python``;
- a private attribute: ``._inbound_nodes``, ``._outbound_nodes``, ``._layers``,
  ``._keras_history`` (Keras), ``._retry_queue``, ``._run_times`` (KerasTuner's oracle)
  on any object, or any ``_name`` (or ``src``/``python``) reached from a name bound
  to an import of keras, keras_tuner or tensorflow;
- a class overriding one of KerasTuner's private hooks (``_populate_initial_space``,
  ``_try_build``, ``_build_and_fit_model``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("keras", "keras_tuner", "tensorflow")
PRIVATE_MODULES = ("keras.src", "keras_tuner.src", "tensorflow.python")
PRIVATE_ATTRIBUTES = {"_inbound_nodes", "_outbound_nodes", "_layers", "_keras_history",
                      "_retry_queue", "_run_times"}
PRIVATE_HOOKS = {"_populate_initial_space", "_try_build", "_build_and_fit_model"}


def is_private_module(name: str) -> bool:
    return any(name == prefix or name.startswith(f"{prefix}.") for prefix in PRIVATE_MODULES)


def is_private_name(name: str) -> bool:
    return name in ("src", "python") or (name.startswith("_") and not name.startswith("__"))


def library_aliases(tree: ast.AST) -> set:
    """Names bound to an import from a library (``import keras``, ``from keras import ops``)."""
    aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {(a.asname or a.name).split(".")[0] for a in node.names
                        if a.name.split(".")[0] in LIBRARIES}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in LIBRARIES:
            aliases |= {a.asname or a.name for a in node.names}
    return aliases


def chain_root(node: ast.Attribute):
    """The name an attribute chain starts from (``keras`` in ``keras.layers.Dense``), or None."""
    value = node.value
    while isinstance(value, ast.Attribute):
        value = value.value
    return value.id if isinstance(value, ast.Name) else None


def violations(path: Path, root: Path = ROOT) -> list[str]:
    """``path:line: what`` for each private reach in one file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    aliases = library_aliases(tree)
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where}: import {a.name}" for a in node.names if is_private_module(a.name)]
        elif isinstance(node, ast.ImportFrom) and is_private_module(node.module or ""):
            found.append(f"{where}: from {node.module} import ...")
        elif isinstance(node, ast.Attribute) and (
                node.attr in PRIVATE_ATTRIBUTES
                or (is_private_name(node.attr) and chain_root(node) in aliases)):
            found.append(f"{where}: .{node.attr}")
        elif isinstance(node, ast.ClassDef) and node.bases:
            found += [f"{where}: {node.name} overrides {item.name}" for item in node.body
                      if isinstance(item, ast.FunctionDef) and item.name in PRIVATE_HOOKS]
    return found


def test_the_scan_finds_each_kind_of_private_reach(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text(
        "import keras\nfrom keras_tuner.src import config\nimport tensorflow.python.ops\n"
        "nodes = layer._inbound_nodes\nhidden = keras.layers._private\n"
        "class Tuner(Base):\n    def _try_build(self, hp):\n        pass\n"
        "public = keras.layers.Dense\nmine = self._cache\noracle._retry_queue.append(t)\n")
    assert sorted(line.split(": ", 1)[1] for line in violations(source, tmp_path)) == [
        "._inbound_nodes", "._private", "._retry_queue", "Tuner overrides _try_build",
        "from keras_tuner.src import ...", "import tensorflow.python.ops"]


@pytest.mark.parametrize("folder", ["cnnkeras", "experiments", "tuning"])
def test_only_public_library_apis(folder):
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files, f"no Python files under {folder}/"
    found = [v for path in files for v in violations(path)]
    assert not found, "private library APIs:\n" + "\n".join(found)
