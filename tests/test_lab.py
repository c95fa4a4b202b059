"""The learner's JupyterLab path, without a browser: plots survive training, the profile setting reaches the
notebooks, short training logs, quiet expected messages, runs written outside the committed results."""

from __future__ import annotations

import ast
import json
import logging
import re
import subprocess
from pathlib import Path

import pytest

from craftlib import config, corpus, models, progress, runs, train, viz
from craftlib.errors import CraftlibError
from tests.test_train import _synthetic, tiny_model_dir  # noqa: F401  (module fixture reused)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture
def pdf_backend():
    """A backend that is not Agg, standing in for a notebook's inline backend; restored afterwards."""
    import matplotlib
    import matplotlib.pyplot as plt

    before = matplotlib.get_backend()
    plt.close("all")
    matplotlib.use("pdf")
    yield "pdf"
    plt.close("all")
    matplotlib.use(before)


def _log_csv(path: Path) -> Path:
    rows = [{"step_name": "step1", "epoch": 0.5, "step": 2, "loss": 2.0},
            {"step_name": "step1", "epoch": 1.0, "step": 4, "loss": 1.5},
            {"step_name": "step1", "epoch": 1.0, "step": 4, "eval_loss": 1.4, "eval_f1": 0.2}]
    import pandas as pd

    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_learning_curve_file_keeps_the_callers_backend_and_figures(tmp_path, pdf_backend):
    import matplotlib
    import matplotlib.pyplot as plt

    open_before = plt.get_fignums()
    viz.save_learning_curve(_log_csv(tmp_path / "log.csv"), tmp_path / "curve.png", "run")
    assert matplotlib.get_backend() == pdf_backend  # was switched to Agg: later plt.show() were silent
    assert plt.get_fignums() == open_before  # drawn on a bare Figure, nothing left in pyplot
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_learning_curve_draws_on_a_given_axes_or_a_new_pyplot_figure(tmp_path, pdf_backend):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    assert viz.plot_learning_curve(_log_csv(tmp_path / "log.csv"), ax=ax) is ax
    assert plt.get_fignums() == []
    ax = viz.plot_learning_curve(tmp_path / "log.csv", title="interactive")
    assert plt.get_fignums() == [ax.figure.number]  # without ax: a pyplot figure, shown like any other


def test_smoke_training_keeps_the_backend_and_logs_short_lines(tiny_model_dir, tmp_path, monkeypatch,  # noqa: F811
                                                                 pdf_backend, capsys):
    import matplotlib

    prof = config.get_profile("smoke", max_steps=4, learning_rate=3e-3, max_length=16, window_stride=4)
    monkeypatch.setattr(train, "load_recipe_data", lambda kind, spec: {
        "train": _synthetic(24), "validation": _synthetic(8, seed=1), "test": _synthetic(8, seed=2)})
    out = train.train_recipe(train.run_spec("single", prof, base_model=str(tiny_model_dir), models_dir=tmp_path), progress=False)
    assert (out / "learning_curve.png").is_file()
    assert matplotlib.get_backend() == pdf_backend
    captured = capsys.readouterr()
    lines = [x for x in captured.out.splitlines() if x.strip()]
    assert any(re.search(r"epoch \d\.\d\d \(step 4/4\): dev F1 \d\.\d{3}, dev loss \d", x) for x in lines), lines
    assert not [x for x in lines if "{" in x or "'loss'" in x], lines  # no raw dicts of numbers
    assert "training:" not in captured.err and "dev evaluation" not in captured.err  # progress=False: no bars


def test_progress_bars_in_a_live_frontend_only(monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    assert progress.live_progress() is False  # CI log, papermill's kernel: no bars


def test_every_notebook_leaves_the_profile_to_the_host(monkeypatch):
    """``PROFILE = None`` in every parameters cell; None resolves to CRAFTLIB_PROFILE (papermill -p still wins: it
    injects its values after this cell)."""
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
        values = {t.id: ast.literal_eval(s.value) for s in ast.parse("".join(cell["source"])).body
                  for t in s.targets}
        assert values["PROFILE"] is None, path.name
        setup = "".join(next(c for c in nb["cells"] if c["cell_type"] == "code" and "craftlib.setup(" in
                             "".join(c["source"]))["source"])
        assert "get_profile(PROFILE)" in setup or "data_spec(PROFILE" in setup, (
            f"{path.name}: derive names from the resolved profile (config.get_profile or config.data_spec)")
    monkeypatch.setenv("CRAFTLIB_PROFILE", "smoke")
    assert config.get_profile(None).name == "smoke"
    assert config.get_profile("full").name == "full"
    monkeypatch.delenv("CRAFTLIB_PROFILE")
    assert config.get_profile(None).name == "quick"
    monkeypatch.setenv("CRAFTLIB_PROFILE", "fast")
    with pytest.raises(ValueError, match="smoke, quick, full"):
        config.get_profile(None)


def test_kernelspec_is_stored_as_jupyterlab_writes_it():
    """Opening a notebook must not mark it modified: JupyterLab rewrites kernelspec and language_info from the
    kernel. Only language_info's Python version may differ (it is the learner's own Python)."""
    from ipykernel.ipkernel import IPythonKernel
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    for path in NOTEBOOKS:
        meta = json.loads(path.read_text())["metadata"]
        assert meta["kernelspec"] == {"display_name": spec.display_name, "language": spec.language,
                                      "name": "python3"}, path.name
        info = dict(IPythonKernel.language_info)
        assert {k: v for k, v in meta["language_info"].items() if k != "version"} == \
               {k: v for k, v in info.items() if k != "version"}, path.name


def _report(rows: list[tuple[str, str]]) -> str:
    body = "\n".join(f"{k:<20}| {s:<11}|" for k, s in rows)
    return f"BertForTokenClassification LOAD REPORT from: x\nKey                 | Status     |\n----\n{body}\n\nNotes: ..."


def test_expected_load_report_is_hidden_and_others_shown():
    from transformers.utils import logging as hf_logging

    target = hf_logging.get_logger("transformers.modeling_utils")
    filters, bars = list(target.filters), hf_logging.is_progress_bar_enabled()
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    handler = Keep()
    target.addHandler(handler)
    try:
        with models.expected_load_report() as report:
            assert not hf_logging.is_progress_bar_enabled()
            target.warning(_report([("pooler.dense.bias", "UNEXPECTED"), ("classifier.weight", "MISSING")]))
            target.warning(_report([("bert.encoder.layer.0.attention", "MISSING"), ("classifier.bias", "MISSING")]))
            target.warning("another warning")
        assert report.new_head
        assert len(seen) == 2 and "bert.encoder" in seen[0] and seen[1] == "another warning"
    finally:
        target.removeHandler(handler)
    assert list(target.filters) == filters and hf_logging.is_progress_bar_enabled() == bars  # restored


def test_unverified_archive_is_said_calmly(tmp_path):
    assert "in place" in corpus.checksum_status(tmp_path)
    (tmp_path / corpus.MARKER).write_text(json.dumps({"sha256": None}))
    text = corpus.checksum_status(tmp_path)
    assert "CRAFT_SHA256" in text and "--sha256" in text and "sha256=" in text
    (tmp_path / corpus.MARKER).write_text(json.dumps({"sha256": "ab" * 32}))
    assert "matched" in corpus.checksum_status(tmp_path)


def test_runs_write_outside_the_committed_results(monkeypatch):
    monkeypatch.delenv("CRAFTLIB_RESULTS_DIR", raising=False)
    assert config.results_dir() == ROOT / "runs" and config.published_dir() == ROOT / "results"
    for path in ("runs/two_step_transfer-smoke/summary.json", "models/x/metrics.json"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], check=False, cwd=ROOT)
        assert ignored.returncode == 0, f"{path} must be git-ignored"


def test_publish_copies_only_what_may_be_committed(tmp_path):
    models_dir, outputs, dest = tmp_path / "models", tmp_path / "runs", tmp_path / "results"
    run = models_dir / "two-step-minilm-quick"
    run.mkdir(parents=True)
    for name in ("metrics.json", "README.md", "training_log.csv", "learning_curve.png", "model.safetensors",
                 "predictions_test.jsonl"):
        (run / name).write_text("{}")
    (outputs / "error_analysis-quick").mkdir(parents=True)
    for name in ("f1_per_type.png", "summary.json", "errors-two-step-minilm-quick.csv"):
        (outputs / "error_analysis-quick" / name).write_text("x")
    (outputs / "peers-quick.json").write_text("{}")
    (outputs / "peers-quick.md").write_text("#")
    written = runs.publish(["two-step-minilm-quick", "error_analysis-quick", "peers-quick"],
                           models_dir, outputs, dest)
    assert sorted(p.name for p in (dest / "two-step-minilm-quick").iterdir()) == sorted(runs.PUBLISHED_RUN_FILES)
    assert [p.name for p in (dest / "error_analysis-quick").iterdir()] == ["f1_per_type.png"]  # nothing quoting CRAFT
    assert {p.name for p in written} >= {"peers-quick.json", "peers-quick.md"}
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]  # no temporary folder left
    with pytest.raises(CraftlibError, match="Nothing to publish"):
        runs.publish(["no-such-run"], models_dir, outputs, dest)

