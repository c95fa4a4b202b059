"""The import direction between craftlib's modules (ARCHITECTURE.md, "Stages and modules"), enforced.

Every module of ``craftlib/`` is parsed with ``ast``; every import it makes (at the top or inside a function, and
the command modules :mod:`craftlib.cli` loads with ``importlib``) must name a module of an *earlier* layer of
:data:`LAYERS`. So there is no import cycle and no backward import (scoring never imports training, no stage
imports the pictures or the command line), and a new module must be given its place here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "craftlib"

#: Modules in the order data flows through them; a module may import only modules of earlier layers.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("craftlib.errors",),
    ("craftlib.config",),
    ("craftlib.runtime",),
    ("craftlib.threads",),
    ("craftlib",),  # the package: re-exports config and runtime names
    ("craftlib.cache",),
    ("craftlib.session",),
    ("craftlib.bio",),
    ("craftlib.options",),
    ("craftlib.runs",),
    ("craftlib.corpus",),
    ("craftlib.tags",),
    ("craftlib.ontology",),
    ("craftlib.augment",),
    ("craftlib.evaluate",),
    ("craftlib.models",),
    ("craftlib.baseline",),
    ("craftlib.train",),
    ("craftlib.estimate",),
    ("craftlib.engines", "craftlib.linking", "craftlib.export"),
    ("craftlib.tagger",),
    ("craftlib.concepts",),
    ("craftlib.pipeline",),
    ("craftlib.viz",),
    ("craftlib.peers.extras",),
    ("craftlib.peers.crf", "craftlib.peers.spacy_ner"),
    ("craftlib.peers.report",),
    ("craftlib.peers.runner",),
    ("craftlib.peers",),
    ("craftlib.doctor", "craftlib.bundle"),
    ("craftlib.cli",),
    ("craftlib.__main__", "craftlib.peers.worker"),  # entry points (`python -m`), imported by nobody
)
RANK = {module: i for i, layer in enumerate(LAYERS) for module in layer}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def craftlib_imports(name: str) -> dict[str, int]:
    """``{imported craftlib module: first line}`` of one module: ``import``/``from`` statements anywhere in it
    (``from craftlib import config`` imports the module ``craftlib.config``; ``from craftlib import setup`` the
    package), ``importlib.import_module("craftlib....")`` calls and the ``COMMAND_MODULES`` of the CLI."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found: dict[str, int] = {}
    package = name if _is_package(name) else name.rpartition(".")[0]

    def add(module: str, line: int) -> None:
        if module == "craftlib" or module.startswith("craftlib."):
            found.setdefault(module, line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in MODULES else base, node.lineno)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    add(arg.value, node.lineno)
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "COMMAND_MODULES" for t in node.targets):
            for elt in getattr(node.value, "elts", []):
                if isinstance(elt, ast.Constant):
                    add(elt.value, node.lineno)
    found.pop(name, None)
    return found


def test_every_module_has_a_layer():
    unplaced = sorted(set(MODULES) - set(RANK))
    assert not unplaced, f"place these modules in tests/test_architecture.py LAYERS (and ARCHITECTURE.md): {unplaced}"
    assert not sorted(set(RANK) - set(MODULES)), "LAYERS names modules that do not exist"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_only_earlier_layers(name):
    backward = {m: line for m, line in craftlib_imports(name).items() if m not in RANK or RANK[m] >= RANK[name]}
    assert not backward, (
        f"{MODULES[name].relative_to(ROOT)} imports {', '.join(f'{m} (line {n})' for m, n in backward.items())}: "
        "a module may import only modules of earlier layers (see LAYERS here and ARCHITECTURE.md); move the shared "
        "code down into an earlier module instead")


def test_viz_is_a_leaf_and_scoring_imports_no_training():
    importers = sorted(n for n in MODULES if "craftlib.viz" in craftlib_imports(n))
    assert importers == [], f"nothing may import craftlib.viz (the pictures), but {importers} do"
    training = {"craftlib.models", "craftlib.baseline", "craftlib.train", "craftlib.pipeline"}
    assert not training & set(craftlib_imports("craftlib.evaluate"))


def test_the_checker_sees_function_level_and_backward_imports(tmp_path, monkeypatch):
    """The check cannot pass vacuously: a backward import hidden in a function is found."""
    fake = tmp_path / "craftlib" / "tags.py"
    fake.parent.mkdir()
    fake.write_text("def f():\n    from craftlib.train import train_recipe\n    from craftlib import viz\n")
    monkeypatch.setitem(MODULES, "craftlib.tags", fake)
    imports = craftlib_imports("craftlib.tags")
    assert set(imports) == {"craftlib.train", "craftlib.viz"}
    assert all(RANK[m] > RANK["craftlib.tags"] for m in imports)
