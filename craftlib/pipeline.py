"""Get a system's predictions, building its run first when it is missing: what notebooks call.

Notebook 05 compares the dictionary baseline and the three transformer recipes. :func:`build_plan` says, before
anything runs, which run folders are present and which would be built (with the equivalent command and how long
the committed run of that name took); :func:`load_or_build` reads a system's ``predictions_<split>.jsonl`` and,
when it is missing, builds the run through :func:`craftlib.baseline.run_dictionary_baseline` or
:func:`craftlib.train.train_recipe`.

This is the one module that knows how to build every system, so it comes after them in the data flow; run names,
commands and files are :mod:`craftlib.runs`'.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from craftlib import config, runs
from craftlib.baseline import run_dictionary_baseline
from craftlib.errors import CraftlibError
from craftlib.train import train_recipe

#: Systems compared in notebook 05, in the order of the tutorial.
SYSTEMS: tuple[str, ...] = ("dictionary", *runs.RECIPES)


def _check_system(system: str) -> None:
    if system not in SYSTEMS:
        raise CraftlibError(f"Unknown system {system!r}: choose one of {', '.join(SYSTEMS)}.")


def _measured_seconds(run: str, results_dir: str | os.PathLike | None = None) -> float | None:
    """``train_seconds`` of the committed measured run of that name (``results/<run>/metrics.json``), if any."""
    path = config.results_dir(results_dir) / run / "metrics.json"
    try:
        return float(json.loads(path.read_text())["train_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def build_plan(
    systems: Sequence[str] = SYSTEMS,
    profile: str = "quick",
    split: str = "test",
    base_model: str = "minilm",
    seed: int = 42,
    annotation_set: str = "proper",
    models_dir: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
) -> list[dict]:
    """What :func:`load_or_build` would do for each system, *before* it does it: one dict per system with
    ``system``, ``run``, ``predictions`` (``"present"`` or ``"missing"``), ``action`` (``"read"`` or ``"build"``),
    ``command`` (the equivalent CLI command) and ``measured_train_s`` (the training time of the committed run of
    that name under ``results/``, when there is one; ``None`` otherwise)."""
    plan = []
    for system in systems:
        _check_system(system)
        run = runs.system_run_name(system, profile, base_model, seed=seed, annotation_set=annotation_set)
        present = runs.predictions_path(config.models_dir(models_dir) / run, split).is_file()
        plan.append({"system": system, "run": run, "predictions": "present" if present else "missing",
                     "action": "read" if present else "build",
                     "command": runs.build_command(system, profile, base_model, seed, annotation_set),
                     "measured_train_s": _measured_seconds(run, results_dir)})
    return plan


def build_run(
    system: str,
    profile: str,
    base_model: str = "minilm",
    seed: int = 42,
    annotation_set: str = "proper",
    data_dir: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
) -> None:
    """Write a system's run folder: the dictionary baseline or a transformer recipe."""
    _check_system(system)
    if system == "dictionary":
        run_dictionary_baseline(profile=profile, annotation_set=annotation_set, data_dir=data_dir,
                                models_dir=models_dir)
    else:
        train_recipe(system, profile=profile, base_model=base_model, seed=seed, annotation_set=annotation_set,
                     data_dir=data_dir, models_dir=models_dir)


def load_or_build(
    system: str,
    profile: str,
    split: str = "test",
    base_model: str = "minilm",
    seed: int = 42,
    annotation_set: str = "proper",
    data_dir: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
    build_if_missing: bool = True,
) -> tuple[str, list[dict]]:
    """``(run name, records)`` of a system's ``predictions_<split>.jsonl``; when the file is missing and
    ``build_if_missing``, runs the system first (:func:`build_run`), after printing which run it builds, the
    equivalent command and how long the committed run of that name took (see :func:`build_plan`)."""
    _check_system(system)
    run = runs.system_run_name(system, profile, base_model, seed=seed, annotation_set=annotation_set)
    path = runs.predictions_path(config.models_dir(models_dir) / run, split)
    if not path.is_file() and build_if_missing:
        (step,) = build_plan([system], profile, split, base_model, seed, annotation_set, models_dir)
        secs = step["measured_train_s"]
        took = (f"the committed run results/{run} trained in {secs:.0f} s" if secs is not None
                else "no committed run of this name to time it by; see notebook 04's time table")
        what = "runs the dictionary baseline" if system == "dictionary" else "TRAINS a model"
        print(f"{run}: no {path.name} under {path.parent}; building it now ({what}), the equivalent of\n"
              f"    {step['command']}\n    roughly: {took}.", flush=True)
        build_run(system, profile, base_model, seed, annotation_set, data_dir, models_dir)
    return run, runs.read_predictions(path)


__all__ = ["SYSTEMS", "build_plan", "build_run", "load_or_build"]
