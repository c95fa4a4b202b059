"""What a learner sees while a model trains: the training's bar (:mod:`craftlib.session`: named after its run and
"k of N") when someone is looking (:func:`live_progress`), and one short line per epoch either way, instead of the
Trainer's raw dicts."""

from __future__ import annotations

import sys

from craftlib import session
from craftlib.runtime import has_widget_frontend


def live_progress() -> bool:
    """Whether progress bars have someone to look at them: a Jupyter frontend (JupyterLab, VS Code) drawing a
    live kernel, or a terminal. ``False`` under papermill/nbclient and when output goes to a file (CI logs)."""
    ipython = sys.modules.get("IPython")
    if ipython is not None and ipython.get_ipython() is not None and hasattr(ipython.get_ipython(), "kernel"):
        return has_widget_frontend()
    return sys.stderr.isatty()


def use_craftlib_progress(trainer, progress: bool) -> None:
    """Replace the Trainer's printer/progress callbacks (which print raw dicts of numbers) with
    :func:`_progress_callback`: a bar per training, named after its run (:mod:`craftlib.session`), when
    ``progress``, and one short line per epoch either way."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    printers = [PrinterCallback, ProgressCallback]
    try:  # the notebook printer needs IPython, and Trainer adds it only where IPython runs a notebook
        from transformers.utils.notebook import NotebookProgressCallback
    except ImportError:
        pass
    else:
        printers.append(NotebookProgressCallback)
    for cls in printers:
        trainer.remove_callback(cls)
    trainer.add_callback(_progress_callback(progress))


def _progress_callback(progress: bool):
    """The Trainer's display: the current training's bar (:func:`craftlib.session.training_bar`: named after its run
    and "k of N", one line once done), its loss, and one short line per epoch either way."""
    from transformers import TrainerCallback  # heavy (transformers): imported when training starts

    class CraftlibProgress(TrainerCallback):
        def __init__(self):
            self.bar, self.owned = None, False
            self.loss, self.printed_step = None, None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero and progress:
                self.bar, self.owned = session.training_bar(state.max_steps, state.global_step, progress)

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(state.global_step)
            self._dev_line(state)  # dev scored where an epoch block ends (fresh replacements)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            if "loss" in logs:
                self.loss = logs["loss"]
                if self.bar is not None:
                    self.bar.update(postfix=f"loss {logs['loss']:.3f}")
            if "eval_f1" in logs:
                self._epoch_line(logs, state)

        def on_epoch_end(self, args, state, control, **kwargs):
            self._dev_line(state)

        def _dev_line(self, state):
            # _DevEval (registered before this callback) appends its dev scores to the log history
            last = state.log_history[-1] if state.log_history else {}
            if (state.is_world_process_zero and "eval_f1" in last and last.get("step") == state.global_step
                    and self.printed_step != state.global_step):
                self.printed_step = state.global_step
                self._epoch_line(last, state)

        def _epoch_line(self, logs, state):
            loss = logs.get("eval_loss")
            now = session.current()
            line = ((f"{now.label}: " if now is not None else "")
                    + f"epoch {logs.get('epoch', state.epoch or 0):.2f} (step {state.global_step}/{state.max_steps}): "
                    f"dev F1 {logs['eval_f1']:.3f}" + (f", dev loss {loss:.3f}" if loss is not None else "")
                    + (f", train loss {self.loss:.3f}" if self.loss is not None else ""))
            (self.bar.write if self.bar is not None else print)(line)

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None and self.owned:  # a bar of its own (no current training): one line now
                self.bar.close(f"done: training, {state.global_step} steps")
                self.bar = None
            elif self.bar is not None:  # the training's bar: it becomes one line once the run is written
                self.bar.note("trained; scoring and saving")

    return CraftlibProgress()
