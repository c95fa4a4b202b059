"""What a training cell shows while it runs, and what a stop keeps: named progress, an overall line, one-line stops.

**Progress that says what runs.** Each training gets one bar named after its run and its place in the cell's plan
("two-step-minilm-quick-drop0-case-viterbi step 2 (3 of 3)"); a planned cell (:func:`planned`, what notebook 04 opens through
:func:`craftlib.estimate.training_session`) has an overall line above them (trainings done, time spent, the
estimate). A finished bar collapses to one line ("done: ... 8 steps in 0:12, dev F1 0.041"), and prediction passes
show inside the bar of their training instead of bars of their own. Where the bars go:

* a live Jupyter kernel: HTML outputs updated in place through IPython display handles, not ipywidgets, so a
  saved notebook holds each bar's last state as an ordinary output, and reopening it shows that line (never "Error
  displaying widget: model not found");
* a terminal: ``tqdm`` bars on stderr that disappear when done, then the same one-line summaries;
* elsewhere (papermill, CI logs): no bars, only the summaries and the per-epoch lines.

**A stop that keeps the work.** :func:`training_entry` (decorating :func:`craftlib.train.train_recipe`) turns an
interrupt (the notebook's stop button, Ctrl-C) into :class:`Stopped`, whose traceback is one line ("Stopped during
two-step-minilm-quick-drop0-case-viterbi step 2 (3 of 3) at epoch 0.42 ...; rerun the cell to resume"). Training saves a resumable
checkpoint every :func:`checkpoint_minutes` (``CRAFTLIB_CHECKPOINT_MINUTES``, default 10) into the run's
resumable temporary folder (:func:`craftlib.cache.resumable_dir`), which an interrupt keeps; the next call of
the same run resumes from it (``Trainer.train(resume_from_checkpoint=...)``), and finished runs are reused
(``train_recipe(..., reuse=True)``). The library bars that would stay on screen (``datasets``' "tokenizing",
``transformers``' "Writing model shards") are switched off while a training runs.
"""

from __future__ import annotations

import contextlib
import functools
import html
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from craftlib.cache import atomic_write_json
from craftlib.errors import ConfigError
from craftlib.runtime import has_widget_frontend

#: Default minutes of training between two resumable checkpoints (``CRAFTLIB_CHECKPOINT_MINUTES``).
CHECKPOINT_MINUTES = 10.0
#: Seconds between two redraws of a bar in a live kernel (each redraw is a message to the browser).
REDRAW_SECONDS = 0.5
#: File, inside a checkpoint folder, with the seconds of training up to that checkpoint.
ELAPSED_FILE = "craftlib_elapsed.json"


def checkpoint_minutes(value: str | None = None) -> float | None:
    """``CRAFTLIB_CHECKPOINT_MINUTES``: minutes of training between two resumable checkpoints (default
    :data:`CHECKPOINT_MINUTES`; ``0``: after every optimizer step; ``off``: none, an interrupted training restarts)."""
    value = (value if value is not None else os.environ.get("CRAFTLIB_CHECKPOINT_MINUTES", "")).strip().lower()
    if value == "":
        return CHECKPOINT_MINUTES
    if value in ("off", "no", "none"):
        return None
    try:
        minutes = float(value)
    except ValueError:
        minutes = -1.0
    if minutes < 0:
        raise ConfigError(f"CRAFTLIB_CHECKPOINT_MINUTES={value!r} is not a number of minutes >= 0 or 'off': unset "
                          "it or fix it.")
    return minutes


def in_kernel() -> bool:
    """Whether this code runs in an IPython kernel (a notebook), not a terminal or a plain script."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and hasattr(shell, "kernel")


def display_mode(progress: bool) -> str:
    """Where bars go: ``html`` (a kernel: display handles), ``tty`` (tqdm on stderr) or ``off`` (``progress=False``)."""
    if not progress:
        return "off"
    return "html" if in_kernel() else "tty"


def clock(seconds: float) -> str:
    """``0:07``, ``12:30``, ``1:02:03``."""
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# ---------------------------------------------------------------------------------------------- bars


class Bar:
    """One progress line: ``update`` it, ``note`` what it is doing now, ``close`` it to one line (or to nothing).

    ``mode`` (:func:`display_mode`): ``html`` draws an HTML ``<progress>`` line through an IPython display handle
    (redrawn in place, at most every :data:`REDRAW_SECONDS`), ``tty`` a tqdm bar on stderr that disappears when
    closed, ``off`` nothing."""

    def __init__(self, total: int | None, desc: str, unit: str = "step", mode: str = "off", start: int = 0,
                 counts: bool = True):
        self.total, self.desc, self.unit, self.mode, self.counts = total, desc, unit, mode, counts
        self.n, self.postfix, self.activity, self.kept = start, "", "", ""
        self.started = time.monotonic()
        self.first_n = start
        self.closed = False
        self._drawn = 0.0
        self._handle = self._tqdm = None
        if mode == "html":
            from IPython.display import display

            self._handle = display(self._bundle(), raw=True, display_id=True)
        elif mode == "tty":
            from tqdm import tqdm  # the plain-text bar, also inside a kernel

            self._tqdm = tqdm(total=total, initial=start, desc=desc, unit=unit, leave=False, dynamic_ncols=True,
                              file=sys.stderr)
        _OPEN.append(self)

    # what the bar says
    def text(self) -> str:
        if not self.counts:  # a line that says it all in its description (the overall line)
            return self.desc
        done = f"{self.n}/{self.total} {self.unit}s" if self.total else f"{self.n} {self.unit}s"
        spent = time.monotonic() - self.started
        timing = clock(spent)
        if self.total and self.n > self.first_n:
            left = spent / (self.n - self.first_n) * (self.total - self.n)
            timing += f" elapsed, about {clock(left)} left"
        parts = [f"{self.desc}: {done}", timing, self.postfix, self.kept, self.activity]
        return " | ".join(p for p in parts if p)

    def _bundle(self) -> dict:
        bar = (f'<progress value="{self.n}" max="{self.total}" style="width:16em;vertical-align:middle"></progress> '
               if self.total else "")
        return {"text/plain": self.text(),
                "text/html": f'<div class="craftlib-progress">{bar}<span>{html.escape(self.text())}</span></div>'}

    def _draw(self, force: bool = False) -> None:
        if self.closed:
            return
        now = time.monotonic()
        if self._handle is not None and (force or now - self._drawn >= REDRAW_SECONDS):
            self._drawn = now
            self._handle.update(self._bundle(), raw=True)
        elif self._tqdm is not None:
            self._tqdm.set_postfix_str(" | ".join(p for p in (self.postfix, self.activity) if p), refresh=False)
            self._tqdm.update(self.n - self._tqdm.n)

    def update(self, n: int | None = None, postfix: str | None = None) -> None:
        if n is not None:
            self.n = n
        if postfix is not None:
            self.postfix = postfix
        self._draw(force=self.total is not None and self.n >= self.total)

    def note(self, activity: str) -> None:
        """What the bar's training does now besides stepping (``scoring dev 3/10 batches``); ``""`` clears it."""
        self.activity = activity
        self._draw()

    def write(self, line: str) -> None:
        """A line printed under the bar (a kernel) or above it (a terminal)."""
        if self._tqdm is not None:
            self._tqdm.write(line)
        else:
            print(line, flush=True)

    def close(self, summary: str | None = None) -> None:
        """End the bar: it becomes ``summary`` (one line), or disappears when there is none."""
        if self.closed:
            return
        self.closed = True
        if self in _OPEN:
            _OPEN.remove(self)
        if self._handle is not None:
            self._handle.update({"text/plain": summary or ""}, raw=True)
        elif self._tqdm is not None:
            self._tqdm.close()
            if summary:
                print(summary, file=sys.stdout, flush=True)
        elif summary:
            print(summary, flush=True)


_OPEN: list[Bar] = []


@contextlib.contextmanager
def activity(total: int, desc: str, unit: str = "batch", progress: bool = True) -> Iterator[callable]:
    """A pass inside a training (scoring dev, predicting test): shown on the current training's bar when there is
    one, else as a bar of its own that disappears when done. Yields ``advance(k)``: ``k`` more of ``total`` done."""
    owner = current()
    bar = owner.bar if owner is not None and owner.bar is not None and not owner.bar.closed else None
    own = None
    if bar is None and progress and display_mode(progress) != "off":
        own = Bar(total, desc, unit, display_mode(progress))
    done = 0

    def advance(k: int = 1) -> None:
        nonlocal done
        done += k
        if bar is not None:
            bar.note(f"{desc} {done}/{total} {unit}es" if unit == "batch" else f"{desc} {done}/{total}")
        elif own is not None:
            own.update(done)

    try:
        yield advance
    finally:
        if bar is not None:
            bar.note("")
        if own is not None:
            own.close()


# ------------------------------------------------------------------------------------ what runs now


@dataclass
class Training:
    """One training of a run (one fine-tuning step): its name, its place in the plan, how far it got."""

    run: str
    step: str | None = None
    k: int | None = None
    n: int | None = None
    epoch: float | None = None
    global_step: int = 0
    max_steps: int | None = None
    checkpoint_step: int | None = None
    resumed_from: int | None = None
    dev_f1: float | None = None
    started: float = field(default_factory=time.monotonic)
    bar: Bar | None = None

    @property
    def label(self) -> str:
        where = f" ({self.k} of {self.n})" if self.k is not None and self.n else ""
        return f"{self.run}{' ' + self.step if self.step else ''}{where}"

    def summary(self) -> str:
        steps = f"{self.global_step} steps" if self.global_step else "no step"
        resumed = f" (resumed from its checkpoint of step {self.resumed_from})" if self.resumed_from else ""
        f1 = f", dev F1 {self.dev_f1:.3f}" if self.dev_f1 is not None else ""
        return f"done: {self.label}: {steps} in {clock(time.monotonic() - self.started)}{resumed}{f1}"


@dataclass
class Session:
    """A cell's plan of trainings (run names in order) and how far it got; its overall line."""

    runs: list[str]
    estimate_s: float | None = None
    mode: str = "off"
    title: str = "this cell"
    done: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    line: Bar | None = None

    def place(self, run: str) -> tuple[int, int]:
        """``(k, n)`` of a training of ``run``: its place in the plan (an unplanned training is added at the end)."""
        if run not in self.runs:
            self.runs.append(run)
        return self.runs.index(run) + 1, len(self.runs)

    def overall(self) -> str:
        now = current()
        doing = f"; now {now.label}" if now is not None else ""
        est = f", estimate about {clock(self.estimate_s)} in all" if self.estimate_s else ""
        reused = f" ({len(self.reused)} finished run(s) reused)" if self.reused else ""
        return (f"{self.title}: {len(self.done)} of {len(self.runs)} trainings done{reused}{doing} | "
                f"{clock(time.monotonic() - self.started)} elapsed{est}")

    def redraw(self) -> None:
        if self.line is not None:
            self.line.desc = self.overall()
            self.line.update(len(self.done))


_SESSIONS: list[Session] = []
_TRAININGS: list[Training] = []


def current() -> Training | None:
    """The training running now (innermost), if any."""
    return _TRAININGS[-1] if _TRAININGS else None


def active_session() -> Session | None:
    return _SESSIONS[-1] if _SESSIONS else None


@contextlib.contextmanager
def planned(runs: Sequence[str], estimate_s: float | None = None, title: str = "this cell",
            progress: bool | None = None) -> Iterator[Session]:
    """A cell that trains ``runs`` (run names, in order): trainings are numbered "k of N" against them, an overall
    line follows the cell (a kernel: updated in place; elsewhere: a line when it ends), and an interrupt anywhere in
    the block ends in one line (:class:`Stopped`)."""
    mode = display_mode(_live() if progress is None else progress)
    sess = Session(list(runs), estimate_s, mode, title)
    if mode == "html" and sess.runs:
        sess.line = Bar(len(sess.runs), sess.overall(), "training", mode, counts=False)
    _SESSIONS.append(sess)
    try:
        with _one_line_stops():
            yield sess
    finally:
        _SESSIONS.remove(sess)
    spent = clock(time.monotonic() - sess.started)
    est = f" (estimated about {clock(sess.estimate_s)})" if sess.estimate_s else ""
    reused = f"; {len(sess.reused)} finished run(s) reused" if sess.reused else ""
    final = f"{title}: {len(sess.done)} training(s) in {spent}{est}{reused}."
    if sess.line is not None:
        sess.line.close(final)
    elif sess.runs or sess.reused:
        print(final, flush=True)


def begin(run: str, step: str | None = None, progress: bool = False) -> Training:
    """A training of ``run`` (``step``: ``"step 2"`` of a two-step run) starts: numbered against the cell's plan."""
    sess = active_session()
    k, n = sess.place(run) if sess is not None else (None, None)
    training = Training(run, step, k, n)
    _TRAININGS.append(training)
    if sess is not None:
        sess.redraw()
    if display_mode(progress) == "off" and sess is not None:
        print(f"training {training.label}", flush=True)
    return training


def end(training: Training) -> None:
    """The training finished and its run is written: its bar collapses to its one-line summary."""
    if training in _TRAININGS:
        _TRAININGS.remove(training)
    summary = training.summary()
    if training.bar is not None and not training.bar.closed:
        training.bar.close(summary)
    else:
        print(summary, flush=True)
    sess = active_session()
    if sess is not None:
        sess.done.append(training.run)
        sess.redraw()


@contextlib.contextmanager
def training(run: str, step: str | None = None, progress: bool = False) -> Iterator[Training]:
    """``with training(run, step):`` one training (:func:`begin`), ended by :func:`end` when the block succeeds. An
    interrupt leaves it current, for the one-line stop to say where it stopped; another error drops it."""
    t = begin(run, step, progress)
    try:
        yield t
    except KeyboardInterrupt:
        raise
    except BaseException:
        if t in _TRAININGS:
            _TRAININGS.remove(t)
        if t.bar is not None:
            t.bar.close(f"{t.bar.text()} | failed")
        raise
    end(t)


def reused(run: str, run_dir: Path) -> None:
    """A finished run of the same settings exists: it is used as it is (one line says so)."""
    print(f"{run}: a finished run with the same settings is in {run_dir}: reused, not trained again.", flush=True)
    sess = active_session()
    if sess is not None:
        if run in sess.runs:  # planned as a training after all (a plan made before the run finished elsewhere)
            sess.runs.remove(run)
        sess.reused.append(run)
        sess.redraw()


def training_bar(total: int, start: int = 0, progress: bool = True) -> tuple[Bar | None, bool]:
    """The bar of the current training (created on first use), or a bar of its own when no training is current;
    the second value says whether the caller owns it (and closes it)."""
    mode = display_mode(progress)
    now = current()
    if now is not None:
        now.max_steps = total
        if now.bar is None and mode != "off":
            now.bar = Bar(total, now.label, "step", mode, start)
        return now.bar, False
    return (Bar(total, "training", "step", mode, start) if mode != "off" else None), True


def _live() -> bool:
    return has_widget_frontend() if in_kernel() else sys.stderr.isatty()


# --------------------------------------------------------------------------------------- stopping


class Stopped(KeyboardInterrupt):
    """An interrupt, said in one line: IPython shows :meth:`_render_traceback_` instead of a traceback, and
    ``craftlib.cli`` prints the message. Still a ``KeyboardInterrupt``: a notebook's queued cells are not run."""

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


def stop_message() -> str:
    """What stopped, what is kept, how to go on."""
    now, sess = current(), active_session()
    if now is not None:
        at = (f" at epoch {now.epoch:.2f} ({now.global_step} of {now.max_steps} steps done)" if now.epoch is not None
              else " before its first optimizer step")
        head = f"Stopped during {now.label}{at}"
        kept = ([f"its checkpoint of step {now.checkpoint_step}"] if now.checkpoint_step
                else ["no checkpoint of it yet (it restarts)"])
    else:
        head, kept = "Stopped", []
    if sess is not None and sess.done:
        kept.insert(0, f"{len(sess.done)} finished run(s)")
    again = "rerun the cell to resume" if in_kernel() else "run the same command again to resume"
    return f"{head}; kept: {', '.join(kept)}; {again}." if kept else f"{head}; {again}."


def _close_open_bars(note: str) -> None:
    while _OPEN:  # closing a bar takes it off the list
        _OPEN[-1].close(f"{_OPEN[-1].text()} | {note}" if _OPEN[-1].mode != "off" else None)


@contextlib.contextmanager
def _one_line_stops() -> Iterator[None]:
    try:
        yield
    except Stopped:
        raise
    except KeyboardInterrupt:
        message = stop_message()
        _close_open_bars("stopped")
        _TRAININGS.clear()
        raise Stopped(message) from None


@contextlib.contextmanager
def quiet_library_bars() -> Iterator[None]:
    """``datasets``' and ``transformers``' own progress bars off for a block (they would stay on screen, as
    widgets in a notebook); the caller's settings restored on exit."""
    import datasets
    from transformers.utils import logging as hf_logging

    ds, hf = datasets.is_progress_bar_enabled(), hf_logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if ds:
            datasets.enable_progress_bars()
        if hf:
            hf_logging.enable_progress_bar()


def training_entry(func):
    """Decorator of a training entry point (:func:`craftlib.train.train_recipe`): library bars off, and an
    interrupt ends in one line (:class:`Stopped`) that says what was kept. Nested calls pass through."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with _one_line_stops(), quiet_library_bars():
            return func(*args, **kwargs)

    return wrapper


# ------------------------------------------------------------------------------------ checkpoints


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The newest complete ``checkpoint-<step>`` in ``folder``, or ``None``: complete means that
    :func:`work_callback` recorded its time (:data:`ELAPSED_FILE`, written after every file of the Trainer's), so a
    checkpoint that an interrupt cut short is never resumed from."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = [(int(p.name.split("-")[1]), p) for p in folder.glob("checkpoint-*")
             if p.name.split("-")[1].isdigit() and (p / ELAPSED_FILE).is_file()
             and (p / "trainer_state.json").is_file()]
    return max(found)[1] if found else None


def elapsed_at(checkpoint: Path | None) -> float:
    """Seconds of training up to ``checkpoint`` (recorded when it was saved; 0 for none)."""
    if checkpoint is None:
        return 0.0
    try:
        return float(json.loads((checkpoint / ELAPSED_FILE).read_text())["train_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def checkpoint_step(checkpoint: Path | None) -> int | None:
    return int(checkpoint.name.split("-")[1]) if checkpoint is not None else None


def work_callback(minutes: float | None, seconds_before: float = 0.0):
    """A ``transformers.TrainerCallback`` that follows the current training (epoch, step, dev F1: what a stop
    reports) and, with ``minutes``, asks the Trainer for a checkpoint every ``minutes`` of training (0: after every
    optimizer step), recording in it the seconds of training so far (:data:`ELAPSED_FILE`)."""
    from transformers import TrainerCallback

    class KeepTheWork(TrainerCallback):
        def __init__(self):
            self.started = self.saved = time.monotonic()

        def on_train_begin(self, args, state, control, **kwargs):
            self._follow(state)

        def on_step_end(self, args, state, control, **kwargs):
            self._follow(state)
            if minutes is not None and time.monotonic() - self.saved >= minutes * 60:
                control.should_save = True
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):
            now = current()
            if now is not None and logs and "eval_f1" in logs:
                now.dev_f1 = logs["eval_f1"]

        def on_epoch_end(self, args, state, control, **kwargs):
            last = state.log_history[-1] if state.log_history else {}
            now = current()
            if now is not None and "eval_f1" in last:
                now.dev_f1 = last["eval_f1"]

        def on_save(self, args, state, control, **kwargs):
            self.saved = time.monotonic()
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():  # written last: it marks the checkpoint complete (latest_checkpoint)
                atomic_write_json(folder / ELAPSED_FILE,
                                  {"train_seconds": seconds_before + time.monotonic() - self.started})
            for older in folder.parent.glob("checkpoint-*"):  # the latest is all a resume needs
                if older != folder and older.name.split("-")[1].isdigit() and older.is_dir():
                    shutil.rmtree(older, ignore_errors=True)
            now = current()
            if now is not None:
                now.checkpoint_step = state.global_step
                if now.bar is not None:
                    now.bar.kept = f"checkpoint of step {state.global_step} kept"
                    now.bar.update()

        def _follow(self, state):
            now = current()
            if now is not None:
                now.epoch, now.global_step, now.max_steps = state.epoch or 0.0, state.global_step, state.max_steps

    return KeepTheWork()


def resume_note(training: Training | None, checkpoint: Path) -> str:
    step = checkpoint_step(checkpoint)
    if training is not None:
        training.resumed_from = training.checkpoint_step = step
    label = training.label if training is not None else "training"
    return f"{label}: resuming from its checkpoint of step {step} (kept by an interrupted run)"


__all__ = ["Bar", "Session", "Stopped", "Training", "activity", "begin", "checkpoint_minutes", "current", "end",
           "latest_checkpoint", "planned", "quiet_library_bars", "reused", "stop_message", "training",
           "training_bar", "training_entry", "work_callback"]
