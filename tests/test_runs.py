"""craftlib.runs: one home for run names, commands and the files every system writes."""

from __future__ import annotations

import json

import pytest

from craftlib import config, runs
from craftlib.errors import CraftlibError, RunError


def test_run_names_of_every_system():
    assert runs.system_run_name("dictionary", "quick") == "dictionary-quick"
    # a name says how a run differs from the reference recipe: the defaults add case markers and Viterbi
    assert runs.system_run_name("two-step", "quick") == "two-step-minilm-quick-drop0-case-viterbi"
    reference = config.get_profile("quick", **config.REFERENCE_SETTINGS)
    assert runs.system_run_name("two-step", reference) == "two-step-minilm-quick"
    assert runs.system_run_name("single", "smoke", seed=7, annotation_set="extensions") == \
        "single-minilm-smoke-case-viterbi-extensions-seed7"
    assert runs.system_run_name("single", config.get_profile("quick", epochs=2)) == "single-minilm-quick-ep2-drop0-case-viterbi"
    assert runs.system_run_name("single", config.get_profile("quick", epochs=2, **config.REFERENCE_SETTINGS)) \
        == "single-minilm-quick-ep2"
    assert runs.system_run_name("two-step", config.get_profile("quick", decode="argmax")) == "two-step-minilm-quick-drop0-case"
    assert runs.system_run_name("two-step", config.get_profile("quick", case_markers=False)) == \
        "two-step-minilm-quick-drop0-viterbi"
    assert runs.system_run_name("crf", "quick") == "crf-quick"
    assert runs.system_run_name("spacy", "smoke", seed=1, annotation_set="extensions") == "spacy-smoke-extensions-seed1"
    with pytest.raises(CraftlibError, match="Unknown system"):
        runs.system_run_name("crf++", "quick")


def test_commands_of_every_system():
    assert runs.build_command("dictionary", "smoke") == "python -m craftlib baseline --profile smoke"
    assert runs.build_command("two-step", "quick").startswith(
        "python -m craftlib train --recipe two-step --profile quick --base-model minilm --seed 42")
    assert runs.build_command("crf", "quick", seed=3) == "python -m craftlib benchmark --profile quick --systems crf --seed 3"
    cmd = runs.baseline_command("smoke", "extensions", data_dir="my data", sources={"Cell": ["cl.obo"], "Gene": []})
    assert cmd == ("python -m craftlib baseline --profile smoke --annotation-set extensions --data-dir 'my data' "
                   "--obo Cell=cl.obo --obo Gene=")


def test_the_baseline_command_line_does_not_capture_sys_argv(monkeypatch):
    """The parser is built once (e.g. by a notebook or a test) and used later: the recorded command must come from
    the parsed arguments, not from whatever sys.argv was when the parser was built."""
    from craftlib.cli import build_parser

    monkeypatch.setattr("sys.argv", ["pytest", "--something-else"])
    args = build_parser().parse_args(["baseline", "--profile", "smoke"])
    assert not hasattr(args, "argv")


def test_predictions_round_trip_and_metrics_core(tmp_path):
    records = [{"doc_id": "d1", "sentence_id": 3, "tokens": ["Pax6", "é"], "gold": ["B-Gene", "O"],
                "pred": ["B-Protein", "O"], "extra": "not written"}]
    path = runs.write_predictions(runs.predictions_path(tmp_path / "run", "test"), records)
    assert path == tmp_path / "run" / "predictions_test.jsonl"
    back = runs.read_predictions(path)
    assert back == [{k: v for k, v in records[0].items() if k != "extra"}]
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["predictions_test.jsonl"]  # no temporary file left
    core = runs.metrics_core("dictionary-smoke", "dictionary", "smoke", 42, "craft-proper-smoke")
    assert tuple(core) == runs.METRICS_CORE and core["profile"] == "smoke" and core["base_model"] is None
    runs.write_metrics(tmp_path / "run", {**core, "test": {"f1": 0.5}})
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["run"] == "dictionary-smoke"
    with pytest.raises(RunError, match="core keys"):
        runs.write_metrics(tmp_path / "run", {"run": "x"})


def test_save_json_converts_numpy_scalars(tmp_path):
    import numpy as np

    out = runs.save_json({"f1": np.float64(0.25), "n": np.int64(3)}, tmp_path / "a" / "s.json")
    assert json.loads(out.read_text()) == {"f1": 0.25, "n": 3}


def test_every_system_cuts_the_data_the_same_way():
    """``tags.profile_splits`` is the one place the profile's sentence limits are applied (training, benchmark)."""
    from datasets import Dataset

    from craftlib import tags
    from craftlib.peers.runner import prepare_sentences, to_records

    def split(n, doc):
        return Dataset.from_dict({"tokens": [["w"]] * n, "ner_tags": [[0]] * n, "doc_id": [doc] * n,
                                  "sentence_id": list(range(n))})

    data = {"train": split(30, "t"), "validation": split(12, "v"), "test": split(12, "x")}
    prof = config.get_profile("smoke", max_train_sentences=10, max_eval_sentences=5)
    cut = tags.profile_splits(data, prof, seed=1)
    assert [len(cut[s]) for s in ("train", "validation", "test")] == [10, 5, 5]
    assert cut["validation"]["sentence_id"] == list(range(5))
    assert cut["train"]["sentence_id"] == tags.train_subset(data["train"], 10, 1)["sentence_id"] != list(range(10))
    assert prepare_sentences(data, prof, 1) == {s: to_records(rows) for s, rows in cut.items()}


def test_label_all_subtokens_gets_its_own_run_name():
    from craftlib import runs

    assert runs.run_name("single", "minilm", "quick") == "single-minilm-quick-drop0-case-viterbi"
    assert runs.run_name("single", "minilm", "quick", label_all_subtokens=True) == \
        "single-minilm-quick-drop0-case-viterbi-allsub"


def test_recorded_train_commands_name_no_folder_of_the_machine(tmp_path, monkeypatch):
    """A command written into metrics.json and committed must run on another machine: the settings' own folders
    are left out, folders inside the checkout become relative, only a folder elsewhere is kept as given."""
    monkeypatch.delenv("CRAFTLIB_DATA_DIR", raising=False)
    monkeypatch.delenv("CRAFTLIB_MODELS_DIR", raising=False)
    prof = config.get_profile("quick")
    plain = runs.train_command("single", prof, "minilm", 42, "proper")
    assert runs.train_command("single", prof, "minilm", 42, "proper", config.data_dir(), config.models_dir()) == plain
    root = config._repo_root()
    if root is not None:
        inside = runs.train_command("single", prof, "minilm", 42, "proper", root / "scratch" / "data")
        assert inside == plain + " --data-dir scratch/data" and str(root) not in inside
    assert runs.train_command("single", prof, "minilm", 42, "proper", None, tmp_path).endswith(
        f"--models-dir {tmp_path}")
    assert runs.train_command("single", config.get_profile("quick", replace_prob=0.0), "minilm", 1, "proper") == (
        "python -m craftlib train --recipe single --profile quick --base-model minilm --seed 1 --replace-prob 0")
    assert runs.run_name("two-step", "minilm", config.get_profile("quick", replace_prob=0.0), seed=2) == \
        "two-step-minilm-quick-p0-drop0-case-viterbi-seed2"
    reference = config.get_profile("quick", **config.REFERENCE_SETTINGS)
    assert runs.train_command("two-step", reference, "minilm", 42, "proper") == (
        "python -m craftlib train --recipe two-step --profile quick --base-model minilm --seed 42 --no-case-markers "
        "--decode argmax --dropout 0.1")
