"""How long notebook 04 (and the tutorial) will take on *this* machine, measured before the wait.

:func:`calibrate` times a few optimizer steps and prediction batches of the real model (the base model with its
13-label head, AdamW as training uses it, the device's precision, the thread count training would use now) at
batches of 8 windows whose lengths change at every step as in training (:func:`calibration_lengths`), about 10-20 s
on a 2-core CPU. From them it fits seconds per optimizer step = ``step_s + token_s x sub-tokens`` (a fixed cost per
step, the optimizer's and gradient clipping's, plus a cost per sub-token) and seconds per predicted window. The
result is cached in ``<data>/calibration.json``, keyed on the hardware, torch version, precision, thread count, base
model and calibration method (:func:`calibration_key`), so ``doctor`` and notebook 04 share it.

:func:`workload` says what each profile's notebook 04 trains: optimizer steps, sub-tokens and scored windows per
recipe, from the committed measured run of that name (``results/<run>/metrics.json``: the same data on any
machine) or, for ``smoke``, from the profile's ``max_steps``. :func:`estimate` multiplies the two; it counts
training and scoring, not building a missing dataset, entity lists or augmented set (notebooks 01-03 do that).
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, replace

from craftlib import cache, config, runs, session
from craftlib.models import load_model, load_tokenizer
from craftlib.runtime import detect_device
from craftlib.threads import LoadProbe, plan_threads
from craftlib.train import optimizer_name
from craftlib.windows import autocast

#: Timed optimizer steps (each at its own window length: :func:`calibration_lengths`), after warm-up steps; a tenth
#: of them are timed prediction batches. Windows average about 35 sub-tokens on CRAFT (tokens_seen / windows of
#: the committed quick and full runs).
CALIBRATION_STEPS = 60
CALIBRATION_WARMUP = 10
#: Part of the cache key: a calibration made by an earlier method is measured again, not reused.
CALIBRATION_METHOD = "varied lengths"
#: Sub-tokens of an average window, for profiles without a committed run (see :func:`calibration_lengths`).
MEAN_WINDOW_TOKENS = 35
#: Notebook 04's recipes in the order it trains them (two-step reuses augmented as its step 1).
RECIPES = ("single", "augmented", "two-step")
#: Whole-notebook times of the other notebooks (01-03, 05, 06), seconds, measured on the tutorial's 2-core CPU
#: with native bf16 (README notebook table: smoke by `make test` on 2026-11-25, quick with papermill on
#: 2026-11-26; 06 on quick reads the committed benchmark). Not scaled to this machine: they do little training.
OTHER_NOTEBOOKS_S = {"smoke": 7 + 6 + 9 + 7 + 37, "quick": 19 + 23 + 17 + 46 + 9}


def calibration_key(base_model: str = "minilm", threads: int | None = None) -> str:
    """What a calibration depends on: CPU/GPU, cores, torch version, precision, threads, base model."""
    import torch

    device = detect_device()
    threads = threads or torch.get_num_threads()
    return (f"{device.type}:{device.name}|torch {torch.__version__}|{device.precision}|{threads} threads|"
            f"{base_model}|{CALIBRATION_METHOD}")


def _cache_path(data_dir=None):
    return config.data_dir(data_dir) / "calibration.json"


def _synthetic_batch(tokenizer, batch: int, length: int, seed: int):
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, tokenizer.vocab_size, (batch, length), generator=g)
    ids[:, 0], ids[:, -1] = tokenizer.cls_token_id or 101, tokenizer.sep_token_id or 102
    labels = torch.randint(0, len(config.LABELS), (batch, length), generator=g)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def calibration_lengths(n: int = CALIBRATION_STEPS, seed: int = 0) -> list[int]:
    """Window lengths of the timed steps: a new length at every step, as length-grouped training meets them, drawn
    like CRAFT's windows (many short, few long: 8 + an exponential of mean 28 sub-tokens, at most 128; mean about
    35). Timing one fixed length again and again (the calibration of before) underestimated a real bf16 training
    by a third on the tutorial's CPU, since every new shape costs bf16 kernels extra work: see
    ``benchmarks/results/calibration_shapes.txt``."""
    import random

    rng = random.Random(seed)
    return [min(128, 8 + int(rng.expovariate(1 / 28))) for _ in range(n)]


def _measure(base_model: str, batch_size: int, eval_batch_size: int) -> dict:
    import numpy as np
    import torch

    device = detect_device()
    tokenizer, model = load_tokenizer(base_model), load_model(base_model)
    where = "cuda" if device.type == "cuda" else "cpu"
    model.to(where)
    fused = optimizer_name(device) == "adamw_torch_fused"
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=fused or None)
    model.train()
    lengths = calibration_lengths(CALIBRATION_WARMUP + CALIBRATION_STEPS)
    times = []
    for i, length in enumerate(lengths):
        batch = {k: v.to(where) for k, v in _synthetic_batch(tokenizer, batch_size, length, i).items()}
        start = time.perf_counter()
        with autocast(device):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # as Trainer does every step (max_grad_norm 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if where == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    # seconds per step = step_s + token_s x sub-tokens, least squares over the timed (not warm-up) steps
    tokens = np.array([batch_size * n for n in lengths[CALIBRATION_WARMUP:]], dtype=float)
    timed = np.array(times[CALIBRATION_WARMUP:])
    (step_s, token_s), *_ = np.linalg.lstsq(np.vstack([np.ones_like(tokens), tokens]).T, timed, rcond=None)
    token_s = max(0.0, float(token_s))
    step_s = max(0.0, float(step_s))
    step_times = {"mean_length": float(tokens.mean() / batch_size), "mean_step_s": float(timed.mean())}
    model.eval()
    batch = _synthetic_batch(tokenizer, eval_batch_size, MEAN_WINDOW_TOKENS, 0)
    batch = {k: v.to(where) for k, v in batch.items() if k != "labels"}
    times = []
    with torch.inference_mode(), autocast(device):
        for i in range(1 + max(1, CALIBRATION_STEPS // 10)):
            start = time.perf_counter()
            model(**batch)
            if where == "cuda":
                torch.cuda.synchronize()
            if i:
                times.append(time.perf_counter() - start)
    window_s = sorted(times)[len(times) // 2] / eval_batch_size
    return {"step_s": step_s, "token_s": token_s, "window_s": window_s,
            "step_times": step_times}


def calibrate(base_model: str = "minilm", data_dir=None, force: bool = False, verbose: bool = True) -> dict:
    """The calibration of this machine (cached per :func:`calibration_key`; ``force`` measures again). Runs with
    the thread count training would use now (:func:`craftlib.threads.plan_threads`), restored afterwards."""
    import torch

    plan = plan_threads(LoadProbe(), announce=False)
    key = calibration_key(base_model, plan.threads)
    path = _cache_path(data_dir)
    try:
        saved = json.loads(path.read_text())
        saved = saved if isinstance(saved, dict) else {}
    except (OSError, ValueError):
        saved = {}
    if not force and isinstance(saved.get(key), dict) and {"step_s", "token_s", "window_s"} <= set(saved[key]):
        return {**saved[key], "cached": True}
    if verbose:
        print(f"calibrating: timing a few training and prediction steps of {base_model} on this machine "
              "(about half a minute, once; cached in " + str(path) + ")", flush=True)
    before = torch.get_num_threads()
    probe = LoadProbe()
    probe.read()
    start = time.perf_counter()
    try:
        torch.set_num_threads(plan.threads)
        # the quick/full batch shapes: 8 windows per optimizer step, prediction batches of 32
        result = _measure(base_model, config.PROFILES["quick"].batch_size, 32)
    finally:
        torch.set_num_threads(before)
    own = probe.read()
    result.update({"key": key, "seconds": time.perf_counter() - start, "threads": plan.threads,
                   "others_busy_before": plan.others_busy, "others_busy_during": own,
                   "machine": platform.processor() or platform.machine(), "measured": runs.now()})
    saved[key] = result
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        cache.atomic_write_json(path, saved)
    except OSError:
        pass  # a read-only data folder: the estimate still works, it is just not cached
    return {**result, "cached": False}


@dataclass(frozen=True)
class Training:
    """What one training of notebook 04 does (one fine-tuning step of a recipe)."""

    run: str
    steps: int
    tokens: int
    scored_windows: int
    source: str


def workload(prof: config.Profile, base_model: str = "minilm", results_dir=None) -> list[Training] | None:
    """Notebook 04's trainings on profile ``prof`` (``augmented`` first, then two-step's step 2 on it, as the
    notebook reuses it): steps, sub-tokens and scored windows (dev after each epoch, test once) per training. From
    the committed run of each name under ``results/`` (where there is none, the reference recipe's run of the recipe,
    ``--no-case-markers --decode argmax``: a few percent fewer sub-tokens); ``smoke`` from its ``max_steps``;
    ``None`` when unknown."""
    out = []
    reference = replace(prof, **config.REFERENCE_SETTINGS)
    for recipe in RECIPES:
        run = runs.system_run_name(recipe, prof, base_model)
        source = run
        m = runs.Run(config.published_dir(results_dir) / run).metrics_or_none()
        if m is None:  # not committed with these settings: the reference recipe's run (case markers add sub-tokens)
            source = runs.system_run_name(recipe, reference, base_model)
            m = runs.Run(config.published_dir(results_dir) / source).metrics_or_none()
        if m is not None:
            step = m["steps"][-1]
            epochs = max(1, len(m.get("dev_epochs", [])) // len(m["steps"]))
            scored = m["dev"]["sentences"] * epochs + m["test"]["sentences"]
            out.append(Training(run, int(step["global_step"]), int(step["tokens_seen"]), int(scored),
                                f"results/{source}/metrics.json"))
        elif prof.max_steps > 0:
            n_eval = prof.max_eval_sentences or 0
            out.append(Training(run, prof.max_steps, prof.max_steps * prof.batch_size * MEAN_WINDOW_TOKENS,
                                2 * n_eval, f"profile {prof.name}: max_steps={prof.max_steps}"))
        else:
            return None
    return out


def training_seconds(t: Training, cal: dict) -> float:
    return t.steps * cal["step_s"] + t.tokens * cal["token_s"] + t.scored_windows * cal["window_s"]


def estimate(prof: config.Profile, base_model: str = "minilm", cal: dict | None = None,
             trainings: list[str] | None = None, results_dir=None) -> dict | None:
    """Expected seconds of notebook 04 on profile ``prof`` (its trainings, or only the runs in ``trainings``) and
    of the whole tutorial, from calibration ``cal``; ``None`` when the profile's workload is unknown."""
    work = workload(prof, base_model, results_dir)
    if work is None:
        return None
    cal = cal or calibrate(base_model)
    chosen = [t for t in work if trainings is None or t.run in trainings]
    per_run = {t.run: training_seconds(t, cal) for t in chosen}
    nb04 = sum(per_run.values())
    other = OTHER_NOTEBOOKS_S.get(prof.name)
    return {"profile": prof.name, "trainings": len(chosen), "per_run_s": per_run, "notebook04_s": nb04,
            "tutorial_s": None if other is None else nb04 + other, "other_notebooks_s": other}


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def where(cal: dict) -> str:
    """'this CPU (2 cores, native bf16, bf16, 1 thread)'-like description of the calibrated machine."""
    device, _, rest = cal["key"].partition("|")
    kind = "this GPU" if device.startswith("cuda") else "this CPU"
    precision = rest.split("|")[1]
    busy = cal.get("others_busy_before")
    load = (f"; measured while other processes kept {busy:.1f} cores busy" if busy is not None and busy >= 0.5
            else "")
    return f"{kind} ({precision}, {cal['threads']} thread(s){load})"


def recommendation(quick_s: float | None, smoke_s: float | None) -> str:
    """What a learner on this machine should run."""
    if quick_s is None:
        return "no estimate for quick: run the smoke profile first and time it"
    if quick_s <= 20 * 60:
        return f"quick fits a workshop session here (notebook 04 about {minutes(quick_s)}): use the default"
    if quick_s <= 60 * 60:
        return (f"quick takes about {minutes(quick_s)} for notebook 04 here: start its training cell before a "
                "break, or use smoke (CRAFTLIB_PROFILE=smoke) to follow the code")
    return (f"quick would take about {minutes(quick_s)} for notebook 04 here: use smoke (CRAFTLIB_PROFILE=smoke), "
            "read the committed quick results in the README, and train quick or full on a GPU")


def report_lines(base_model: str = "minilm", data_dir=None, force: bool = False) -> list[str]:
    """The estimate block of ``doctor``: one line per profile, then the recommendation."""
    cal = calibrate(base_model, data_dir, force=force)
    how = (f"cached calibration of {cal['measured'][:16]}" if cal.get("cached")
           else f"calibrated now in {cal['seconds']:.0f} s")
    first = (f"time estimate on {where(cal)}, {how}: {cal['step_s'] * 1000:.0f} ms per optimizer step + "
             f"{cal['token_s'] * 1e6:.0f} us per sub-token, {cal['window_s'] * 1000:.1f} ms per scored window")
    lines = [first]
    found = {}
    for name, prof in config.PROFILES.items():
        est = estimate(prof, base_model, cal)
        found[name] = est
        if est is None:
            lines.append(f"  {name:<6} notebook 04: no estimate (no committed {name} run to size it by)")
            continue
        tut = (f", whole tutorial about {minutes(est['tutorial_s'])}" if est["tutorial_s"] is not None
               else " (the other notebooks were not timed on this profile)")
        lines.append(f"  {name:<6} notebook 04: {est['trainings']} trainings, about {minutes(est['notebook04_s'])}"
                     f"{tut}")
    q, s = found.get("quick"), found.get("smoke")
    lines.append("  recommendation: " + recommendation(q and q["notebook04_s"], s and s["notebook04_s"]))
    return lines


def notebook_plan(data: config.DataSpec, recipes=RECIPES, base_model: str = "minilm", models_dir=None) -> str:
    """The line notebook 04 prints before training: how many trainings it will run on ``data``
    (:func:`craftlib.config.data_spec`: profile, seed, annotation set; a finished run of the same name is reused,
    not retrained) and about how long they take on this machine."""
    return _plan(data, recipes, base_model, models_dir)[0]


def _plan(data: config.DataSpec, recipes, base_model: str, models_dir) -> tuple[str, list[str], float | None]:
    """The plan line, the runs to train (in order) and their estimated seconds (``None``: unknown)."""
    prof, seed, annotation_set, data_dir = data.profile, data.seed, data.annotation_set, data.data_dir
    todo, done = [], []
    for recipe in recipes:
        run = runs.system_run_name(recipe, prof, base_model, seed=seed, annotation_set=annotation_set)
        (done if runs.Run.named(run, models_dir).finished else todo).append(run)
    step1 = runs.system_run_name("augmented", prof, base_model, seed=seed, annotation_set=annotation_set)
    if any(r.startswith("two-step-") for r in todo) and step1 not in todo + done:
        todo.insert(0, step1)  # two-step trains its step 1 (the augmented run) first
    if not todo:
        return f"Plan: nothing to train, the {len(done)} runs exist under {config.models_dir(models_dir)}.", [], None
    cal = calibrate(base_model, data_dir)
    names = {runs.system_run_name(r, prof, base_model): runs.system_run_name(r, prof, base_model, seed=seed,
                                                                             annotation_set=annotation_set)
             for r in RECIPES}
    est = estimate(prof, base_model, cal, trainings=[k for k, v in names.items() if v in todo])
    reused = f" ({len(done)} already trained: reused)" if done else ""
    if est is None:
        return f"Plan: {_trainings(len(todo))}{reused}; no time estimate for profile {prof.name}.", todo, None
    line = (f"Plan: {_trainings(len(todo))}{reused}, about {minutes(est['notebook04_s'])} on {where(cal)} "
            f"({', '.join(f'{r} {minutes(s)}' for r, s in est['per_run_s'].items())}).")
    return line, todo, est["notebook04_s"]


def _trainings(n: int) -> str:
    return f"{n} training{'' if n == 1 else 's'}"


def training_session(data: config.DataSpec, recipes=RECIPES, base_model: str = "minilm", models_dir=None,
                     progress: bool | None = None):
    """``with training_session(...):`` notebook 04's training cell: prints :func:`notebook_plan`'s line, then
    numbers the trainings of the block "k of N" against that plan under an overall line, and ends a stop in one
    line (:func:`craftlib.session.planned`)."""
    line, todo, seconds = _plan(data, recipes, base_model, models_dir)
    print(line, flush=True)
    return session.planned(todo, seconds, progress=progress)


__all__ = ["calibrate", "calibration_key", "estimate", "notebook_plan", "report_lines", "training_session",
           "workload"]

