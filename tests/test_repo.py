"""Repository hygiene: environment files agree, notebooks follow the conventions, no corpus data committed."""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _makefile_var(name: str) -> str:
    m = re.search(rf"^{name}\s*\?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert m, f"Makefile has no {name} ?= ..."
    return m.group(1)


def test_environment_yml_matches_pyproject_and_makefile():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    assert Version(python.split("=", 1)[1]) in SpecifierSet(PYPROJECT["project"]["requires-python"])
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    # same torch pin as `make setup`, and it satisfies the package's own torch requirement
    torch_pin = next(p for p in pip if p.startswith("torch"))
    assert torch_pin == f"torch=={_makefile_var('TORCH')}"
    torch_req = next(Requirement(r) for r in PYPROJECT["project"]["dependencies"] if r.startswith("torch"))
    assert Version(_makefile_var("TORCH")) in torch_req.specifier
    # installs this package with the same extras as `make setup`
    editable = next(p for p in pip if p.startswith("-e"))
    extras = set(re.search(r"\[(.*)\]", editable).group(1).split(","))
    make_extras = set(re.search(r'-e "\.\[(.*)\]"', (ROOT / "Makefile").read_text()).group(1).split(","))
    assert extras == make_extras
    assert extras <= set(PYPROJECT["project"]["optional-dependencies"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_conventions(path: Path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "strip outputs"
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    tree = ast.parse("".join(tagged[0]["source"]))
    for stmt in tree.body:  # literals only: papermill injects values *after* this cell
        assert isinstance(stmt, (ast.Assign, ast.AnnAssign)), ast.dump(stmt)
        ast.literal_eval(stmt.value)
    names = {t.id for s in tree.body for t in (s.targets if isinstance(s, ast.Assign) else [s.target])}
    assert {"PROFILE", "SEED"} <= names
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown").lower()
    for heading in ("what you will learn", "your turn", "summary", "smoke", "quick", "full"):
        assert heading in text, f"{path.name}: missing '{heading}'"
    sources = "\n".join("".join(c["source"]) for c in code)
    assert "craftlib.setup(" in sources
    assert "import *" not in sources


def test_notebooks_are_numbered_in_order():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(1, len(numbers) + 1))
    readme = (ROOT / "README.md").read_text()
    for p in NOTEBOOKS:
        assert p.name in readme, f"README does not list {p.name}"


def test_no_corpus_or_ontology_data_committed():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    data_like = re.compile(r"\.(conllu|knowtator\.xml|obo|obo\.gz|obo\.zip|tar\.gz|safetensors|bin|arrow)$")
    offenders = [f for f in files if data_like.search(f) and not f.startswith("tests/fixtures/")]
    assert offenders == []


#: Every command of ``python -m craftlib`` (README and the notebooks name them): removing one fails the test below.
COMMANDS = {"doctor", "data", "gene-rules", "entity-lists", "augment", "baseline", "train", "predict", "evaluate",
            "compare", "results", "publish", "benchmark", "bundle", "export-onnx", "concepts"}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_cli_lists_every_command():
    """The parser's sub-commands (not substrings of the help text): each known command is there, runs a function,
    and ``--help`` lists every one of them."""
    from craftlib.cli import build_parser

    commands = _subcommands(build_parser())
    assert COMMANDS <= set(commands), f"missing commands: {sorted(COMMANDS - set(commands))}"
    assert all(callable(p.get_default("func")) for p in commands.values())
    out = subprocess.run([sys.executable, "-m", "craftlib", "--help"], capture_output=True, text=True, check=True)
    shown = set(re.findall(r"^ {4}(\S+)", out.stdout, re.MULTILINE))
    assert set(commands) <= shown, f"--help does not list {sorted(set(commands) - shown)}"


def test_import_has_no_heavy_side_effects():
    code = "import sys, craftlib, craftlib.cli; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_readme_results_block_is_generated_from_committed_metrics():
    """The README's results table is the output of `python -m craftlib results` on results/: no typed numbers."""
    from craftlib.runs import README_BEGIN, README_END, results_markdown

    readme = (ROOT / "README.md").read_text()
    block = readme.split(README_BEGIN, 1)[1].split(README_END, 1)[0]
    assert block == "\n" + results_markdown(ROOT / "results"), (
        "README results block is stale: run `python -m craftlib results --readme README.md --results-dir results`")


def _lock_pins() -> dict[str, list[tuple[str, str]]]:
    """``{normalized name: [(version, marker), ...]}`` of requirements/lock.txt."""
    from packaging.utils import canonicalize_name

    pins: dict[str, list[tuple[str, str]]] = {}
    for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines():
        if not line or line.startswith((" ", "#", "-")):
            continue
        req = Requirement(line)
        (version,) = [s.version for s in req.specifier if s.operator == "=="]
        pins.setdefault(canonicalize_name(req.name), []).append((version, str(req.marker or "")))
    return pins


def test_lock_file_pins_every_direct_dependency():
    """`make lock` output is in step with pyproject (deps + the extras `make setup` installs) and the Makefile."""
    from packaging.utils import canonicalize_name

    lock = (ROOT / "requirements" / "lock.txt").read_text()
    assert lock.startswith("# This file was autogenerated by uv via the following command:\n#    uv pip compile")
    pins = _lock_pins()
    extras = re.search(r'-e "\.\[(.*)\]"', (ROOT / "Makefile").read_text()).group(1).split(",")
    direct = list(PYPROJECT["project"]["dependencies"])
    for extra in extras:
        direct += PYPROJECT["project"]["optional-dependencies"][extra]
    stale = []
    for spec in map(Requirement, direct):
        found = pins.get(canonicalize_name(spec.name))
        if not found or not all(Version(v) in spec.specifier for v, _ in found):
            stale.append(f"{spec} (lock: {found})")
    assert stale == [], f"requirements/lock.txt is stale, run `make lock`: {stale}"
    # torch: the Makefile's pin, environment.yml's pin, and the metadata uv resolved it with
    torch = _makefile_var("TORCH")
    assert pins["torch"] == [(torch, "")]
    assert f'version = "{torch}"' in (ROOT / "requirements" / "uv.toml").read_text()
    assert f"torch=={torch}" in (ROOT / "requirements" / "torch.in").read_text().split()
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert f"torch=={torch}" in pip
    assert "--python-version 3.11" in lock.splitlines()[1]  # the lock covers every Python pyproject allows
    assert Version("3.11.4") in SpecifierSet(PYPROJECT["project"]["requires-python"])


def test_binder_uses_the_lock_file():
    reqs = (ROOT / "binder" / "requirements.txt").read_text().split()
    assert "../requirements/lock.txt" in reqs
    assert "pip install --no-deps -e ." in (ROOT / "binder" / "postBuild").read_text()


def test_package_data_ships_the_templates():
    """Files craftlib reads at run time (the model card template) are package data, so an installed wheel has them."""
    from fnmatch import fnmatch

    globs = PYPROJECT["tool"]["setuptools"]["package-data"]["craftlib"]
    files = [p.relative_to(ROOT / "craftlib").as_posix() for p in (ROOT / "craftlib" / "templates").rglob("*")
             if p.is_file()]
    assert files and all(any(fnmatch(f, g) for g in globs) for f in files), (files, globs)


def _nbstripout_args() -> list[str]:
    m = re.search(r"^NBSTRIPOUT_ARGS\s*:?=\s*(.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert m, "Makefile has no NBSTRIPOUT_ARGS"
    return m.group(1).split()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebooks_are_what_the_git_filter_writes(path: Path):
    """Else the filter (make git-filter) would show a notebook modified as soon as JupyterLab saves it."""
    assert "*.ipynb filter=nbstripout" in (ROOT / ".gitattributes").read_text().splitlines()
    done = subprocess.run([sys.executable, "-m", "nbstripout", *_nbstripout_args(), "--textconv", str(path)],
                          capture_output=True, text=True, check=True)
    assert done.stdout == path.read_text(), f"{path.name}: run `python -m nbstripout {' '.join(_nbstripout_args())} {path}`"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args], cwd=repo,
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(shutil.which("git") is None or shutil.which("make") is None, reason="needs git and make")
def test_make_git_filter_keeps_the_checkout_clean_after_a_run(tmp_path):
    """A notebook saved with outputs, execution counts and another Python version: `git diff` is empty and `git add`
    stages nothing once `make git-filter` has registered the filter; without it (the control) both see the outputs."""
    import nbformat

    for with_filter in (True, False):
        repo = tmp_path / f"repo-{with_filter}"
        (repo / "notebooks").mkdir(parents=True)
        for name in ("Makefile", ".gitattributes", ".gitignore"):
            shutil.copy(ROOT / name, repo / name)
        shutil.copy(NOTEBOOKS[0], repo / "notebooks" / NOTEBOOKS[0].name)
        _git(repo, "init", "-q")
        if with_filter:
            subprocess.run(["make", "git-filter", f"PYTHON={sys.executable}"], cwd=repo, check=True,
                           capture_output=True)
        _git(repo, "add", "-A")
        _git(repo, "commit", "-qm", "start")
        path = repo / "notebooks" / NOTEBOOKS[0].name
        nb = nbformat.read(path, as_version=4)
        code = next(c for c in nb.cells if c.cell_type == "code")
        code.execution_count = 3
        code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="profile=smoke\n")]
        nb.metadata["language_info"]["version"] = "3.99.0"
        nbformat.write(nb, path)
        # git status alone is not the check: git reports a file whose size changed as modified before it applies
        # the filter (a known limit of clean filters); `git diff` and what `git add` would stage are the content
        diff = _git(repo, "diff")
        _git(repo, "add", "-u")
        staged = _git(repo, "diff", "--cached", "--name-only")
        if with_filter:
            assert diff == "" and staged == "", (diff, staged)
            assert _git(repo, "status", "--porcelain") == ""  # once the index knows the file again
            assert "profile=smoke" in path.read_text()  # the learner's file keeps its outputs
        else:
            assert staged.strip() == f"notebooks/{NOTEBOOKS[0].name}" and "profile=smoke" in diff


@pytest.mark.skipif(shutil.which("git") is None or shutil.which("make") is None, reason="needs git and make")
def test_the_lab_servers_save_hook_leaves_git_status_clean(tmp_path):
    """`make lab`'s server settings (jupyter_server_config.py): after a save, git status no longer lists a notebook
    whose only change is its outputs (git alone does, until `git add`); a real edit stays listed, nothing is staged."""
    import runpy

    import nbformat
    from traitlets.config import Config

    settings = runpy.run_path(str(ROOT / "jupyter_server_config.py"), init_globals={"get_config": Config})
    hook = settings["refresh_git_index"]
    assert settings["c"].FileContentsManager.post_save_hook is hook
    assert '--config="$(CURDIR)/jupyter_server_config.py"' in (ROOT / "Makefile").read_text()
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    for name in ("Makefile", ".gitattributes", ".gitignore"):
        shutil.copy(ROOT / name, repo / name)
    path = repo / "notebooks" / NOTEBOOKS[0].name
    shutil.copy(NOTEBOOKS[0], path)
    _git(repo, "init", "-q")
    subprocess.run(["make", "git-filter", f"PYTHON={sys.executable}"], cwd=repo, check=True, capture_output=True)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "start")
    nb = nbformat.read(path, as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.execution_count = 3
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="profile=smoke\n")]
    nbformat.write(nb, path)
    assert _git(repo, "status", "--porcelain").strip() == f"M notebooks/{path.name}"  # git's size shortcut
    hook(model={"type": "notebook"}, os_path=str(path), contents_manager=None)
    assert _git(repo, "status", "--porcelain") == ""
    assert "profile=smoke" in path.read_text()  # the learner's file keeps its outputs
    code.source += "\nprint('my change')"  # a real edit: listed, and still not staged
    nbformat.write(nb, path)
    hook(model={"type": "notebook"}, os_path=str(path), contents_manager=None)
    assert _git(repo, "status", "--porcelain").strip() == f"M notebooks/{path.name}"
    assert _git(repo, "diff", "--cached", "--name-only") == ""
    hook(model={"type": "file"}, os_path=str(repo / "Makefile"))  # other files, folders outside git: nothing
    hook(model={"type": "notebook"}, os_path=str(tmp_path / "elsewhere.ipynb"))


#: Folders of the machines runs were made on: a committed record naming one does not travel.
_MACHINE_PATH = re.compile(r"(?<![\w.])/(work|tmp|root|home)/")


def test_committed_records_name_no_folder_of_a_machine():
    """Results, benchmarks, docs, notebooks and solutions quote commands others must be able to run: no absolute
    path of the machine a run was made on (``/work/...``, ``/tmp/...``, a home folder)."""
    import subprocess

    files = subprocess.run(["git", "ls-files", "README.md", "results", "benchmarks/results", "docs", "data",
                            "notebooks", "solutions"], cwd=ROOT, capture_output=True, text=True, check=True)
    bad = []
    for name in files.stdout.split():
        path = ROOT / name
        if path.suffix in (".png", ".gz", ".zip") or not path.is_file():
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if _MACHINE_PATH.search(line):
                bad.append(f"{name}:{n}: {line.strip()[:120]}")
    assert not bad, "machine paths in committed files:\n" + "\n".join(bad)
