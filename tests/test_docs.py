"""The docs say what the code does and what the committed files hold: numbers taken from ``config`` and from the
committed comparison files (``results/bootstrap-*.json``) are checked here, so a change of either fails until the
prose follows. (The README's results block is generated from results/ and checked by tests/test_runs.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from craftlib import config, runs

ROOT = Path(__file__).resolve().parent.parent
#: The prose a learner or instructor reads (the README outside its generated results block).
DOCS = [ROOT / "README.md", ROOT / "docs" / "instructors.md", *sorted((ROOT / "solutions").glob("[0-9][0-9]_*.md"))]
NUMBER = r"\d{1,3}(?:,\d{3})+|\d+"


def _prose(path: Path) -> str:
    text = path.read_text()
    begin, end = runs.README_BEGIN, runs.README_END
    if begin in text and end in text:  # generated from results/ (tests/test_runs.py checks it)
        text = text.split(begin, 1)[0] + text.split(end, 1)[1]
    return text


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def _all_train_sentences() -> int:
    """Training sentences of the whole train split: the committed full runs trained on all of them."""
    return json.loads((ROOT / "results" / "single-minilm-full" / "metrics.json").read_text())["train_sentences"]


def test_the_quick_sentence_count_comes_from_config():
    quick = config.get_profile("quick").max_train_sentences
    found = 0
    for path in DOCS + [ROOT / "ARCHITECTURE.md"]:
        text = _prose(path)
        for m in re.finditer(rf"({NUMBER}) of the ({NUMBER}) training sentences", text):
            found += 1
            assert _int(m.group(1)) == quick, f"{path.name}: {m.group(0)!r}, config says quick uses {quick:,}"
            assert _int(m.group(2)) == _all_train_sentences(), f"{path.name}: {m.group(0)!r}"
        for m in re.finditer(rf"({NUMBER})[- ]sentence subset|same ({NUMBER}) (?:training )?sentences|"
                             rf"max_train_sentences`, ({NUMBER})", text):
            found += 1
            assert _int(next(g for g in m.groups() if g)) == quick, f"{path.name}: {m.group(0)!r} (config: {quick:,})"
    assert found >= 2  # README and the solutions name it
    assert f"{quick:,} of the {_all_train_sentences():,}" in config.PROFILES["quick"].description


def _bootstrap_differences() -> list[tuple[float, float, float]]:
    """(difference, low, high) of every committed comparison, both ways round ("a − b" and "b − a" are quoted)."""
    out = []
    for path in sorted((ROOT / "results").glob("bootstrap-*.json")):
        for d in json.loads(path.read_text())["differences"]:
            out += [(d["difference"], d["low"], d["high"]), (-d["difference"], -d["high"], -d["low"])]
    return out


TRIPLE = re.compile(r"([+−-]\d\.\d{3}),? \[([+−-]\d\.\d{3}), ([+−-]\d\.\d{3})\]")


def quoted_differences(text: str) -> list[tuple[str, tuple[float, float, float]]]:
    return [(m.group(0), tuple(float(x.replace("−", "-")) for x in m.groups())) for m in TRIPLE.finditer(text)]


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_quoted_bootstrap_differences_are_the_committed_ones(path):
    """Every "difference [low, high]" in the prose is one of results/bootstrap-*.json's, to its 3 printed decimals."""
    known = _bootstrap_differences()
    wrong = [text for text, q in quoted_differences(_prose(path))
             if not any(all(abs(a - b) <= 0.0005 + 1e-9 for a, b in zip(q, k)) for k in known)]
    assert wrong == [], f"{path.name}: not a difference of results/bootstrap-*.json: {wrong}"


def test_docs_say_what_the_profile_default_is():
    """Notebooks and solutions read CRAFTLIB_PROFILE through PROFILE = None; the guide says so."""
    guide = (ROOT / "docs" / "instructors.md").read_text()
    assert "PROFILE = None" in guide and "`quick` when it is unset" in guide
    assert 'default `"quick"`' not in guide
    for path in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.md")):
        assert re.search(r"^PROFILE = None\b", path.read_text(), re.MULTILINE), f"{path.name}: PROFILE = None"


def test_docs_name_the_label_all_subtokens_run_as_the_code_does():
    quick = config.get_profile("quick")
    plain = runs.run_name("single", "minilm", quick)
    allsub = runs.run_name("single", "minilm", quick, label_all_subtokens=True)
    suffix = allsub[len(plain):]
    for path in (ROOT / "docs" / "instructors.md", ROOT / "solutions" / "04_two_step_transfer.md"):
        text = path.read_text()
        assert f"`{suffix}`" in text, f"{path.name} must say that label_all_subtokens runs are named {suffix}"
        assert "does not change the run name" not in text


def test_notebook_07_quotes_the_committed_engine_benchmark():
    """Notebook 07's engine sentence carries the ratios of ``benchmarks/results/engines-quick.json``."""
    bench = json.loads((ROOT / "benchmarks" / "results" / "engines-quick.json").read_text())
    engines = {e["engine"]: e for e in bench["engines"]}
    nb = json.loads((ROOT / "notebooks" / "07_use_your_model.ipynb").read_text())
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert bench["command"].startswith("python benchmarks/bench_engines.py") and bench["hardware"]["cores"] >= 1
    m = re.search(r"int8 tagged ([\d.]+)× .*?torch fp32 \(bf16 autocast ([\d.]+)×, ONNX fp32 ([\d.]+)×\), at test F1 "
                  r"([+−-][\d.]+)", text, re.DOTALL)
    assert m, "notebook 07 no longer quotes the engine benchmark"
    assert float(m.group(1)) == engines["onnx-int8"]["speedup"]
    assert float(m.group(2)) == engines["torch-bf16"]["speedup"]
    assert float(m.group(3)) == engines["onnx"]["speedup"]
    assert float(m.group(4).replace("−", "-")) == engines["onnx-int8"]["f1_difference"]
    assert f"{bench['sentences']:,} test sentences" in text


def test_the_readme_quotes_the_committed_sharing_benchmark():
    """The README's "two trainings on one CPU" ratios are those of benchmarks/results/bench_share.json, measured
    complete (all four conditions)."""
    bench = json.loads((ROOT / "benchmarks" / "results" / "bench_share.json").read_text(encoding="utf-8"))
    assert bench["complete"] and bench["command"].startswith("python benchmarks/bench_share.py")
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    m = re.search(r"two at once took ([\d.]+) s each with the sizing \(([\d.]+)× alone\) and ([\d.]+) s each "
                  r"without it \(([\d.]+)× alone", text)
    assert m, "the README no longer quotes the sharing benchmark"
    sized, unsized = bench["conditions"]["two at once, sized"], bench["conditions"]["two at once, unsized"]
    assert float(m.group(1)) == sized["mean_train_seconds"]
    assert float(m.group(2)) == bench["ratios"]["sized: two at once / alone"]
    assert float(m.group(3)) == unsized["mean_train_seconds"]
    assert float(m.group(4)) == bench["ratios"]["unsized: two at once / alone"]
