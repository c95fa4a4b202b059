"""What a learner sees while a model trains: a progress bar per training run and per dev evaluation when someone
is looking (:func:`live_progress`), and one short line per epoch either way, instead of the Trainer's raw dicts."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

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
    :func:`_progress_callback`: a ``tqdm.auto`` bar per training run and per dev evaluation when ``progress``,
    and one short line per epoch either way."""
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
    from transformers import TrainerCallback  # heavy (transformers): imported when training starts

    class CraftlibProgress(TrainerCallback):
        def __init__(self):
            self.bar = self.eval_bar = None
            self.loss = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero and progress:
                self.bar = tqdm(total=state.max_steps, desc="training", unit="step", dynamic_ncols=True)

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
            if not (state.is_world_process_zero and progress):
                return
            if self.eval_bar is None:
                total = len(eval_dataloader) if eval_dataloader is not None else None
                self.eval_bar = tqdm(total=total, desc="dev evaluation", unit="batch", leave=False,
                                     dynamic_ncols=True)
            self.eval_bar.update(1)

        def on_evaluate(self, args, state, control, **kwargs):
            if self.eval_bar is not None:
                self.eval_bar.close()
                self.eval_bar = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            if "loss" in logs:
                self.loss = logs["loss"]
                if self.bar is not None:
                    self.bar.set_postfix(loss=f"{logs['loss']:.3f}", refresh=False)
            if "eval_f1" in logs:
                self._epoch_line(logs, state)

        def on_epoch_end(self, args, state, control, **kwargs):
            # _DevEval (registered before this callback) appends its dev scores to the log history
            last = state.log_history[-1] if state.log_history else {}
            if state.is_world_process_zero and "eval_f1" in last and last.get("step") == state.global_step:
                self._epoch_line(last, state)

        def _epoch_line(self, logs, state):
            loss = logs.get("eval_loss")
            line = (f"epoch {logs.get('epoch', state.epoch or 0):.2f} (step {state.global_step}/{state.max_steps}): "
                    f"dev F1 {logs['eval_f1']:.3f}" + (f", dev loss {loss:.3f}" if loss is not None else "")
                    + (f", train loss {self.loss:.3f}" if self.loss is not None else ""))
            (self.bar.write if self.bar is not None else print)(line)

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return CraftlibProgress()
