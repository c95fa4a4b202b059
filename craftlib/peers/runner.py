"""``python -m craftlib benchmark``: every system on the same sentences, scored by the same call.

What happens, in order:

1. The dataset of the profile is loaded (built when missing) and cut to the profile's limits the way
   the transformer recipes cut it (:func:`prepare_sentences`); the chosen sentences are written once
   to a temporary ``sentences.json`` that every peer reads, so all see the same tokens and gold tags.
2. The peers (CRF, spaCy) are trained and evaluated, each in its own subprocess
   (:mod:`craftlib.peers.worker`). Their peak memory is that subprocess's own peak resident set size
   (``VmHWM`` on Linux; ``ru_maxrss`` is not used there because it keeps the parent's size across
   ``fork``/``exec``). It includes the Python interpreter and the loaded sentences, whose size is
   reported separately (``rss_before_training_mb``).
3. The dictionary baseline and the transformer recipes are *read* from ``models/<run>/``: their
   ``predictions_<split>.jsonl`` are checked against the same sentences and re-scored, and their
   inference speed is measured here (a subprocess tags the test sentences with the saved model or
   entity lists). A missing run is listed as "not run" with the command that produces it
   (``--train-transformers`` trains the transformer recipes first).
4. Every system's dev and test predictions are scored with :func:`craftlib.evaluate.score`; the
   results go to ``results/peers-<profile>.json`` and ``.md`` with the command, versions and hardware.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

from craftlib import cache, config, runs, stages
from craftlib.bio import tag_names
from craftlib.corpus import fetch_craft
from craftlib.errors import CraftlibError
from craftlib.evaluate import score
from craftlib.peers.extras import require
from craftlib.peers.report import hardware_line, markdown_report
from craftlib.runs import read_predictions
from craftlib.runtime import TRACKED_PACKAGES, detect_device, versions
from craftlib.tags import italic_flags, profile_splits

#: Peer-specific knobs per profile (the data limits come from ``config.get_profile``). The CRF uses
#: the sklearn-crfsuite tutorial's regularisation (c1 = c2 = 0.1), untuned; spaCy uses its quickstart
#: training block, capped in epochs so the quick comparison fits the time budget (``max_steps = 0`` =
#: no step limit; ``full`` is the quickstart's own 20000 steps with early stopping).
PEER_SETTINGS: dict[str, dict[str, dict]] = {
    "smoke": {
        "crf": {"c1": 0.1, "c2": 0.1, "max_iterations": 20},
        "spacy": {"max_epochs": 5, "max_steps": 0, "eval_frequency": 10, "patience": 1600},
    },
    "quick": {
        "crf": {"c1": 0.1, "c2": 0.1, "max_iterations": 100},
        "spacy": {"max_epochs": 15, "max_steps": 20000, "eval_frequency": 200, "patience": 1600},
    },
    "full": {
        "crf": {"c1": 0.1, "c2": 0.1, "max_iterations": 200},
        "spacy": {"max_epochs": 0, "max_steps": 20000, "eval_frequency": 200, "patience": 1600},
    },
}
# crf-italic: the same CRF plus the tokens' italic flags from CRAFT's typography layer (the typography ablation;
# never in the default comparison: plain text has no italics)
for _settings in PEER_SETTINGS.values():
    _settings["crf-italic"] = {**_settings["crf"], "italic": True}
#: Systems trained here (``peer``) or read from their run directory (``external``), in table order.
SYSTEMS: dict[str, str] = {
    "dictionary": "external", "crf": "peer", "spacy": "peer",
    "single": "external", "augmented": "external", "two-step": "external", "crf-italic": "peer",
}
#: What ``benchmark`` runs without ``--systems``: every system but the typography ablation.
DEFAULT_SYSTEMS: tuple[str, ...] = tuple(s for s in SYSTEMS if s != "crf-italic")
TRANSFORMER_RECIPES = ("single", "augmented", "two-step")
PEER_PACKAGES = ("sklearn-crfsuite", "python-crfsuite", "scikit-learn", "spacy", "thinc")
#: Files of a run directory that are outputs, not the model (excluded from "model size").
NON_MODEL_FILES = ("metrics.json", "predictions_test.jsonl", "predictions_validation.jsonl",
                   "training_log.csv", "learning_curve.png", "README.md", "benchmark.log")
MEMORY_METHOD = (
    "peak resident set size of the subprocess that trained and evaluated the system (Linux: VmHWM of "
    "/proc/self/status at its end; elsewhere ru_maxrss); includes the Python interpreter, the imported "
    "libraries and the loaded sentences (see rss_before_training_mb)"
)


def run_name(system: str, profile: str, seed: int = 42, annotation_set: str = "proper") -> str:
    """``models/`` folder of a system (:func:`craftlib.runs.system_run_name`, base model ``minilm``)."""
    return runs.system_run_name(system, profile, "minilm", seed=seed, annotation_set=annotation_set)


# ----------------------------------------------------------------------------------------- the data


def to_records(split) -> list[dict]:
    """``{"doc_id", "sentence_id", "tokens", "tags"}`` per sentence (tags as strings), in dataset order."""
    return [
        {"doc_id": str(rec["doc_id"]), "sentence_id": int(rec["sentence_id"]),
         "tokens": list(rec["tokens"]), "tags": tag_names(rec["ner_tags"])}
        for rec in split
    ]


def prepare_sentences(dataset: Mapping, profile: config.Profile, seed: int,
                      italic_root=None) -> dict[str, list[dict]]:
    """Train/validation/test sentences every system uses, cut to the profile's limits exactly as the
    transformer recipes cut them (:func:`craftlib.tags.profile_splits`: a seeded shuffle of train, the first
    sentences of dev and test). ``italic_root``: the extracted CRAFT corpus whose typography gives each record
    its tokens' ``italic`` flags (for ``crf-italic``)."""
    missing = [s for s in ("train", "validation", "test") if s not in dataset]
    if missing:
        raise CraftlibError(f"The dataset has no {missing} split(s): rebuild it with `python -m craftlib data`.")
    splits = profile_splits(dataset, profile, seed)
    out = {split: to_records(rows) for split, rows in splits.items()}
    if italic_root is not None:
        for split, recs in out.items():
            for rec, flags in zip(recs, italic_flags(splits[split], italic_root)):
                rec["italic"] = flags
    for split, recs in out.items():
        if not recs:
            raise CraftlibError(f"The {split} split is empty: the benchmark needs sentences in every split.")
    return out


def fingerprint(sentences: Mapping[str, list[dict]]) -> str:
    """sha256 of the sentences (tokens and gold tags of every split): equal data, equal fingerprint."""
    return hashlib.sha256(json.dumps(sentences, sort_keys=True).encode()).hexdigest()


# ----------------------------------------------------------------------------------------- measuring


def hardware() -> dict:
    """CPU model, cores, memory and accelerator of this machine (peers always train on CPU)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        mem_gib = None
    dev = detect_device()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem_gib, "platform": platform.platform(),
        "accelerator": dev.name if dev.type != "cpu" else "none",
    }


def run_worker(spec: dict, log_path: Path) -> tuple[dict | None, int, float]:
    """Run :mod:`craftlib.peers.worker` on ``spec`` in a subprocess (output to ``log_path``).

    Returns (its result dict or ``None`` on failure, exit code, wall seconds). The result holds the
    worker's own peak memory (``peak_rss_self_mb``).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"craftlib-{spec['system']}-") as tmp:
        spec = {**spec, "result": str(Path(tmp) / "result.json")}
        (Path(tmp) / "spec.json").write_text(json.dumps(spec))
        env = {**os.environ, "PYTHONHASHSEED": "0", "ANSI_COLORS_DISABLED": "1"}
        t0 = time.perf_counter()
        with log_path.open("w") as log:
            code = subprocess.run([sys.executable, "-m", "craftlib.peers.worker", str(Path(tmp) / "spec.json")],
                                  stdout=log, stderr=subprocess.STDOUT, env=env, check=False).returncode
        wall = time.perf_counter() - t0
        result_file = Path(spec["result"])
        result = json.loads(result_file.read_text()) if code == 0 and result_file.is_file() else None
    return result, code, wall


def _log_tail(path: Path, chars: int = 1500) -> str:
    return path.read_text(errors="replace")[-chars:] if path.is_file() else "no output"


def disk_size_mb(path: Path, exclude: Sequence[str] = ()) -> float | None:
    """Size on disk of a file or folder (MiB), leaving out the named top-level files."""
    if path.is_file():
        return path.stat().st_size / 2**20
    if not path.is_dir():
        return None
    files = [p for p in path.rglob("*") if p.is_file() and not (p.parent == path and p.name in exclude)]
    return sum(p.stat().st_size for p in files) / 2**20 if files else None


def write_predictions(path: Path, records: list[dict], pred: list[list[str]]) -> None:
    """``predictions_<split>.jsonl`` of the benchmark's sentences (gold tags in ``tags``) and a system's tags."""
    runs.write_predictions(path, ({**r, "gold": r["tags"], "pred": p} for r, p in zip(records, pred)))


# ----------------------------------------------------------------------------------------- systems


def _run_peer(system: str, sentences_file: Path, sentences: dict, run_dir: Path, prof: config.Profile,
              seed: int, common: dict) -> dict:
    """Train + evaluate one peer in a subprocess; write its run directory; return its table row."""
    settings = PEER_SETTINGS[prof.name][system]
    entry = {"system": system, "run": run_dir.name, "kind": "peer", "settings": settings}
    spec = {"system": system, "splits": str(sentences_file), "run_dir": str(run_dir), "settings": settings,
            "seed": seed}
    log = run_dir / "benchmark.log"
    result, code, wall = run_worker(spec, log)
    if result is None:
        return {**entry, "status": "failed", "note": f"exit code {code}; end of {log}:\n{_log_tail(log)}"}
    scores = {}
    for split, key in (("validation", "dev"), ("test", "test")):
        recs = sentences[split]
        scores[key] = score([r["tags"] for r in recs], result["pred"][split])
        write_predictions(runs.predictions_path(run_dir, split), recs, result["pred"][split])
    n_test = len(sentences["test"])
    row = {
        **entry, "status": "ok", "source": "trained and evaluated by this benchmark", "same_sentences": True,
        **scores,
        "train_seconds": result["train_seconds"],
        "inference_sentences_per_second": n_test / result["predict_seconds"]["test"] if result["predict_seconds"]["test"] else None,
        "predict_seconds": result["predict_seconds"],
        "peak_memory_mb": result["peak_rss_self_mb"],
        "rss_before_training_mb": result["rss_before_training_mb"],
        "peak_memory_scope": "training + inference",
        "model_size_mb": disk_size_mb(Path(result["model_path"])),
        "wall_seconds": wall,
    }
    metrics = {
        **runs.metrics_core(run_dir.name, system, prof, seed, common["dataset"]),
        **{k: row[k] for k in ("dev", "test", "train_seconds", "inference_sentences_per_second", "peak_memory_mb",
                               "model_size_mb", "settings")},
        **common,
    }
    runs.write_metrics(run_dir, metrics)
    return row


def _time_inference(system: str, sentences_file: Path, n_test: int, run_dir: Path, data: config.DataSpec) -> dict:
    """Tag the test sentences with a saved system in a subprocess: speed and peak memory, or a note."""
    prof, annotation_set, data_dir = data.profile, data.annotation_set, data.data_dir
    kind = "dictionary" if system == "dictionary" else "transformer"
    if kind == "transformer" and not (run_dir / "config.json").is_file():
        return {"inference_note": f"no saved model in {run_dir} (config.json): inference speed not measured"}
    spec = {"system": kind, "splits": str(sentences_file), "run_dir": str(run_dir), "profile": prof.name,
            "annotation_set": annotation_set, "data_dir": str(data_dir) if data_dir else None,
            "batch_size": prof.eval_batch_size * 2, "seed": 0}
    with tempfile.TemporaryDirectory(prefix="craftlib-infer-log-") as tmp:
        log = Path(tmp) / "infer.log"
        result, code, _ = run_worker(spec, log)
        if result is None:
            tail = _log_tail(log).strip().splitlines()[-1:] or ["no output"]
            return {"inference_note": f"inference timing failed (exit code {code}): {tail[0][:300]}"}
    seconds = result["predict_seconds"]["test"]
    return {
        "inference_sentences_per_second": n_test / seconds if seconds else None,
        "inference_peak_memory_mb": result["peak_rss_self_mb"],
        "inference_measured": "by this benchmark: test sentences tagged in a subprocess"
        + (" (model loading included)" if kind == "transformer" else " (entity-list loading excluded)"),
    }


def _read_external(system: str, run_dir: Path, sentences: dict, data: config.DataSpec) -> dict:
    """A system trained elsewhere: re-score its predictions on our sentences, or say it was not run."""
    prof, seed, annotation_set = data.profile, data.seed, data.annotation_set
    entry = {"system": system, "run": run_dir.name, "kind": "external",
             "command": runs.build_command(system, prof.name, "minilm", seed, annotation_set)}
    run = runs.Run(run_dir)
    if not run.finished:
        return {**entry, "status": "not run", "note": f"no {run.metrics_path}; run: {entry['command']}"}
    metrics = run.metrics()
    row = {
        **entry, "status": "ok", "command": metrics.get("command", entry["command"]),
        "train_seconds": metrics.get("train_seconds"), "train_seconds_from": "metrics.json",
        "inference_sentences_per_second": None, "peak_memory_mb": None,
        "model_size_mb": disk_size_mb(run_dir, NON_MODEL_FILES),
    }
    if system == "dictionary":  # its "model" is the entity lists it was built from
        lists = stages.folder("entity_lists", data)
        row["model_size_mb"] = disk_size_mb(lists)
    for split, key in (("validation", "dev"), ("test", "test")):
        pred_path = runs.predictions_path(run_dir, split)
        if not pred_path.is_file():
            row[key] = metrics.get(key)
            row["status"], row["same_sentences"] = "metrics only", None
            row["note"] = f"no {pred_path.name}: scores copied from metrics.json, sentences not checked"
            continue
        recs = read_predictions(pred_path)
        ours = [(r["doc_id"], r["sentence_id"], r["tokens"], r["tags"]) for r in sentences[split]]
        theirs = [(str(r["doc_id"]), int(r["sentence_id"]), list(r["tokens"]), list(r["gold"])) for r in recs]
        row[key] = score([r["gold"] for r in recs], [r["pred"] for r in recs])
        if theirs != ours and row["status"] == "ok":
            row["status"], row["same_sentences"] = "other sentences", False
            row["note"] = (f"{pred_path.name} covers {len(theirs)} sentences, the benchmark {len(ours)} (or other "
                           "tokens/gold): not comparable; re-run it with the same profile and dataset")
        row.setdefault("same_sentences", True)
    return row


def _train_transformer(recipe: str, prof: config.Profile, seed: int, annotation_set: str, dirs: dict,
                       models: Path) -> dict:
    """``--train-transformers``: run ``python -m craftlib train`` in a worker subprocess (time and memory measured)."""
    argv = ["train", "--recipe", recipe, "--base-model", "minilm", "--profile", prof.name, "--seed", str(seed),
            "--annotation-set", annotation_set, "--no-progress"]
    for flag, value in dirs.items():
        if value is not None:
            argv += [flag, str(value)]
    log = models / f"benchmark-train-{recipe}-{prof.name}.log"
    train = {"recipe": recipe, "profile": prof.name, "seed": seed, "annotation_set": annotation_set,
             "data_dir": dirs.get("--data-dir"), "models_dir": dirs.get("--models-dir")}
    result, code, wall = run_worker({"system": "train", "train": train, "run_dir": str(models)}, log)
    ok = result is not None and result["exit_code"] == 0
    return {"command": "python -m craftlib " + " ".join(argv), "ok": ok, "exit_code": code if result is None
            else result["exit_code"], "wall_seconds": wall, "log": str(log),
            "peak_memory_mb": result["peak_rss_self_mb"] if result else None}


# ----------------------------------------------------------------------------------------- the runner


def benchmark_command(profile: str, seed: int, annotation_set: str, systems: Sequence[str],
                      train_transformers: bool) -> str:
    cmd = f"python -m craftlib benchmark --profile {profile} --seed {seed}"
    if annotation_set != "proper":
        cmd += f" --annotation-set {annotation_set}"
    if list(systems) != list(DEFAULT_SYSTEMS):
        cmd += f" --systems {','.join(systems)}"
    return cmd + (" --train-transformers" if train_transformers else "")


def run_benchmark(
    data: config.DataSpec | None = None,
    systems: Sequence[str] | None = None,
    models_dir: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    train_transformers: bool = False,
    dataset: Mapping | None = None,
) -> dict:
    """Train/evaluate/collect every system on ``data``'s sentences (:func:`craftlib.config.data_spec`: profile, seed,
    annotation set, data folder, CRAFT source; ``None``: the settings' defaults); write
    ``results/peers-<profile>.json`` and ``.md``; return the dict.

    ``dataset`` replaces the CRAFT dataset (a mapping ``train``/``validation``/``test`` → records with
    ``tokens``, ``ner_tags``, ``doc_id``, ``sentence_id``), e.g. for tests.
    """
    data = data if data is not None else config.data_spec()
    prof, seed, annotation_set, data_dir = data.profile, data.seed, data.annotation_set, data.data_dir
    if prof.name not in PEER_SETTINGS:
        raise CraftlibError(f"No peer settings for profile {prof.name!r}: choose one of {', '.join(PEER_SETTINGS)}.")
    systems = list(systems or DEFAULT_SYSTEMS)
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise CraftlibError(f"Unknown system(s) {unknown}: choose from {', '.join(SYSTEMS)}.")
    for system, module in (("crf", "sklearn_crfsuite"), ("crf-italic", "sklearn_crfsuite"), ("spacy", "spacy")):
        if system in systems:
            require(module)

    t_start = time.perf_counter()
    if dataset is None:
        dataset = stages.load("dataset", data, say=lambda line: None)
        dataset_name = data.dataset_name
    else:
        dataset_name = "given"
    italic_root = None
    if "crf-italic" in systems:
        if dataset_name == "given":
            raise CraftlibError("crf-italic reads CRAFT's typography layer: it needs the CRAFT dataset, not a given one.")
        italic_root = fetch_craft(data.source, data_dir=data.data_dir, progress=False)
    sentences = prepare_sentences(dataset, prof, seed, italic_root)
    models = config.models_dir(models_dir)
    results = config.results_dir(results_dir)
    command = benchmark_command(prof.name, seed, annotation_set, systems, train_transformers)
    hw = hardware()
    vers = versions(TRACKED_PACKAGES + PEER_PACKAGES)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    common = {"dataset": dataset_name, "command": command, "versions": vers, "hardware": hardware_line(hw),
              "created": created}

    trained = {}
    if train_transformers:
        dirs = {"--data-dir": data_dir, "--models-dir": models_dir}
        for recipe in (s for s in systems if s in TRANSFORMER_RECIPES):
            trained[recipe] = _train_transformer(recipe, prof, seed, annotation_set, dirs, models)

    rows = []
    with tempfile.TemporaryDirectory(prefix="craftlib-benchmark-") as tmp:
        sentences_file = Path(tmp) / "sentences.json"
        sentences_file.write_text(json.dumps(sentences))
        for system in systems:
            run_dir = models / run_name(system, prof.name, seed, annotation_set)
            print(f"[benchmark] {system} ({run_dir.name}) ...", flush=True)
            if SYSTEMS[system] == "peer":
                row = _run_peer(system, sentences_file, sentences, run_dir, prof, seed, common)
            else:
                row = _read_external(system, run_dir, sentences, data)
                if row["status"] != "not run":
                    row.update(_time_inference(system, sentences_file, len(sentences["test"]), run_dir, data))
                    row["peak_memory_mb"] = row.get("inference_peak_memory_mb")
                    row["peak_memory_scope"] = "inference only"
                if system in trained:
                    row["training_subprocess"] = trained[system]
                    row["peak_memory_mb"] = trained[system]["peak_memory_mb"]
                    row["peak_memory_scope"] = "training run (python -m craftlib train)"
            print(f"[benchmark] {system}: {row['status']}"
                  + (f", test F1 {row['test']['f1']:.3f}" if isinstance(row.get("test"), dict) else ""), flush=True)
            rows.append(row)

    report = {
        "profile": prof.name, "seed": seed, "annotation_set": annotation_set, "dataset": dataset_name,
        "command": command, "created": created, "hardware": hw, "versions": vers,
        "sentences": {split: len(recs) for split, recs in sentences.items()},
        "tokens": {split: sum(len(r["tokens"]) for r in recs) for split, recs in sentences.items()},
        "data_fingerprint": fingerprint(sentences),
        "scoring": "craftlib.evaluate.score (seqeval default mode, micro-averaged spans)",
        "memory_method": MEMORY_METHOD,
        "peer_settings": {s: PEER_SETTINGS[prof.name][s] for s in systems if SYSTEMS[s] == "peer"},
        "total_seconds": time.perf_counter() - t_start,
        "systems": rows,
    }
    cache.atomic_write_json(results / f"peers-{prof.name}.json", report)
    cache.atomic_write_text(results / f"peers-{prof.name}.md", markdown_report(report))
    print(f"[benchmark] wrote {results / f'peers-{prof.name}.json'} and .md", flush=True)
    return report


