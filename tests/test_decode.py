"""Constrained (IOB2 Viterbi) decoding: the transition rule, the decoder against brute force, the ``--decode``
option in names and commands, and ``python -m craftlib decode`` against training with ``--decode``."""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pytest

from craftlib import bio, cli, config, runs, train, windows
from craftlib.errors import ConfigError
from tests.test_train import _synthetic, tiny_model_dir  # noqa: F401  (the fixture)

LABELS = list(config.LABELS)


def test_allowed_transitions_are_iob2():
    assert bio.allowed_transition("O", "B-Gene") and bio.allowed_transition("B-Gene", "I-Gene")
    assert bio.allowed_transition("I-Gene", "I-Gene") and bio.allowed_transition("I-Cell", "B-Gene")
    assert not bio.allowed_transition("O", "I-Gene")  # also the start of a sentence
    assert not bio.allowed_transition("B-Cell", "I-Gene") and not bio.allowed_transition("I-Protein", "I-Gene")


def _valid(path: list[int]) -> bool:
    tags = [LABELS[i] for i in path]
    return all(bio.allowed_transition(p, t) for p, t in zip(["O", *tags], tags))


@pytest.mark.parametrize("n_words,trials", [(1, 20), (2, 20), (3, 10)])
def test_viterbi_finds_the_best_valid_sequence_by_brute_force(n_words, trials):
    rng = np.random.default_rng(n_words)
    for _ in range(trials):
        logp = np.log(rng.dirichlet(np.full(len(LABELS), 0.3), size=n_words))
        best = max((p for p in itertools.product(range(len(LABELS)), repeat=n_words) if _valid(list(p))),
                   key=lambda p: sum(logp[i, k] for i, k in enumerate(p)))
        path = windows.iob2_viterbi(logp, LABELS)
        assert _valid(path)
        assert sum(logp[i, k] for i, k in enumerate(path)) == pytest.approx(sum(logp[i, k] for i, k in enumerate(best)))


def test_viterbi_keeps_a_valid_argmax_and_mends_a_stray_inside():
    def scores(*rows):  # each row: {tag: probability}, the rest shared equally
        out = np.full((len(rows), len(LABELS)), 1e-3)
        for i, row in enumerate(rows):
            for tag, p in row.items():
                out[i, LABELS.index(tag)] = p
        return np.log(out / out.sum(1, keepdims=True))

    valid = scores({"B-Gene": 0.9}, {"I-Gene": 0.8}, {"O": 0.9})
    assert windows.iob2_viterbi(valid, LABELS) == [int(np.argmax(r)) for r in valid]
    # argmax says O I-Gene: a stray inside, that seqeval's default mode counts as a span and strict mode drops
    stray = scores({"O": 0.9, "B-Gene": 0.05}, {"I-Gene": 0.6, "B-Gene": 0.3})
    assert [LABELS[i] for i in windows.iob2_viterbi(stray, LABELS)] == ["O", "B-Gene"]
    # ... unless the first word was nearly as likely a B-Gene: then the span grows backwards
    stray = scores({"O": 0.5, "B-Gene": 0.45}, {"I-Gene": 0.9, "B-Gene": 0.05})
    assert [LABELS[i] for i in windows.iob2_viterbi(stray, LABELS)] == ["B-Gene", "I-Gene"]
    assert windows.iob2_viterbi(np.zeros((0, len(LABELS))), LABELS) == []
    argmax = windows.decode_words([list(stray)], LABELS, "argmax")
    assert [LABELS[i] for i in argmax[0]] == ["O", "I-Gene"]
    with pytest.raises(ConfigError, match="argmax or viterbi|one of argmax, viterbi"):
        windows.decode_words([list(stray)], LABELS, "beam")


def test_merge_windows_keeps_score_rows_of_the_best_window():
    first, second = [np.full(3, float(k)) for k in range(5)], [np.full(3, 10.0 + k) for k in range(5)]
    meta = [{"sentence": 0, "word_start": 0, "word_end": 3, "word_ids": [-1, 0, 1, 2, -1]},
            {"sentence": 0, "word_start": 1, "word_end": 4, "word_ids": [-1, 1, 2, 3, -1]}]
    fill = windows.o_scores(3, 0)
    merged, missing = windows.merge_windows([5], meta, [first, second], fill=fill, keep=True)
    # word 1 is central in the first window, word 2 in the second; word 4 is in none
    assert [float(r[0]) for r in merged[0][:4]] == [1.0, 2.0, 12.0, 13.0] and merged[0][4] is fill and missing == 1


def test_decode_names_its_runs_and_commands_and_refuses_unknown_values():
    prof = config.get_profile("quick", decode="viterbi", case_markers=False)
    assert runs.run_name("two-step", "minilm", prof, seed=1) == "two-step-minilm-quick-drop0-viterbi-seed1"
    assert runs.run_name("two-step", "minilm", config.get_profile("quick")) == "two-step-minilm-quick-drop0-case-viterbi"
    argmax = config.get_profile("quick", decode="argmax")
    assert runs.run_name("two-step", "minilm", argmax) == "two-step-minilm-quick-drop0-case"
    assert "--decode argmax" in runs.train_command("single", argmax, "minilm", 42, "proper")
    assert "--decode" not in runs.train_command("single", prof, "minilm", 42, "proper")  # viterbi is the default
    with pytest.raises(ConfigError, match="decode='beam'"):
        config.get_profile("quick", decode="beam")


def test_decode_command_gives_what_training_with_decode_gives(tiny_model_dir, tmp_path, monkeypatch, capsys):  # noqa: F811
    """The decoded twin of a trained run has the predictions of the same training run with --decode viterbi (same
    seed, same weights), valid IOB2 everywhere, and says where its weights came from."""
    prof = config.get_profile("smoke", max_steps=6, learning_rate=3e-3, max_length=16, window_stride=4,
                              decode="argmax")
    monkeypatch.setattr(train, "load_recipe_data", lambda kind, spec: {
        "train": _synthetic(40), "validation": _synthetic(12, seed=1), "test": _synthetic(10, seed=2)})
    base = str(tiny_model_dir)
    plain = train.train_recipe(train.run_spec("single", prof, base_model=base, models_dir=tmp_path / "a"),
                               progress=False)
    trained = train.train_recipe(train.run_spec("single", config.Profile(**{**prof.to_dict(), "decode": "viterbi"}),
                                                base_model=base, models_dir=tmp_path / "b"), progress=False)
    assert cli.main(["decode", plain.name, "--models-dir", str(tmp_path / "a"), "--no-progress"]) == 0
    assert "F1" in capsys.readouterr().out
    decoded = tmp_path / "a" / trained.name
    assert trained.name.endswith("-viterbi")
    m, t = (json.loads((d / "metrics.json").read_text()) for d in (decoded, trained))
    assert m["hyperparameters"] == t["hyperparameters"] and m["hyperparameters"]["decode"] == "viterbi"
    assert m["test"] == t["test"] and m["dev"] == t["dev"]
    assert m["decoded_from"]["run"] == plain.name and m["command"].startswith("python -m craftlib decode")
    assert m["train_seconds"] == json.loads((plain / "metrics.json").read_text())["train_seconds"]
    card = (decoded / "README.md").read_text()
    assert m["decoded_from"]["command"] in card and m["command"] in card and f"{m['test']['f1']:.4f}" in card
    for split in ("validation", "test"):
        got, want = runs.Run(decoded).predictions(split), runs.Run(trained).predictions(split)
        assert [r["pred"] for r in got] == [r["pred"] for r in want]
        for r in got:
            bio.validate_iob2(r["pred"])
    assert (decoded / "model.safetensors").read_bytes() == (plain / "model.safetensors").read_bytes()
    # the saved model tags with the run's decoding
    assert train.predict(decoded, [["brca1", "binds", "glucose"]])[0]["tags"] == \
        train.predict(trained, [["brca1", "binds", "glucose"]])[0]["tags"]
    # the tagger (torch engine, the precision predict() uses) reads the run's decoding too: valid IOB2, the same tags
    from craftlib.runtime import detect_device
    from craftlib.tagger import Tagger

    sentences = [list(t) for t in _synthetic(8, seed=5)["tokens"]]
    tagger = Tagger(decoded, engine="torch-bf16" if detect_device().bf16 else "torch")
    tags, probs = tagger.tag_tokens(sentences)
    assert tagger.decode == "viterbi" and tags == [r["tags"] for r in train.predict(decoded, sentences)]
    for row, p in zip(tags, probs):
        bio.validate_iob2(row)
        assert len(p) == len(row) and all(0 < x <= 1 for x in p)
    assert Tagger(plain, engine="torch").decode == "argmax"
    # decoding the same weights again reuses the decoded run; new weights (another `created`) decode again
    stamp = (decoded / "metrics.json").stat().st_mtime_ns
    assert train.decode_run(plain, "viterbi") == decoded and (decoded / "metrics.json").stat().st_mtime_ns == stamp
    source = json.loads((plain / "metrics.json").read_text())
    runs.Run(plain).write_metrics({**source, "created": "2000-01-01T00:00:00+00:00"})
    assert train.decode_run(plain, "viterbi") == decoded and (decoded / "metrics.json").stat().st_mtime_ns != stamp
    # what cannot be decoded again is one line
    assert cli.main(["decode", decoded.name, "--models-dir", str(tmp_path / "a")]) == 2
    assert "already decoded" in capsys.readouterr().err
    assert cli.main(["decode", "nothing-here", "--models-dir", str(tmp_path / "a")]) == 2
    assert "No finished run" in capsys.readouterr().err
    # the other way: a run trained with Viterbi (the default) read with argmax is the argmax run of the same weights
    back = train.decode_run(trained, "argmax")
    assert back.name == plain.name and back.parent == trained.parent
    assert [r["pred"] for r in runs.Run(back).predictions("test")] == \
        [r["pred"] for r in runs.Run(plain).predictions("test")]
    assert "--decode argmax" in json.loads((back / "metrics.json").read_text())["command"]
    # ... but a run of that name that was trained, not decoded, is never replaced
    shutil.rmtree(back)
    shutil.copytree(plain, back)
    with pytest.raises(ConfigError, match="is not replaced"):
        train.decode_run(trained, "argmax")
