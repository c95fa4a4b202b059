"""craftlib.adapt: the masked-LM stage on a tiny random BERT and synthetic documents (no download, seconds)."""

from __future__ import annotations

import json

import pytest

from craftlib import adapt, config, models
from craftlib.errors import ConfigError, ModelNotAvailableError
from tests.test_train import _synthetic, tiny_model_dir  # noqa: F401  (the fixture)


@pytest.fixture
def tiny_registry(tiny_model_dir, monkeypatch, tmp_path):  # noqa: F811
    """``tiny`` as a registry name (the tiny BERT), synthetic train/dev documents, a fresh models folder."""
    import datasets

    monkeypatch.setitem(models.REGISTRY, "tiny", lambda: str(tiny_model_dir))
    dsd = datasets.DatasetDict({"train": _synthetic(60), "validation": _synthetic(12, seed=1),
                                "test": _synthetic(12, seed=2)})
    monkeypatch.setattr(adapt.stages, "load", lambda name, spec, **kw: dsd)
    monkeypatch.setenv("CRAFTLIB_MODELS_DIR", str(tmp_path / "models"))
    return dsd


def test_blocks_join_each_documents_sentences_in_order(tiny_registry):
    tok = models.load_tokenizer("tiny")
    train = tiny_registry["train"]
    blocks = adapt._blocks(train, tok, max_length=16)
    assert all(len(b) <= 16 and b[0] == tok.cls_token_id and b[-1] == tok.sep_token_id for b in blocks)
    body = [i for b in blocks for i in b[1:-1]]
    expected = []
    for doc in sorted(set(train["doc_id"])):  # documents in name order, sentences in reading order
        rows = sorted((s, t) for d, s, t in zip(train["doc_id"], train["sentence_id"], train["tokens"]) if d == doc)
        expected += [i for ids in tok([t for _, t in rows], is_split_into_words=True,
                                      add_special_tokens=False)["input_ids"] for i in ids]
    assert body == expected


def test_adapt_builds_reuses_and_rebuilds_a_base_model(tiny_registry, capsys):
    spec = config.data_spec("smoke")
    options = adapt.AdaptOptions(epochs=3, learning_rate=3e-3, batch_size=4, max_length=32, head_steps=2)
    folder = adapt.adapt(spec, "tiny", options=options, progress=False)
    assert folder == config.models_dir() / "tiny-craft" and not (folder / "checkpoints").exists()
    record = json.loads((folder / "adapt.json").read_text())
    assert record["dev_loss_after"] < record["dev_loss_before"]  # it learned the synthetic documents' words
    assert record["global_step"] > options.head_steps and record["tokens_seen"] > 0
    assert record["inputs"]["learning_rate"] == 3e-3 and "tiny" in record["command"]
    out = capsys.readouterr().out
    assert "tiny-craft: dev masked-LM loss" in out
    # a registry-named adapted model is a base model like any other: the token-classification head is new
    assert models.resolve_model("tiny-craft") == str(folder)
    assert models.load_model("tiny-craft").config.id2label == dict(enumerate(config.LABELS))
    assert "after `python -m craftlib adapt`" in models.portable_model_name("tiny-craft")
    before = (folder / "model.safetensors").stat().st_mtime_ns
    adapt.adapt(spec, "tiny", options=options, progress=False)
    assert "Reusing the adapted model" in capsys.readouterr().out
    assert (folder / "model.safetensors").stat().st_mtime_ns == before
    adapt.adapt(spec, "tiny", options=options.__class__(**{**options.__dict__, "epochs": 1}), progress=False)
    assert "inputs changed: epochs" in capsys.readouterr().out


def test_a_missing_adapted_model_says_which_command_builds_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CRAFTLIB_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelNotAvailableError, match="python -m craftlib adapt --base-model minilm"):
        models.resolve_model("minilm-craft")
    assert models.resolve_model("dmis-lab/biobert-base-cased-v1.2") == "dmis-lab/biobert-base-cased-v1.2"
    with pytest.raises(ConfigError, match="registry name"):
        adapt.adapted_name("dmis-lab/biobert-base-cased-v1.2")
    with pytest.raises(ConfigError, match="mlm_probability"):
        adapt.AdaptOptions(mlm_probability=1.5)
