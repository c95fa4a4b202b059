"""What a training cell shows and what a stop keeps (craftlib.session), without training: named bars, the overall
line, display handles instead of widgets, the one-line stop, the checkpoint setting."""

from __future__ import annotations

from typing import ClassVar

import pytest

from craftlib import session
from craftlib.errors import ConfigError


class FakeHandle:
    """An IPython display handle that records what it was updated to."""

    shown: ClassVar[list[FakeHandle]] = []

    def __init__(self, bundle):
        self.bundles = [bundle]
        FakeHandle.shown.append(self)

    def update(self, bundle, raw=False):
        assert raw
        self.bundles.append(bundle)


@pytest.fixture
def kernel(monkeypatch):
    """As in a live notebook kernel: bars are HTML outputs drawn through display handles."""
    import IPython.display

    FakeHandle.shown = []
    monkeypatch.setattr(session, "in_kernel", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda bundle, raw=False, display_id=None: FakeHandle(bundle))
    monkeypatch.setattr(session, "REDRAW_SECONDS", 0.0)
    return FakeHandle


def test_checkpoint_minutes_setting(monkeypatch):
    monkeypatch.delenv("CRAFTLIB_CHECKPOINT_MINUTES", raising=False)
    assert session.checkpoint_minutes() == session.CHECKPOINT_MINUTES == 10
    assert session.checkpoint_minutes("0") == 0 and session.checkpoint_minutes("2.5") == 2.5
    assert session.checkpoint_minutes("off") is None
    for bad in ("-1", "soon"):
        with pytest.raises(ConfigError, match="CRAFTLIB_CHECKPOINT_MINUTES"):
            session.checkpoint_minutes(bad)


def test_trainings_are_named_k_of_n_under_an_overall_line(capsys):
    runs = ["augmented-minilm-smoke", "two-step-minilm-smoke"]  # the plan: what is to train (single exists)
    with session.planned(runs, estimate_s=90, progress=False) as plan:
        session.reused("single-minilm-smoke", "models/single-minilm-smoke")
        with session.training("augmented-minilm-smoke") as t:
            assert t.label == "augmented-minilm-smoke (1 of 2)"
        with session.training("two-step-minilm-smoke", "step 2") as t:
            assert t.label == "two-step-minilm-smoke step 2 (2 of 2)"
            assert plan.overall().startswith("this cell: 1 of 2 trainings done (1 finished run(s) reused); now two-st")
            t.global_step, t.dev_f1 = 8, 0.25
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("single-minilm-smoke: a finished run with the same settings") and "reused" in out[0]
    assert "training augmented-minilm-smoke (1 of 2)" in out
    assert any(x.startswith("done: two-step-minilm-smoke step 2 (2 of 2): 8 steps in 0:0") and x.endswith("dev F1 0.250")
               for x in out), out
    assert out[-1].startswith("this cell: 2 training(s) in 0:0") and "(estimated about 1:30)" in out[-1]
    assert "1 finished run(s) reused" in out[-1]
    assert session.current() is None and session.active_session() is None


def test_bars_in_a_kernel_are_display_handles_that_collapse_to_one_line(kernel):
    """No ipywidgets: each bar is an ordinary output updated in place, which a saved notebook keeps as its last
    state (a reopened notebook shows that line, never 'Error displaying widget: model not found')."""
    with session.planned(["single-minilm-smoke"], progress=True), \
            session.training("single-minilm-smoke", progress=True):
        bar, owned = session.training_bar(8, progress=True)
        assert not owned and bar.desc == "single-minilm-smoke (1 of 1)"
        for step in range(1, 9):
            bar.update(step, postfix="loss 1.234")
        with session.activity(3, "scoring test", progress=True) as advance:  # on the training's own bar
            advance()
            assert "scoring test 1/3 batches" in bar.text()
    overall, training = kernel.shown  # the overall line and one bar; the prediction pass drew none of its own
    bundles = [b for h in kernel.shown for b in h.bundles]
    assert all(set(b) <= {"text/plain", "text/html"} for b in bundles)  # no widget view
    assert "<progress" in training.bundles[1]["text/html"] and "8/8 steps" in training.bundles[-2]["text/plain"]
    assert training.bundles[-1] == {"text/plain": training.bundles[-1]["text/plain"]}  # finished: one plain line
    assert training.bundles[-1]["text/plain"].startswith("done: single-minilm-smoke (1 of 1): no step in")
    assert overall.bundles[-1]["text/plain"].startswith("this cell: 1 training(s) in ")


def test_a_pass_without_a_training_draws_a_bar_that_disappears(kernel):
    with session.activity(2, "tagging", progress=True) as advance:
        advance(2)
    (bar,) = kernel.shown
    assert bar.bundles[-1] == {"text/plain": ""}


def test_an_interrupt_is_one_line_that_says_what_is_kept(monkeypatch):
    with pytest.raises(session.Stopped) as stopped, session.planned(["single-x", "two-step-x"], progress=False):
        with session.training("single-x"):
            pass
        with session.training("two-step-x", "step 2") as t:
            t.epoch, t.global_step, t.max_steps, t.checkpoint_step = 0.4, 6, 10, 5
            raise KeyboardInterrupt
    assert str(stopped.value) == ("Stopped during two-step-x step 2 (2 of 2) at epoch 0.40 (6 of 10 steps done); kept: "
                                  "1 finished run(s), its checkpoint of step 5; run the same command again to resume.")
    assert isinstance(stopped.value, KeyboardInterrupt)  # a notebook does not run the queued cells
    assert session.current() is None
    monkeypatch.setattr(session, "in_kernel", lambda: True)
    with pytest.raises(session.Stopped, match=r"no checkpoint of it yet \(it restarts\); rerun the cell to resume"), \
            session.planned(["single-x"], progress=False), session.training("single-x") as t:
        t.epoch, t.max_steps = 0.1, 10
        raise KeyboardInterrupt


def test_ipython_shows_a_stop_as_one_line(capsys):
    """What the notebook shows: IPython renders Stopped through _render_traceback_, with no traceback."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        shell.user_ns["session"] = session
        shell.run_cell("raise session.Stopped('Stopped during single-x (1 of 1); rerun the cell to resume.')")
    finally:
        InteractiveShell.clear_instance()
    shown = [x for x in capsys.readouterr().out.splitlines() if x.strip()]
    assert shown == ["Stopped during single-x (1 of 1); rerun the cell to resume."], shown
