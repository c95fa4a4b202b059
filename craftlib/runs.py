"""Runs: what a run is called, the command that makes it, and the files it writes and reads.

Every system of the project (the dictionary baseline, the transformer recipes, the CRF and spaCy peers) writes
one folder ``models/<run>/`` with the same core (ARCHITECTURE.md, "Predictions and metrics"):

* **identity** — :func:`system_run_name` (``dictionary-<profile>``, ``<recipe>-<base>-<profile>``,
  ``crf-<profile>``, ...) and :func:`build_command` (the command line that writes it);
* **files** — ``predictions_<split>.jsonl`` (:func:`write_predictions` / :func:`read_predictions`) and
  ``metrics.json`` (:func:`metrics_core`, :func:`write_metrics` / :func:`read_metrics`), each written atomically
  through :mod:`craftlib.cache`;
* **results** — committed runs under ``results/`` rendered into the README table (:func:`results_markdown`,
  :func:`update_readme`) and copied there by :func:`publish` (commands ``results`` and ``publish``).

This module imports no stage: the stages that write runs (``baseline``, ``train``, ``peers``) and those that read
them (``evaluate``, ``pipeline``) all import it. Building a missing run is :mod:`craftlib.pipeline`'s job.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from string import Template

from craftlib import cache, config
from craftlib.errors import CraftlibError, RunError

#: The transformer recipes (:mod:`craftlib.train`).
RECIPES = ("single", "augmented", "two-step")
#: The peer toolkits (:mod:`craftlib.peers`).
PEERS = ("crf", "spacy", "crf-italic")


# ------------------------------------------------------------------------------------------ identity


def model_slug(base_model: str | os.PathLike | None) -> str:
    """Short lowercase name of a base model for run names (``dmis-lab/biobert-base-cased-v1.2`` → ``biobert-base-cased-v1.2``)."""
    name = Path(str(base_model or "minilm").rstrip("/")).name.lower()
    return re.sub(r"[^a-z0-9.]+", "-", name).strip("-") or "model"


def run_name(
    recipe: str, base_model: str | None = "minilm", profile: str | config.Profile | None = None,
    seed: int = 42, annotation_set: str = "proper", label_all_subtokens: bool = False,
) -> str:
    """``<recipe>-<base>-<profile>`` then the settings that differ from the reference recipe's on the named profile
    (:func:`override_suffix`: the default two-step on quick is ``two-step-minilm-quick-drop0-case-viterbi``, the reference
    recipe ``two-step-minilm-quick``, ``-ep2`` for two epochs), ``-extensions`` / ``-seed<N>`` for a non-default
    annotation set / seed, so that no two settings share a run folder."""
    if recipe not in RECIPES:
        raise CraftlibError(f"Unknown recipe {recipe!r}: choose one of {', '.join(RECIPES)}.")
    prof = config.get_profile(profile)
    name = f"{recipe}-{model_slug(base_model)}-{prof.name}" + override_suffix(prof)
    if label_all_subtokens:  # another labelling of the same data: never overwrites the standard run
        name += "-allsub"
    if annotation_set != "proper":
        name += f"-{annotation_set}"
    if seed != 42:
        name += f"-seed{seed}"
    return name


#: Short names of profile fields in run names (``single-minilm-quick-ep2-lr5e-05``).
_OVERRIDE_NAMES = {"epochs": "ep", "learning_rate": "lr", "max_train_sentences": "n", "max_steps": "steps",
                   "batch_size": "bs", "max_length": "len", "case_markers": "case", "replace_prob": "p",
                   "italic_markers": "ital", "augment_keep_unchanged": "fullcopy", "fresh_replacements": "fresh",
                   "token_budget": "tok", "decode": "", "dropout": "drop", "warmup_ratio": "wu",
                   "freeze_embeddings": "frozenemb"}


def profile_overrides(profile: config.Profile, against_reference: bool = False) -> dict:
    """Fields of ``profile`` that differ from its named profile (``{}`` for a plain named profile): the options a
    command line gives. ``against_reference=True``: from its named profile with the reference recipe's
    :data:`craftlib.config.REFERENCE_SETTINGS` instead (what a run name shows: the default two-step on quick has
    ``case_markers`` and ``decode`` here, ``{'case_markers': True, 'decode': 'viterbi'}``)."""
    named = config.PROFILES.get(profile.name)
    if named is None:
        return {}
    if against_reference:
        named = dataclasses.replace(named, **config.REFERENCE_SETTINGS)
    return {f: v for f, v in profile.to_dict().items() if f not in ("name", "description") and v != getattr(named, f)}


def _plain(value):
    """``2.0`` → ``2`` (run names and command lines), anything else unchanged."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def override_suffix(profile: config.Profile) -> str:
    """``-ep2-lr5e-05``-style suffix for the fields of ``profile`` that differ from the reference recipe's on its
    named profile (:func:`profile_overrides` ``against_reference``), in field order but for case markers and the
    decoding, which come last: ``-case-viterbi`` for the defaults, ``-p0-case-viterbi`` for the names' control."""

    def part(f, v):
        short = _OVERRIDE_NAMES.get(f, f.replace("_", ""))
        return (short if v else f"no{short}") if isinstance(v, bool) else f"{short}{_plain(v)}"

    changed = profile_overrides(profile, against_reference=True)
    last = [f for f in config.REFERENCE_SETTINGS if f in changed]  # the defaults' levers close the name: -case-viterbi
    order = [f for f in changed if f not in last] + last
    return "".join(f"-{part(f, changed[f])}" for f in order).replace(" ", "")


def system_run_name(
    system: str, profile: str | config.Profile | None, base_model: str | None = "minilm", seed: int = 42,
    annotation_set: str = "proper",
) -> str:
    """Run folder name of any system (ARCHITECTURE.md): ``dictionary-<profile>``; for a transformer recipe
    :func:`run_name` (``<recipe>-<base>-<profile>``, suffixed for overridden hyperparameters, a non-default
    annotation set or seed); ``crf-<profile>`` / ``spacy-<profile>`` for the peers (suffixed like the recipes for a
    non-default annotation set or seed)."""
    prof = config.get_profile(profile)
    if system == "dictionary":
        return f"dictionary-{prof.name}"
    if system in RECIPES:
        return run_name(system, base_model, prof, seed=seed, annotation_set=annotation_set)
    if system in PEERS:
        name = f"{system}-{prof.name}"
        if annotation_set != "proper":
            name += f"-{annotation_set}"
        return name + (f"-seed{seed}" if seed != 42 else "")
    raise CraftlibError(f"Unknown system {system!r}: choose one of dictionary, {', '.join(RECIPES + PEERS)}.")


#: Profile fields that ``python -m craftlib train`` can override, with their CLI options.
CLI_OVERRIDES = {"epochs": "--epochs", "learning_rate": "--learning-rate",
                 "max_train_sentences": "--max-train-sentences", "max_steps": "--max-steps",
                 "case_markers": "--case-markers", "replace_prob": "--replace-prob",
                 "italic_markers": "--italic-markers", "augment_keep_unchanged": "--full-copy",
                 "fresh_replacements": "--fresh-replacements", "token_budget": "--token-budget",
                 "decode": "--decode", "dropout": "--dropout", "freeze_embeddings": "--freeze-embeddings",
                 "warmup_ratio": "--warmup-ratio"}


def train_command(recipe: str, profile: str | config.Profile, base_model: str, seed: int, annotation_set: str,
                  data_dir=None, models_dir=None, label_all_subtokens: bool = False) -> str:
    """The CLI command equivalent to a :func:`craftlib.train.train_recipe` call (written into metrics and cards)."""
    prof = config.get_profile(profile)
    parts = ["python", "-m", "craftlib", "train", "--recipe", recipe, "--profile", prof.name,
             "--base-model", str(base_model), "--seed", str(seed)]
    for f, value in profile_overrides(prof).items():
        if f not in CLI_OVERRIDES:  # set from Python only: say so instead of printing a command that differs
            parts += ["#", f"(also {f}={value}, set from Python)"]
            continue
        if isinstance(value, bool):
            parts.append(CLI_OVERRIDES[f] if value else "--no-" + CLI_OVERRIDES[f][2:])
            continue
        parts += [CLI_OVERRIDES[f], str(_plain(value))]
    if annotation_set != "proper":
        parts += ["--annotation-set", annotation_set]
    for flag, value, default in (("--data-dir", data_dir, config.data_dir()),
                                 ("--models-dir", models_dir, config.models_dir())):
        shown = portable_path(value, default)
        if shown:
            parts += [flag, shown]
    if label_all_subtokens:
        parts.append("--label-all-subtokens")
    return shlex.join(parts)


def portable_path(value: str | os.PathLike | None, default: Path | None = None) -> str | None:
    """A folder as a recorded command should show it: ``None`` when it is the setting's own value (the command
    needs no option), relative to the repository when it lies inside it, else as given. Committed commands then
    name no folder of the machine they ran on."""
    if not value:
        return None
    path = Path(value).expanduser()
    try:
        if default is not None and path.resolve() == Path(default).expanduser().resolve():
            return None
    except OSError:
        pass
    root = config._repo_root()
    if root is not None and path.is_absolute():
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(value)


def _option_parts(options: Mapping[str, object]) -> list[str]:
    """``{"--data-dir": "d", "--obo": {"Cell": ["cl.obo"]}}`` → ``["--data-dir", "d", "--obo", "Cell=cl.obo"]``
    (``None`` values left out; an ``--obo`` type with no file becomes ``TYPE=``)."""
    parts: list[str] = []
    for flag, value in options.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            for kind, paths in value.items():
                for path in (list(paths) or [""]):
                    parts += [flag, f"{kind}={path}"]
        else:
            parts += [flag, str(value)]
    return parts


def baseline_command(profile: str | config.Profile | None, annotation_set: str = "proper", data_dir=None,
                     models_dir=None, source=None, ontology_dir=None,
                     sources: Mapping[str, Sequence[str]] | None = None) -> str:
    """The CLI command equivalent to a :func:`craftlib.baseline.run_dictionary_baseline` call."""
    parts = ["python", "-m", "craftlib", "baseline", "--profile", config.get_profile(profile).name]
    parts += _option_parts({"--annotation-set": None if annotation_set == "proper" else annotation_set,
                            "--data-dir": data_dir, "--models-dir": models_dir, "--source": source,
                            "--ontology-dir": ontology_dir, "--obo": sources or None})
    return shlex.join(parts)


def build_command(system: str, profile: str | config.Profile | None, base_model: str = "minilm", seed: int = 42,
                  annotation_set: str = "proper") -> str:
    """The command that writes a system's run folder (:func:`system_run_name`): ``baseline``, ``train`` or, for a
    peer, ``benchmark``."""
    prof = config.get_profile(profile)
    if system == "dictionary":
        return baseline_command(prof, annotation_set)
    if system in RECIPES:
        return train_command(system, prof, base_model, seed, annotation_set)
    if system in PEERS:
        extra = f" --annotation-set {annotation_set}" if annotation_set != "proper" else ""
        return f"python -m craftlib benchmark --profile {prof.name} --systems {system} --seed {seed}{extra}"
    raise CraftlibError(f"Unknown system {system!r}: choose one of dictionary, {', '.join(RECIPES + PEERS)}.")


# ------------------------------------------------------------------------------------------ run files

#: Keys every ``metrics.json`` starts with (ARCHITECTURE.md); systems add their own fields after them.
METRICS_CORE = ("run", "system", "recipe", "profile", "seed", "base_model", "dataset")


def now() -> str:
    """The ``created`` time of a run: ISO-8601, UTC, seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def metrics_core(run: str, system: str, profile: str | config.Profile | None, seed: int, dataset: str,
                 recipe: str | None = None, base_model: str | None = None) -> dict:
    """The common core of every ``metrics.json``, in :data:`METRICS_CORE` order (``dataset``: the name of the
    dataset it was scored on, :func:`craftlib.config.dataset_name`)."""
    return {"run": run, "system": system, "recipe": recipe, "profile": config.get_profile(profile).name,
            "seed": seed, "base_model": None if base_model is None else str(base_model), "dataset": dataset}


def write_metrics(run_dir: str | os.PathLike, metrics: Mapping) -> Path:
    """Write ``<run_dir>/metrics.json`` atomically; refuse metrics without the :data:`METRICS_CORE` keys."""
    missing = [k for k in METRICS_CORE if k not in metrics]
    if missing:
        raise RunError(f"metrics of {metrics.get('run', run_dir)} lack the core keys {missing} (see runs.metrics_core).")
    return cache.atomic_write_json(Path(run_dir) / "metrics.json", dict(metrics))


def predictions_path(run_dir: str | os.PathLike, split: str) -> Path:
    """``<run_dir>/predictions_<split>.jsonl`` (``split``: ``validation`` or ``test``)."""
    return Path(run_dir) / f"predictions_{split}.jsonl"


def write_predictions(path: str | os.PathLike, records: Iterable[Mapping]) -> Path:
    """Write ``predictions_<split>.jsonl`` atomically: one line per record with the :data:`PREDICTION_KEYS`
    (``doc_id``, ``sentence_id``, ``tokens``, ``gold``, ``pred``; tags as strings)."""
    lines = []
    for rec in records:
        row = {k: rec[k] for k in PREDICTION_KEYS}
        row.update(doc_id=str(row["doc_id"]), sentence_id=int(row["sentence_id"]), tokens=list(row["tokens"]),
                   gold=list(row["gold"]), pred=list(row["pred"]))
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    return cache.atomic_write_text(path, "".join(lines))


#: Fields of a prediction record, in file order.
PREDICTION_KEYS = ("doc_id", "sentence_id", "tokens", "gold", "pred")


def read_predictions(path: str | os.PathLike) -> list[dict]:
    """Read a ``predictions_<split>.jsonl`` file (see ARCHITECTURE.md) and check every line's shape."""
    path = Path(path)
    if not path.is_file():
        raise CraftlibError(
            f"No predictions file at {path}. Train or run the system first (notebook 04, or "
            "`python -m craftlib train` / `python -m craftlib baseline`)."
        )
    records = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise CraftlibError(f"{path}, line {n}: not JSON ({err}). Re-create the file.") from err
            missing = [k for k in PREDICTION_KEYS if k not in rec]
            if missing:
                raise CraftlibError(f"{path}, line {n}: missing field(s) {missing}; expected {list(PREDICTION_KEYS)}.")
            if not len(rec["tokens"]) == len(rec["gold"]) == len(rec["pred"]):
                raise CraftlibError(
                    f"{path}, line {n}: tokens, gold and pred have different lengths "
                    f"({len(rec['tokens'])}, {len(rec['gold'])}, {len(rec['pred'])}): one tag per token is required."
                )
            records.append(rec)
    return records


def save_json(obj, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON atomically (numpy / pandas scalars become Python numbers). Returns the path."""

    def native(o):
        return o.item() if hasattr(o, "item") else str(o)

    return cache.atomic_write_text(path, json.dumps(obj, indent=2, default=native) + "\n")


# ------------------------------------------------------------------------------------- results table

#: Quoted from the reference model card (a 125M-parameter RoBERTa whose base model is the Spanish clinical
#: ``PlanTL-GOB-ES/roberta-base-biomedical-clinical-es``; scores on what the card calls its "evaluation set"):
#: a landmark, never a measurement of this project.
REFERENCE_CARD = {"precision": 0.8366, "recall": 0.8513, "f1": 0.8439, "accuracy": 0.9681}
README_BEGIN, README_END = "<!-- RESULTS -->", "<!-- /RESULTS -->"
#: Row order: lists alone, the classic peers, then the transformer recipes.
_ROW_ORDER = {"dictionary": 0, "crf": 1, "spacy": 2, "single": 3, "augmented": 4, "two-step": 5}
#: File name pattern of the bootstrap results written by ``python -m craftlib compare``.
BOOTSTRAP_GLOB = "bootstrap-*.json"


def collect_results(results: str | os.PathLike) -> list[dict]:
    """Every ``<results>/<run>/metrics.json`` (committed measured runs), in table order."""
    rows = []
    for path in sorted(Path(results).glob("*/metrics.json")):
        m = read_metrics(path)
        if "test" not in m or "run" not in m:
            continue
        rows.append(m)
    rows.sort(key=lambda m: (str(m.get("profile") or ""), _ROW_ORDER.get(m.get("recipe") or m.get("system"), 9),
                             m["run"]))
    return rows


def _cell(split: dict, *keys: str) -> str:
    """``split[k1][k2]...`` as ``0.1234``, or an empty cell when an older metrics.json lacks it."""
    value = split
    for k in keys:
        if not isinstance(value, dict) or k not in value:
            return ""
        value = value[k]
    return f"{value:.4f}"


def _signed(x: float) -> str:
    return f"{x:+.3f}"


def bootstrap_markdown(results: str | os.PathLike) -> str:
    """The README's bootstrap section, rendered from ``<results>/bootstrap-*.json`` (``python -m craftlib
    compare``); a line saying how to make it when none is committed."""
    files = sorted(Path(results).glob(BOOTSTRAP_GLOB))
    if not files:
        return ("_No bootstrap intervals committed yet: `python -m craftlib compare --runs RUN ... "
                "--out results/bootstrap-quick.json` writes them from the runs' test predictions under "
                "`models/`._\n")
    parts = []
    for path in files:
        b = json.loads(path.read_text())
        pct = f"{b['confidence']:.0%}"
        votes = b.get("votes", {})  # systems that are a word-by-word majority of several runs (compare --vote)
        seeds = any((v.get("seeds") or 1) > 1 for v in b["systems"].values()) or bool(votes)
        what = ("the documents with replacement and, for a system of several seeds, its seeds with replacement "
                "(the interval covers both sources of noise)" if seeds else "the documents with replacement")
        parts += [
            (f"Paired bootstrap over the {b['documents']} test documents ([`{path.name}`](results/{path.name}); "
             f"{b['n_resamples']} resamples of {what}, seed {b['seed']}, {pct} percentile "
             f"intervals of {b['score']}; a difference whose interval contains 0 is *indistinguishable*). "
             f"Command: `{b.get('command', '?')}`"),
            "",
        ]
        if seeds:
            parts += [f"| system | seeds | test F1 (mean ± sd) | {pct} interval |", "| --- | ---: | ---: | --- |"]
            parts += [f"| `{name}` | {f'majority vote of {len(votes[name])}' if name in votes else v.get('seeds') or 1}"
                      f" | {v['f1']:.3f}"
                      + (f" ± {v['sd']:.3f}" if v.get("sd") is not None else "")
                      + f" | [{v['low']:.3f}, {v['high']:.3f}] |" for name, v in b["systems"].items()]
        else:
            parts += [f"| run | test F1 | {pct} interval |", "| --- | ---: | --- |"]
            parts += [f"| `{name}` | {v['f1']:.3f} | [{v['low']:.3f}, {v['high']:.3f}] |"
                      for name, v in b["systems"].items()]
        if b["differences"]:
            parts += ["", f"| difference | F1 | {pct} interval | verdict |", "| --- | ---: | --- | --- |"]
            parts += [f"| `{d['b']}` − `{d['a']}` | {_signed(d['difference'])} | "
                      f"[{_signed(d['low'])}, {_signed(d['high'])}] | {d['verdict']} |" for d in b["differences"]]
        parts.append("")
    return "\n".join(parts)


def read_metrics(path: str | os.PathLike, fix: str | None = None) -> dict:
    """A ``metrics.json``, refused with a clear error when it is not valid JSON or its scores are not numbers (a
    hand edit or a bad merge), instead of a traceback later; ``fix``: what the error tells the reader to do
    (default: restore the committed file or rerun its command)."""
    path = Path(path)
    fix = fix or (f"restore it (`git checkout -- {path}`) or rerun the command that wrote it (its `command` field), "
                  "then copy the new metrics.json there")
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise RunError(f"{path} is not valid JSON ({err}): {fix}.") from err
    if not isinstance(m, dict):
        raise RunError(f"{path} is not a JSON object: {fix}.")
    for split in ("dev", "test"):
        scores = m.get(split)
        if scores is None:
            continue
        bad = [k for k in ("precision", "recall", "f1", "accuracy")
               if not isinstance(scores, dict) or not isinstance(scores.get(k), (int, float))]
        if bad:
            raise RunError(f"{path}: {split} scores {', '.join(bad)} are missing or not numbers: {fix}.")
    return m


# ------------------------------------------------------------------------------------------ the run object


class Run:
    """One run folder (``models/<run>/``, or a published ``results/<run>/``): the one owner of its
    ``metrics.json`` (read, checked, written), its ``predictions_<split>.jsonl`` and its model card. Nothing else
    opens those files by hand."""

    def __init__(self, folder: str | os.PathLike):
        self.dir = Path(folder)

    @classmethod
    def named(cls, name: str, models_dir: str | os.PathLike | None = None) -> Run:
        """The run called ``name`` under ``models_dir`` (default: ``CRAFTLIB_MODELS_DIR`` or ``<repo>/models``)."""
        return cls(config.models_dir(models_dir) / name)

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r})"

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.json"

    @property
    def finished(self) -> bool:
        """Whether the run was written to the end (``metrics.json`` is written last)."""
        return self.metrics_path.is_file()

    def metrics(self, fix: str | None = None) -> dict:
        """Its ``metrics.json``, checked (:func:`read_metrics`; ``fix``: what a damaged one's error says to do); a
        missing one is a :class:`RunError`."""
        if not self.finished:
            raise RunError(f"{self.dir} holds no metrics.json: it is not a finished run.")
        return read_metrics(self.metrics_path, fix)

    def metrics_or_none(self) -> dict | None:
        """Its ``metrics.json``, or ``None`` when there is none or it is damaged (a run to build again)."""
        try:
            return self.metrics()
        except RunError:
            return None

    def write_metrics(self, metrics: Mapping) -> Path:
        return write_metrics(self.dir, metrics)

    def predictions_path(self, split: str) -> Path:
        return predictions_path(self.dir, split)

    def predictions(self, split: str) -> list[dict]:
        return read_predictions(self.predictions_path(split))

    def write_predictions(self, split: str, records: Iterable[Mapping]) -> Path:
        return write_predictions(self.predictions_path(split), records)

    def write_card(self, metrics: Mapping) -> Path:
        """``README.md``: the model card of a transformer run (:func:`model_card`)."""
        return cache.atomic_write_text(self.dir / "README.md", model_card(metrics))


# ------------------------------------------------------------------------------------------ model card


def _fmt(x, digits: int = 4) -> str:
    return "No log" if x is None else f"{x:.{digits}f}"


#: The model card's layout (``string.Template``), filled by :func:`model_card`.
MODEL_CARD_TEMPLATE = Path(__file__).with_name("templates") / "model_card.md"
#: One sentence per recipe for the model card.
RECIPE_TEXT = {
    "single": "fine-tuned once on the original CRAFT training sentences",
    "augmented": "fine-tuned once on the original plus the ontology-augmented CRAFT training sentences",
    "two-step": "fine-tuned first on the original plus augmented CRAFT training sentences (step 1), then again "
                "on the original sentences from the step-1 weights with a fresh optimizer and schedule (step 2)",
}


def model_card(metrics: Mapping) -> str:
    """Model card in the format of the reference card (Trainer-generated), filled from ``metrics`` only
    (layout: ``craftlib/templates/model_card.md``)."""
    m, p, dev, test, v = metrics, metrics["hyperparameters"], metrics["dev"], metrics["test"], metrics["versions"]
    two_step = m["recipe"] == "two-step"
    rows = "\n".join(
        f"| {_fmt(e['train_loss'])} | {e['epoch']:.2f} | {e['step']} | {_fmt(e['eval_loss'])} | "
        f"{e['precision']:.4f} | {e['recall']:.4f} | {e['f1']:.4f} | {e['accuracy']:.4f} |"
        + (f" {e['step_name']} |" if two_step else "")
        for e in m["dev_epochs"]
    )
    per_type = "\n".join(f"| {t} | {r['precision']:.4f} | {r['recall']:.4f} | {r['f1']:.4f} | {r['support']} |"
                         for t, r in test["per_type"].items())
    fields = {
        "run": m["run"], "base_model": m["base_model"], "base_model_resolved": m["base_model_resolved"],
        "recipe_text": RECIPE_TEXT[m["recipe"]], "dataset": m["dataset"], "profile": m["profile"],
        "dev_loss": _fmt(m["dev_epochs"][-1]["eval_loss"] if m["dev_epochs"] else None),
        **{f"{name}_{k}": f"{split[k]:.4f}" for name, split in (("dev", dev), ("test", test))
           for k in ("precision", "recall", "f1", "accuracy")},
        "test_tokens": test["tokens"], "test_sentences": test["sentences"], "dev_sentences": dev["sentences"],
        # a re-decoded run (`python -m craftlib decode`): the command that trained its weights, then the decoding one
        "command": (f"{m['decoded_from']['command']}\n    {m['command']}" if (m.get("decoded_from") or {}).get("command")
                    else m["command"]),
        "profile_description": m["profile_description"],
        "craft_version": config.CRAFT_VERSION, "annotation_set": m["annotation_set"],
        "train_sentences": m["train_sentences"], "per_type": per_type,
        "learning_rate": p["learning_rate"], "batch_size": p["batch_size"], "eval_batch_size": p["eval_batch_size"],
        "seed": m["seed"],
        "epochs": f"{p['epochs']}" + ("" if p["max_steps"] in (-1, None) else f" (max_steps: {p['max_steps']})"),
        "max_length": p["max_length"], "window_stride": p["window_stride"], "precision_mode": m["precision_mode"],
        "extra_head": " Stage |" if two_step else "", "extra_rule": ":-----:|" if two_step else "", "rows": rows,
        "train_seconds": f"{m['train_seconds']:.1f}", "hardware": m["hardware"],
        "tokens_per_second": f"{m['tokens_per_second']:.0f}",
        **{k: v.get(k) for k in ("transformers", "torch", "datasets", "tokenizers")},
    }
    return Template(MODEL_CARD_TEMPLATE.read_text(encoding="utf-8")).substitute(fields)


def _hardware_cell(m: dict) -> str:
    """Where a run ran, short: ``CPU, 2 cores, bf16`` / ``GPU NVIDIA H100, bf16`` (from its metrics.json)."""
    hw = m.get("hardware")
    if isinstance(hw, dict):  # the peers' benchmark records a dict
        hw = ", ".join(f"{v}" for v in hw.values() if isinstance(v, (str, int)))
    hw = str(hw or "")
    precision = m.get("precision_mode")
    if hw.startswith("cuda:"):
        cell = "GPU " + hw.split(":", 1)[1].strip()
    elif "cores" in hw:
        cores = hw.split("cores")[0].rstrip().rsplit(" ", 1)[-1].lstrip("(")
        cell = f"CPU, {cores} cores"
    else:
        cell = hw
    return f"{cell}, {precision}" if precision else cell


def results_markdown(results: str | os.PathLike) -> str:
    """Markdown table of the committed runs' test (and dev) scores, each with the command that made it, then
    the bootstrap intervals (:func:`bootstrap_markdown`).

    Generated, never typed: ``python -m craftlib results --readme README.md`` rewrites the README block, and
    a test checks that the block equals this function's output. Columns that an older ``metrics.json`` lacks
    (merged, strict, all-``O``) stay empty: they are filled when the run is measured again.
    """
    rows = collect_results(results)
    if not rows:
        return "_No measured runs committed under `results/` yet._\n"
    lines = [
        ("| run | system | profile | test P | test R | test F1 | F1 Gene+Protein merged | strict F1 | "
         "test token acc. | all-O token acc. | dev F1 | train s | hardware |"),
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for m in rows:
        t, d = m["test"], m["dev"]
        secs = m.get("train_seconds")
        lines.append(
            f"| `{m['run']}` | {m.get('system', '')} | {m.get('profile', '')} | {t['precision']:.4f} | "
            f"{t['recall']:.4f} | {t['f1']:.4f} | {_cell(t, 'merged', 'f1')} | {_cell(t, 'strict', 'f1')} | "
            f"{t['accuracy']:.4f} | {_cell(t, 'all_o_accuracy')} | {d['f1']:.4f} | "
            f"{'' if secs is None else f'{secs:.0f}' if secs >= 10 else f'{secs:.1f}'} | {_hardware_cell(m)} |"
        )
    r = REFERENCE_CARD
    lines.append(f"| reference card (quoted: the card's own \"evaluation set\", not measured here) | transformer | "
                 f"full | {r['precision']:.4f} | {r['recall']:.4f} | {r['f1']:.4f} | | | {r['accuracy']:.4f} | | | | not stated |")
    lines += ["", "Commands (each run's `metrics.json` repeats its own, with versions and hardware):", ""]
    lines += [f"- `{m['run']}`: `{m.get('command', '?')}`" for m in rows]
    lines += ["", bootstrap_markdown(results)]
    return "\n".join(lines).rstrip("\n") + "\n"


def update_readme(readme: str | os.PathLike, results: str | os.PathLike) -> bool:
    """Replace the block between ``<!-- RESULTS -->`` and ``<!-- /RESULTS -->``; ``True`` if it changed."""
    path = Path(readme)
    text = path.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise CraftlibError(f"{path} has no {README_BEGIN} ... {README_END} block to fill.")
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    new = f"{head}{README_BEGIN}\n{results_markdown(results)}{README_END}{tail}"
    if new != text:
        cache.atomic_write_text(path, new)
    return new != text


# ------------------------------------------------------------------------------------------------ publish

#: What a published transformer/peer run keeps from ``models/<run>/``: no weights, no predictions (they quote
#: the corpus and are large).
PUBLISHED_RUN_FILES = ("metrics.json", "README.md", "training_log.csv", "learning_curve.png")


def _publishable(path: Path) -> bool:
    """Files of a notebook's results folder that may be committed: not the errors CSVs nor the error analysis
    summary (they quote corpus sentences)."""
    if path.name.startswith("errors-") or path.name.startswith("."):
        return False
    return not (path.name == "summary.json" and path.parent.name.startswith("error_analysis"))


def publish(names: Iterable[str], models_dir=None, results_dir=None, to=None) -> list[Path]:
    """Copy measured runs into the committed results folder (``<repo>/results``); return what was written.

    Each name is a run under ``models/`` (its metrics, model card, training log and curve are copied), a
    folder of a notebook's outputs under ``runs/`` (``two_step_transfer-quick``; every file but the ones that
    quote the corpus), or the stem of report files under ``runs/`` (``peers-quick`` → ``.json``/``.md``/``.png``).
    Each target is written to a temporary folder and renamed into place.
    """
    models, outputs = config.models_dir(models_dir), config.results_dir(results_dir)
    dest = config.published_dir(to)
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in names:
        run, folder, stem_files = models / name, outputs / name, sorted(outputs.glob(f"{name}.*"))
        if (run / "metrics.json").is_file():
            files = [run / f for f in PUBLISHED_RUN_FILES if (run / f).is_file()]
        elif folder.is_dir():
            files = [f for f in sorted(folder.iterdir()) if f.is_file() and _publishable(f)]
        elif stem_files:
            for f in stem_files:
                written.append(cache.atomic_copy(f, dest / f.name))
            continue
        else:
            raise CraftlibError(
                f"Nothing to publish under the name {name!r}: neither {run}/metrics.json, nor the folder {folder}, nor "
                f"{outputs}/{name}.*. Run it first (e.g. `python -m craftlib train ...` or the notebook), or check the "
                "name (`ls models runs`).")
        with cache.atomic_dir(dest / name) as tmp:
            for f in files:
                shutil.copyfile(f, tmp / f.name)
        written.append(dest / name)
    return written


# ------------------------------------------------------------------------------------------------- CLI


def add_commands(subparsers) -> None:
    """``python -m craftlib results`` and ``publish``."""
    p = subparsers.add_parser(
        "results",
        help="Table of the measured runs committed under results/ (optionally written into the README).",
        description="Reads results/<run>/metrics.json and prints a Markdown table of test/dev scores with "
        "the command of each run; --readme rewrites the <!-- RESULTS --> block of that file.",
    )
    p.add_argument("--results-dir", default=None, help="default: the committed <repo>/results")
    p.add_argument("--readme", default=None, help="file whose <!-- RESULTS --> block to rewrite")
    p.set_defaults(func=_cmd_results)

    p = subparsers.add_parser(
        "publish",
        help="Copy measured runs (models/<run>, runs/<name>) into the committed results/ folder.",
        description="Runs write to the git-ignored models/ and runs/; committing a measured result is this explicit "
        "step. NAME is a run under models/ (metrics.json, model card, training log, learning curve; never weights "
        "or predictions), a notebook's folder under runs/ (e.g. two_step_transfer-quick) or a report stem under "
        "runs/ (e.g. peers-quick). Then `python -m craftlib results --readme README.md` updates the README table.",
    )
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--models-dir", default=None, help="default: CRAFTLIB_MODELS_DIR or <repo>/models")
    p.add_argument("--results-dir", default=None, help="where runs wrote (default: CRAFTLIB_RESULTS_DIR or <repo>/runs)")
    p.add_argument("--to", default=None, help="the committed results folder (default: <repo>/results)")
    p.set_defaults(func=_cmd_publish)


def _cmd_publish(args) -> int:
    for path in publish(args.names, args.models_dir, args.results_dir, args.to):
        print(f"published {path}")
    return 0


def _cmd_results(args) -> int:
    root = config.published_dir(args.results_dir)
    if args.readme:
        changed = update_readme(args.readme, root)
        print(f"{args.readme}: {'updated' if changed else 'already up to date'} from {root}")
    else:
        print(results_markdown(root), end="")
    return 0
