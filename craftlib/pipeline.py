"""Get a system's predictions, building its run first when it is missing: what notebooks call.

Notebook 05 compares the dictionary baseline and the three transformer recipes. :func:`build_plan` says, before
anything runs, which run folders are present and which would be built (with the equivalent command and how long
the committed run of that name took); `predictions` reads a system's ``predictions_<split>.jsonl`` and,
when it is missing, builds the run through :func:`craftlib.baseline.run_dictionary_baseline` or
:func:`craftlib.train.train_recipe`.

This is the one module that knows how to build every system, so it comes after them in the data flow; run names,
commands and files are :mod:`craftlib.runs`'.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from craftlib import config, runs
from craftlib.baseline import run_dictionary_baseline
from craftlib.errors import CraftlibError
from craftlib.runs import Run
from craftlib.train import RunSpec, train_recipe

#: Systems compared in notebook 05, in the order of the tutorial.
SYSTEMS: tuple[str, ...] = ("dictionary", *runs.RECIPES)


def _check_system(system: str) -> None:
    if system not in SYSTEMS:
        raise CraftlibError(f"Unknown system {system!r}: choose one of {', '.join(SYSTEMS)}.")


def _measured_seconds(run: str, results_dir: str | os.PathLike | None = None) -> float | None:
    """``train_seconds`` of the committed measured run of that name (``results/<run>/metrics.json``), if any."""
    metrics = Run(config.results_dir(results_dir) / run).metrics_or_none()
    try:
        return float(metrics["train_seconds"])
    except (KeyError, TypeError, ValueError):
        return None


def _run(system: str, data: config.DataSpec, base_model: str, models_dir) -> Run:
    _check_system(system)
    return Run.named(runs.system_run_name(system, data.profile, base_model, seed=data.seed,
                                          annotation_set=data.annotation_set), models_dir)


def build_plan(
    systems: Sequence[str],
    data: config.DataSpec,
    split: str = "test",
    base_model: str = "minilm",
    models_dir: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
) -> list[dict]:
    """What :func:`predictions` would do for each system, *before* it does it: one dict per system with
    ``system``, ``run``, ``predictions`` (``"present"`` or ``"missing"``), ``action`` (``"read"`` or ``"build"``),
    ``command`` (the equivalent CLI command) and ``measured_train_s`` (the training time of the committed run of
    that name under ``results/``, when there is one; ``None`` otherwise). ``data``: :func:`craftlib.config.data_spec`
    (profile, annotation set, seed, data folder)."""
    plan = []
    for system in systems:
        run = _run(system, data, base_model, models_dir)
        present = run.predictions_path(split).is_file()
        plan.append({"system": system, "run": run.name, "predictions": "present" if present else "missing",
                     "action": "read" if present else "build",
                     "command": runs.build_command(system, data.profile, base_model, data.seed, data.annotation_set),
                     "measured_train_s": _measured_seconds(run.name, results_dir)})
    return plan


def build_run(system: str, data: config.DataSpec, base_model: str = "minilm",
              models_dir: str | os.PathLike | None = None) -> None:
    """Write a system's run folder: the dictionary baseline or a transformer recipe."""
    _check_system(system)
    if system == "dictionary":
        run_dictionary_baseline(data, models_dir)
    else:
        train_recipe(RunSpec(system, data, base_model, models_dir))


def predictions(
    system: str,
    data: config.DataSpec,
    split: str = "test",
    base_model: str = "minilm",
    models_dir: str | os.PathLike | None = None,
    build_if_missing: bool = True,
) -> tuple[str, list[dict]]:
    """``(run name, records)`` of a system's ``predictions_<split>.jsonl``; when the file is missing and
    ``build_if_missing``, runs the system first (:func:`build_run`), after printing which run it builds, the
    equivalent command and how long the committed run of that name took (see :func:`build_plan`)."""
    run = _run(system, data, base_model, models_dir)
    path = run.predictions_path(split)
    if not path.is_file() and build_if_missing:
        (step,) = build_plan([system], data, split, base_model, models_dir)
        secs = step["measured_train_s"]
        took = (f"the committed run results/{run.name} trained in {secs:.0f} s" if secs is not None
                else "no committed run of this name to time it by; see notebook 04's time table")
        what = "runs the dictionary baseline" if system == "dictionary" else "TRAINS a model"
        print(f"{run.name}: no {path.name} under {path.parent}; building it now ({what}), the equivalent of\n"
              f"    {step['command']}\n    roughly: {took}.", flush=True)
        build_run(system, data, base_model, models_dir)
    return run.name, run.predictions(split)


__all__ = ["SYSTEMS", "build_plan", "build_run", "predictions"]
