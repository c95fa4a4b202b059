"""Settings, paths and run profiles: the one place that defines them.

Every setting has three sources, strongest first: an explicit argument (CLI option or notebook
parameter), an environment variable, a default. Nothing here touches the disk or the network at
import time.

| setting            | environment variable      | default                                         |
| ------------------ | ------------------------- | ----------------------------------------------- |
| CRAFT source       | ``CRAFT_SOURCE``          | the CRAFT v5.0.2 GitHub release archive (URL)   |
| CRAFT checksum     | ``CRAFT_SHA256``          | known checksums in :data:`KNOWN_SHA256`         |
| data directory     | ``CRAFTLIB_DATA_DIR``     | ``<repo>/data`` (or ``./data`` outside a clone) |
| models directory   | ``CRAFTLIB_MODELS_DIR``   | ``<repo>/models``                               |
| results directory  | ``CRAFTLIB_RESULTS_DIR``  | ``<repo>/runs`` (git-ignored)                   |
| extra OBO files    | ``CRAFTLIB_ONTOLOGY_DIR`` | none (only the ontologies bundled in CRAFT)     |
| profile            | ``CRAFTLIB_PROFILE``      | ``quick``                                       |

**Relative paths** in these settings (``CRAFT_SOURCE=../shared/craft/CRAFT-5.0.2.tar.gz``), whether they come from
the environment or from a notebook parameter / keyword argument, are taken from one base, :func:`base_dir`: the
repository root when craftlib runs from a checkout (the folder of the ``Makefile``, where ``make`` runs), else the
current directory. So a setting means the same in a notebook (papermill and JupyterLab start kernels in
``notebooks/``), under ``make tutorial`` / ``make lab``, in the tests and on the command line. A relative path given
as a command-line *option* (``--data-dir ../x``) is taken from the current directory, like any shell argument
(:mod:`craftlib.cli` makes it absolute before the command runs). ``python -m craftlib doctor`` prints where each
setting resolves.

Runs write their results (notebook summaries, figures, benchmark reports) to the git-ignored ``runs/`` and
their models to the git-ignored ``models/``; the committed ``results/`` (:func:`published_dir`) only changes
through the explicit ``python -m craftlib publish RUN ...`` (``make results PUBLISH="RUN ..."``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlparse

from craftlib.errors import ConfigError

CRAFT_VERSION = "5.0.2"
CRAFT_URL = f"https://github.com/UCDenver-ccp/CRAFT/archive/refs/tags/v{CRAFT_VERSION}.tar.gz"
#: sha256 of archives we have seen, by file name. A checksum passed explicitly (``--sha256`` /
#: ``CRAFT_SHA256``) always wins; an archive whose name is not listed here is extracted unverified
#: (and the log says so).
KNOWN_SHA256: dict[str, str] = {}

#: The six entity types, in the fixed order that defines the 13 label ids.
ENTITY_TYPES: tuple[str, ...] = ("Sequence", "Cell", "Protein", "Gene", "Taxon", "Chemical")
#: ``O`` then ``B-``/``I-`` for each type, in :data:`ENTITY_TYPES` order. Never reorder: label ids are saved
#: in datasets and model configs.
LABELS: tuple[str, ...] = ("O",) + tuple(f"{p}-{t}" for t in ENTITY_TYPES for p in ("B", "I"))
LABEL2ID: dict[str, int] = {label: i for i, label in enumerate(LABELS)}
ID2LABEL: dict[int, str] = dict(enumerate(LABELS))

#: CRAFT concept-annotation module → entity type (PR is split into Protein/Gene by ``craftlib.tags``).
MODULE_TO_TYPE: dict[str, str] = {
    "SO": "Sequence",
    "CL": "Cell",
    "PR": "Protein",
    "NCBITaxon": "Taxon",
    "CHEBI": "Chemical",
}
ANNOTATION_SETS = ("proper", "extensions")
SPLITS = ("train", "dev", "test")
#: CRAFT split name → ``datasets`` split name.
HF_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


def _repo_root() -> Path | None:
    """The checkout this package is installed from (editable install), if any."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").is_file() and (here / "craftlib").is_dir() else None


def base_dir() -> Path:
    """What a relative path setting is relative to: the repository root of a checkout, else the current
    directory (see the module docstring)."""
    root = _repo_root()
    return root if root is not None else Path.cwd()


def resolve_path(value: str | os.PathLike) -> Path:
    """``value`` with ``~`` expanded; a relative path is taken from :func:`base_dir`."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(os.path.normpath(base_dir() / path))


def is_url(value: str | os.PathLike) -> bool:
    """Whether a CRAFT source is a URL (downloaded) rather than a local path."""
    return urlparse(str(value)).scheme in ("http", "https", "ftp")


def _default_dir(name: str) -> Path:
    return base_dir() / name


def _env_path(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return resolve_path(value) if value else default


def data_dir(value: str | os.PathLike | None = None) -> Path:
    """Root of ``raw/`` (downloads, extracted corpus) and ``processed/`` (datasets)."""
    return resolve_path(value) if value else _env_path("CRAFTLIB_DATA_DIR", _default_dir("data"))


def models_dir(value: str | os.PathLike | None = None) -> Path:
    return resolve_path(value) if value else _env_path("CRAFTLIB_MODELS_DIR", _default_dir("models"))


def results_dir(value: str | os.PathLike | None = None) -> Path:
    """Where runs write their results: ``CRAFTLIB_RESULTS_DIR`` or the git-ignored ``<repo>/runs``."""
    return resolve_path(value) if value else _env_path("CRAFTLIB_RESULTS_DIR", _default_dir("runs"))


def published_dir(value: str | os.PathLike | None = None) -> Path:
    """The committed ``<repo>/results`` folder of measured runs (written only by ``python -m craftlib publish``)."""
    return resolve_path(value) if value else _default_dir("results")


def craft_source(value: str | os.PathLike | None = None) -> str:
    """URL or local path (``.tar.gz`` or an extracted ``CRAFT-5.0.2`` folder) of the corpus; a relative local
    path is taken from :func:`base_dir`."""
    src = str(value) if value else os.environ.get("CRAFT_SOURCE") or CRAFT_URL
    return src if is_url(src) else str(resolve_path(src))


def craft_sha256(value: str | None = None) -> str | None:
    """The expected sha256 of the CRAFT archive (64 hex digits), or ``None``; anything else is a
    :class:`~craftlib.errors.ConfigError` naming where it came from."""
    given = value or os.environ.get("CRAFT_SHA256") or None
    if given is None:
        return None
    digest = given.strip().lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        where = "--sha256 / sha256=" if value else "CRAFT_SHA256="
        raise ConfigError(f"{where}{given!r} is not a sha256 checksum (64 hexadecimal digits): copy it from "
                          "SHA256SUMS (or `sha256sum CRAFT-5.0.2.tar.gz` of a trusted copy), or unset it.")
    return digest


def ontology_dir(value: str | os.PathLike | None = None) -> Path | None:
    """Extra OBO files (``*.obo``, ``*.obo.gz``, ``*.obo.zip``) to add to the bundled ones."""
    if value:
        return resolve_path(value)
    env = os.environ.get("CRAFTLIB_ONTOLOGY_DIR")
    return resolve_path(env) if env else None


#: Path settings: environment variable → the function that resolves it (``doctor`` prints each).
PATH_SETTINGS = {
    "CRAFT_SOURCE": craft_source,
    "CRAFTLIB_DATA_DIR": data_dir,
    "CRAFTLIB_MODELS_DIR": models_dir,
    "CRAFTLIB_RESULTS_DIR": results_dir,
    "CRAFTLIB_ONTOLOGY_DIR": ontology_dir,
}


# --------------------------------------------------------------------------------------------- profiles


#: How word tags are read from a model's scores: ``argmax`` takes each word's most likely label on its own (the
#: reference recipe, and every run before ``--decode`` existed); ``viterbi`` takes the most likely sequence of the
#: sentence that is valid IOB2 (:func:`craftlib.windows.iob2_viterbi`: no ``I-`` after ``O`` or after another type).
DECODES: tuple[str, ...] = ("argmax", "viterbi")

#: The reference recipe's values of the settings whose project default departs from it or may: case markers and
#: Viterbi decoding each helped with every seed measured (issue 19; README, "Levers"), so they are on by default and
#: ``--no-case-markers --decode argmax`` gives the reference recipe back; dropout is BERT's own 0.1 there, and
#: ``quick`` trains without it (its one short epoch underfits; issue 19, three seeds). Run names are written against
#: these values, so that a name says how a run differs from the reference recipe (the default two-step on quick is
#: ``two-step-minilm-quick-drop0-case-viterbi``; ``two-step-minilm-quick`` is the reference recipe) and every committed name
#: keeps its meaning; a run recorded before one of these settings existed was made with its value here
#: (:func:`recorded_setting`).
REFERENCE_SETTINGS: dict = {"dropout": 0.1, "case_markers": False, "decode": "argmax"}


@dataclass(frozen=True)
class Profile:
    """How much data and compute a run uses. ``None`` means "all"."""

    name: str
    description: str
    #: documents read per CRAFT split when building the dataset (``None``: all 60/7/30).
    max_docs: dict[str, int | None] = field(default_factory=lambda: {"train": None, "dev": None, "test": None})
    #: sentences used per split for training/evaluation (after the dataset is built).
    max_train_sentences: int | None = None
    max_eval_sentences: int | None = None
    # training hyperparameters (the reference recipe's, but for case_markers and decode: REFERENCE_SETTINGS)
    learning_rate: float = 3e-5
    batch_size: int = 8
    eval_batch_size: int = 8
    epochs: float = 4
    max_steps: int = -1
    max_length: int = 128
    window_stride: int = 32
    weight_decay: float = 0.0
    #: fraction of each training step's optimizer steps over which the learning rate rises linearly from 0 (then the
    #: linear decay); 0 is the reference recipe's (no warm-up)
    warmup_ratio: float = 0.0
    #: a marker token before capitalised / all-caps / mixed-case words (``craftlib.train.CASE_MARKERS``), so that
    #: an uncased model sees how a word was written. On by default (the reference recipe: off, :data:`REFERENCE_SETTINGS`)
    case_markers: bool = True
    #: a marker token before every word CRAFT's typography layer sets in italics (``craftlib.train.ITALIC_MARKER``):
    #: an ablation of what the typesetting tells a tagger (CRAFT's Gene label mostly follows the italics), never a
    #: default: plain text has no italics. Single-step only (the augmented copies carry no typesetting).
    italic_markers: bool = False
    #: augmented set: True = full-copy variant (every train sentence copied), False = replaced-only
    #: (see :mod:`craftlib.augment`)
    augment_keep_unchanged: bool = False
    #: probability that a mention of an augmented copy is replaced by a same-type ontology name (the reference's
    #: 20 %); 0 keeps the same copies with nothing replaced: the control that isolates the names
    #: (:data:`craftlib.augment.PICK_FLOOR`)
    replace_prob: float = 0.2
    #: the augmented step draws its copies again for every epoch (its own random stream per epoch), so that no
    #: augmented sentence is seen twice with the same names (:func:`craftlib.augment.augment_dataset`'s ``draws``);
    #: needs whole epochs. At one epoch it is the plain augmented set.
    fresh_replacements: bool = False
    #: batches of at most this many padded sub-tokens (sentences x the longest of them) instead of ``batch_size``
    #: sentences: many short sentences or a few long ones per optimizer step (``craftlib.train.token_budget_batches``);
    #: ``None``: ``batch_size`` sentences per step (the reference recipe)
    token_budget: int | None = None
    #: how word tags are read from the model's scores (:data:`DECODES`): ``argmax`` each word on its
    #: own (the reference recipe), ``viterbi`` the most likely valid IOB2 sequence of the sentence (the default).
    #: Changes no weight: only the dev/test predictions, their scores, and what the saved model's tagger does.
    decode: str = "viterbi"
    #: dropout probability of every dropout layer of the model while it trains (embeddings, attention, hidden,
    #: classifier: ``craftlib.train.set_dropout``); 0.1 is BERT's own (MiniLM's, the reference recipe's). A short
    #: training that underfits may do better without the regularisation
    dropout: float = 0.1
    #: the word-embedding matrix is not trained (``craftlib.train.freeze_word_embeddings``): with a vocabulary of
    #: 30,522 rows it is about half of MiniLM's parameters, so each optimizer step costs less; the layers above still
    #: learn to read every token, the case markers included
    freeze_embeddings: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not self.learning_rate > 0:
            problems.append(f"learning_rate={self.learning_rate} (must be > 0)")
        if not self.epochs > 0:
            problems.append(f"epochs={self.epochs} (must be > 0: 0 epochs trains nothing)")
        if not (self.max_steps == -1 or self.max_steps >= 1):
            problems.append(f"max_steps={self.max_steps} (must be >= 1, or -1 to train by epochs)")
        for name in ("batch_size", "eval_batch_size", "max_length"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} (must be >= 1)")
        if self.fresh_replacements and self.max_steps < 1 and not float(self.epochs).is_integer():
            problems.append(f"fresh_replacements with epochs={self.epochs} (each epoch draws its own copies: give a "
                            "whole number of epochs)")
        if self.token_budget is not None and self.token_budget < self.max_length:
            problems.append(f"token_budget={self.token_budget} (must be >= max_length={self.max_length}, so that "
                            "the longest window fits in a batch)")
        if self.token_budget is not None and self.fresh_replacements:
            problems.append("token_budget with fresh_replacements (the epoch blocks are batched by sentences: "
                            "choose one)")
        if self.decode not in DECODES:
            problems.append(f"decode={self.decode!r} (must be {' or '.join(DECODES)})")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout={self.dropout} (must be from 0 to below 1)")
        if not 0.0 <= self.warmup_ratio < 1.0:
            problems.append(f"warmup_ratio={self.warmup_ratio} (must be from 0 to below 1: a fraction of the steps)")
        if not 0.0 <= self.replace_prob <= 1.0:
            problems.append(f"replace_prob={self.replace_prob} (must be between 0 and 1)")
        for name in ("max_train_sentences", "max_eval_sentences"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} (must be >= 1, or None for all)")
        if problems:
            raise ConfigError(f"Profile {self.name!r}: {'; '.join(problems)}. Fix the value (e.g. --epochs, "
                              "--learning-rate, --max-steps, --replace-prob, --token-budget, --decode, --dropout, --warmup-ratio on the "
                              "command line).")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, hyperparameters: dict, **changes) -> Profile:
        """The profile a run's recorded ``hyperparameters`` (``metrics.json``) describe, with ``changes``; a field
        the record lacks (added after the run was made) takes the value runs had before it existed
        (:func:`recorded_setting`)."""
        known = {f.name for f in fields(cls)}
        recorded = {k: v for k, v in hyperparameters.items() if k in known}
        unrecorded = {k: recorded_setting(hyperparameters, k) for k in REFERENCE_SETTINGS if k not in recorded}
        return cls(**{**recorded, **unrecorded, **changes})

    @property
    def limits_documents(self) -> bool:
        return any(v is not None for v in self.max_docs.values())


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="CI: a few documents, a few optimizer steps; checks that everything runs (minutes).",
        max_docs={"train": 3, "dev": 1, "test": 2},
        max_train_sentences=160,
        max_eval_sentences=80,
        epochs=1,
        max_steps=8,
        max_length=64,
        window_stride=16,
    ),
    "quick": Profile(
        name="quick",
        description="Laptop workshop: all documents, 12,000 of the 18,951 training sentences, one epoch per step "
                    "(lr 1e-4: one short epoch needs larger steps than the reference 4 epochs at 3e-5; no dropout: "
                    "one epoch underfits rather than overfits); sized so that notebook 04's three recipes run in "
                    "about 14 minutes on a 2-core CPU with native bf16.",
        max_train_sentences=12000,
        max_eval_sentences=None,
        learning_rate=1e-4,
        epochs=1,
        dropout=0.0,
        max_length=128,
    ),
    "full": Profile(
        name="full",
        description="All data, the reference hyperparameters (lr 3e-5, batch 8, 4 epochs). GPU recommended.",
        epochs=4,
        max_length=256,
        window_stride=64,
        augment_keep_unchanged=True,
    ),
}


def recorded_setting(hyperparameters: dict, name: str):
    """A setting of a run's recorded ``hyperparameters``; one the record lacks is the value every run had before
    it existed: the reference recipe's for :data:`REFERENCE_SETTINGS` (``case_markers`` False, ``decode``
    argmax), :class:`Profile`'s default for the others."""
    if name in hyperparameters:
        return hyperparameters[name]
    if name in REFERENCE_SETTINGS:
        return REFERENCE_SETTINGS[name]
    default = {f.name: f.default for f in fields(Profile)}.get(name, MISSING)
    if default is MISSING:
        raise KeyError(name)
    return default


#: Printed by the notebooks when the profile is ``smoke``: its scores are near zero by design.
SMOKE_NOTE = ("Profile smoke: a few documents and a few optimizer steps. The scores below only prove that the "
              "pipeline runs end to end; they say nothing about the methods (use quick or full for that).")


def get_profile(name: str | Profile | None = None, **overrides) -> Profile:
    """Profile by name (``smoke``/``quick``/``full``; default ``CRAFTLIB_PROFILE`` or ``quick``)."""
    if isinstance(name, Profile):
        prof = name
    else:
        env = os.environ.get("CRAFTLIB_PROFILE")
        name = name or env or "quick"
        if name not in PROFILES:
            where = "CRAFTLIB_PROFILE=" if name == env else ""
            raise ConfigError(f"Unknown profile {where}{name!r}: choose one of {', '.join(PROFILES)}.")
        prof = PROFILES[name]
    overrides = {k: v for k, v in overrides.items() if v is not None}
    new = replace(prof, **overrides) if overrides else prof  # validates the values
    if ("epochs" in overrides and overrides["epochs"] != prof.epochs and "max_steps" not in overrides
            and prof.max_steps > 0):
        raise ConfigError(
            f"epochs={overrides['epochs']:g} would have no effect: profile {prof.name!r} stops after max_steps="
            f"{prof.max_steps} optimizer steps. Pass --max-steps -1 as well to train by epochs (or --max-steps N "
            "to choose the number of steps).")
    return new


# ------------------------------------------------------------------------------------- dataset layout


def dataset_name(profile: str | Profile | None = None, annotation_set: str = "proper") -> str:
    """Folder name under ``data/processed/`` of the dataset a profile uses.

    Profiles that read every document share one dataset (``craft-proper``); a profile that reads only
    a few documents gets its own (``craft-proper-smoke``), so a smoke run never overwrites real data.
    """
    if annotation_set not in ANNOTATION_SETS:
        raise ValueError(f"Unknown annotation set {annotation_set!r}: choose one of {', '.join(ANNOTATION_SETS)}.")
    prof = get_profile(profile)
    return f"craft-{annotation_set}" + (f"-{prof.name}" if prof.limits_documents else "")


def processed_dir(
    profile: str | Profile | None = None,
    annotation_set: str = "proper",
    data: str | os.PathLike | None = None,
) -> Path:
    """``<data>/processed/<dataset_name>/``, holding every derived artefact of one dataset:

    ``dataset/`` (DatasetDict), ``stats.json``, ``conll/``, ``entity_lists/``, ``augmented/``,
    ``baselines/``.
    """
    return data_dir(data) / "processed" / dataset_name(profile, annotation_set)


# ------------------------------------------------------------------------------------- the data spec


@dataclass(frozen=True)
class DataSpec:
    """Everything the data stages (tagged dataset, entity lists, augmented set; ARCHITECTURE.md's stage table)
    depend on, resolved once at the edge (a command's options, a notebook's parameters cell) by
    :func:`data_spec` and passed down whole. ``None`` in ``source``, ``policies``, ``ontology_dir`` and
    ``sources`` means "as the saved artefact was built" (else the setting or the default)."""

    profile: Profile
    annotation_set: str = "proper"
    data_dir: Path = field(default_factory=data_dir)
    #: CRAFT source (URL, archive or folder) and its checksum
    source: str | None = None
    sha256: str | None = None
    #: ``craftlib.tags.TagPolicies`` of the tagged dataset
    policies: object | None = None
    #: extra OBO folder, and OBO files per entity type (``{"Gene": ["a.obo"]}``)
    ontology_dir: Path | None = None
    sources: Mapping[str, Sequence[str]] | None = None
    #: entity-list name filters (``None``: all of ``craftlib.ontology.FILTERS``)
    filters: tuple[str, ...] | None = None
    #: the augmented set: seed, replacement probability (``None``: the profile's ``replace_prob``), full-copy
    #: variant (``None``: the profile's), term sampling
    seed: int = 42
    ratio: float | None = None
    keep_unchanged: bool | None = None
    sampling: str = "length"
    #: how, not what (never recorded as an input): progress bars and tagging processes
    progress: bool = True
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.annotation_set not in ANNOTATION_SETS:
            raise ConfigError(f"Unknown annotation set {self.annotation_set!r}: choose one of "
                              f"{', '.join(ANNOTATION_SETS)}.")

    @property
    def dataset_name(self) -> str:
        return dataset_name(self.profile, self.annotation_set)

    @property
    def processed_dir(self) -> Path:
        """``<data>/processed/<dataset_name>/``: every stage of this dataset writes under it."""
        return self.data_dir / "processed" / self.dataset_name

    @property
    def augment_ratio(self) -> float:
        return self.profile.replace_prob if self.ratio is None else self.ratio

    @property
    def augment_keep_unchanged(self) -> bool:
        return self.profile.augment_keep_unchanged if self.keep_unchanged is None else self.keep_unchanged

    @property
    def augment_draws(self) -> int:
        """How many copy sets the augmented set holds: one per epoch with ``fresh_replacements``, else one."""
        prof = self.profile
        if not prof.fresh_replacements or prof.max_steps > 0:
            return 1
        return max(1, int(prof.epochs))

    def but(self, **changes) -> DataSpec:
        """The same spec with ``changes`` (``dataclasses.replace``)."""
        return replace(self, **changes)


def data_spec(profile: str | Profile | None = None, annotation_set: str = "proper",
              data: str | os.PathLike | None = None, **settings) -> DataSpec:
    """The edge: a :class:`DataSpec` from a profile name (or ``CRAFTLIB_PROFILE``), an annotation set, a data
    folder (or ``CRAFTLIB_DATA_DIR``) and any other :class:`DataSpec` field; an ``ontology_dir`` of ``None`` takes
    ``CRAFTLIB_ONTOLOGY_DIR``. Relative folders and a relative CRAFT source are taken from :func:`base_dir` (the
    repository root of a checkout), like the settings. Nothing below it resolves a setting again."""
    settings = {k: v for k, v in settings.items() if v is not None}
    if "ontology_dir" in settings or os.environ.get("CRAFTLIB_ONTOLOGY_DIR"):
        settings["ontology_dir"] = ontology_dir(settings.get("ontology_dir"))
    if settings.get("source") is not None:
        settings["source"] = craft_source(settings["source"])  # a relative path: from base_dir(), like the setting
    if settings.get("filters") is not None:
        settings["filters"] = tuple(settings["filters"])
    return DataSpec(get_profile(profile), annotation_set, data_dir(data), **settings)
