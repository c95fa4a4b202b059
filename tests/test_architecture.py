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
    ("craftlib.gene_rules",),  # reports only: imported by the command line alone
    ("craftlib.ontology",),
    ("craftlib.augment", "craftlib.linking"),
    ("craftlib.stages",),
    ("craftlib.evaluate",),
    ("craftlib.models",),
    ("craftlib.viz",),
    ("craftlib.windows", "craftlib.progress"),
    ("craftlib.baseline", "craftlib.adapt"),
    ("craftlib.train",),
    ("craftlib.estimate",),
    ("craftlib.engines", "craftlib.export"),
    ("craftlib.tagger",),
    ("craftlib.concepts",),
    ("craftlib.pipeline",),
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


def test_viz_imports_no_stage_and_scoring_imports_no_training():
    importers = sorted(n for n in MODULES if "craftlib.viz" in craftlib_imports(n))
    assert importers == ["craftlib.train"], f"only training (its learning curve) may import craftlib.viz: {importers}"
    assert set(craftlib_imports("craftlib.viz")) <= {"craftlib.bio", "craftlib.config", "craftlib.runtime"}
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


#: Functions allowed more than :data:`MAX_PARAMETERS` parameters: none since issue 20's port (``run_benchmark``,
#: ``run_checks`` and ``make_bundle`` take a ``DataSpec`` and, for the bundle, a ``Wheels`` spec). Keep it empty.
TOO_MANY_PARAMETERS: set[tuple[str, str]] = set()
MAX_PARAMETERS = 8


def _parameter_counts():
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                params = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")]
                yield name, node.name, len(params)


def test_no_function_takes_more_than_eight_parameters():
    """Settings travel as one spec (config.DataSpec, train.RunSpec), not as loose parameters."""
    over = {(m, f) for m, f, n in _parameter_counts() if n > MAX_PARAMETERS}
    assert over <= TOO_MANY_PARAMETERS, f"more than {MAX_PARAMETERS} parameters: {sorted(over - TOO_MANY_PARAMETERS)}"
    assert over == TOO_MANY_PARAMETERS, f"cut: remove {sorted(TOO_MANY_PARAMETERS - over)} from TOO_MANY_PARAMETERS"


def _hand_parsed_metrics(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()
            if "metrics.json" in line and any(k in line for k in ("read_text", "json.load", "open("))]


def test_only_the_run_object_opens_metrics_json():
    """metrics.json is read and written through craftlib.runs (Run, read_metrics, write_metrics) only: in the package,
    the notebooks, the solutions and the benchmarks."""
    import json

    found = {name: _hand_parsed_metrics(path.read_text(encoding="utf-8"))
             for name, path in MODULES.items() if name != "craftlib.runs"}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        found[nb.name] = _hand_parsed_metrics("\n".join("".join(c["source"]) for c in cells
                                                        if c["cell_type"] == "code"))
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        found[f"benchmarks/{script.name}"] = _hand_parsed_metrics(script.read_text(encoding="utf-8"))
    for solution in sorted((ROOT / "solutions").glob("*.md")):
        found[f"solutions/{solution.name}"] = _hand_parsed_metrics(solution.read_text(encoding="utf-8"))
    assert not {k: v for k, v in found.items() if v}
    assert _hand_parsed_metrics('m = json.loads((d / "metrics.json").read_text())')  # the check can fail


def test_no_alias_kept_for_an_old_name():
    """No module-level ``old = new`` alias of a function, and tags does not hand on bio's functions."""
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        aliases = [t.id for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Name)
                   and n.value.id in defined for t in n.targets if isinstance(t, ast.Name)]
        assert not aliases, f"{name}: aliases {aliases}"
    from craftlib import tags

    assert not {"bio_spans", "bio_entities", "spans_to_bio", "validate_iob2"} & set(tags.__all__)


def _train_calls(source: str) -> set[str]:
    """Names called as ``train.<name>(...)`` in ``source``, and ``Trainer``/``.train()`` calls as ``"Trainer"``."""
    calls = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "train":
                calls.add(f.attr)
            if (isinstance(f, ast.Name) and f.id.endswith("Trainer")) or (
                    isinstance(f, ast.Attribute) and (f.attr.endswith("Trainer") or f.attr == "train")):
                calls.add("Trainer")
    return calls


def _notebook_step_cells(path: Path) -> list[set[str]]:
    """The ``train.*`` calls of each code cell of a notebook that trains a model by hand (calls ``fine_tune`` or a
    ``Trainer``)."""
    import json

    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    calls = [_train_calls("".join(c["source"])) for c in cells if c["cell_type"] == "code"
             and not "".join(c["source"]).lstrip().startswith(("%", "!"))]
    return [c for c in calls if {"fine_tune", "Trainer"} & c]


def _called_in(function: str, module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    return {c.func.id for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}


def test_notebook_04_shows_the_step_the_recipes_run():
    """Notebook 04's visible two-step trains with train.fine_tune on train.load_recipe_data, the very functions
    train.train_recipe calls for every recipe (the committed numbers), never a Trainer of its own."""
    from craftlib import train

    steps = _notebook_step_cells(ROOT / "notebooks" / "04_two_step_transfer.ipynb")
    assert len(steps) == 1, f"one visible two-step cell, found {len(steps)}"
    assert {"fine_tune", "load_recipe_data", "TrainOptions"} <= steps[0] and "Trainer" not in steps[0]
    # train_recipe returns a reused run as it is, else its _train runs the steps
    assert "_train" in _called_in("train_recipe", "craftlib.train")
    assert {"fine_tune", "load_recipe_data"} <= _called_in("_train", "craftlib.train")
    assert train.fine_tune.__module__ == "craftlib.train"  # defined there, not a copy imported from elsewhere
    # the check can fail: a cell with its own Trainer is seen
    assert "Trainer" in _train_calls("trainer = Trainer(model=model)\ntrainer.train()")


#: Modules whose craftlib imports may sit inside functions: the benchmark worker, whose imports are what it measures.
LATE_IMPORTS_ALLOWED = {"craftlib.peers.worker"}


def _function_level_craftlib_imports(tree: ast.AST) -> list[int]:
    lines = []
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
                if any(n == "craftlib" or n.startswith("craftlib.") for n in names):
                    lines.append(node.lineno)
    return sorted(set(lines))


def test_craftlib_imports_sit_at_the_top():
    """No hidden wiring: a module's craftlib imports are at its top (only heavy optional dependencies such as
    torch are imported inside the function that uses them, ARCHITECTURE.md's rules)."""
    late = {name: lines for name, path in MODULES.items() if name not in LATE_IMPORTS_ALLOWED
            and (lines := _function_level_craftlib_imports(ast.parse(path.read_text(encoding="utf-8"))))}
    assert not late, f"craftlib imports inside functions (move them to the top): {late}"
    assert _function_level_craftlib_imports(ast.parse("def f():\n    from craftlib import corpus\n")) == [2]


def test_architecture_md_names_every_module_and_stage():
    """ARCHITECTURE.md's module table has a row for every module of craftlib/ (peers/ as one), and its stage table
    a row for every stage of craftlib.stages.STAGES."""
    from craftlib import stages

    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip().strip("`") for line in text.splitlines() if line.startswith("| `")}
    files = {f"{name.split('.')[-1]}.py" if not name.startswith("craftlib.peers") else "peers/"
             for name in MODULES if name not in ("craftlib", "craftlib.__main__")}
    assert not files - rows, f"ARCHITECTURE.md's module table lacks {sorted(files - rows)}"
    assert not set(stages.STAGES) - rows, f"ARCHITECTURE.md's stage table lacks {sorted(set(stages.STAGES) - rows)}"
