"""The time estimate before the wait (craftlib.estimate): workloads from the committed runs, the arithmetic, the
cached calibration, notebook 04's plan line and doctor's block. No assertion on speed."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from craftlib import config, estimate, runs

CAL = {"step_s": 0.05, "token_s": 1e-4, "window_s": 0.002, "threads": 2, "others_busy_before": 0.0,
       "key": "cpu:x86_64 (2 cores, native bf16)|torch 2|bf16|2 threads|minilm", "measured": "2026-12-06T14:00",
       "seconds": 20.0}


def test_workload_of_quick_is_the_committed_runs():
    work = {t.run: t for t in estimate.workload(config.PROFILES["quick"])}
    single = runs.Run(config.published_dir() / "single-minilm-quick-drop0-case-viterbi").metrics()
    assert list(work) == ["single-minilm-quick-drop0-case-viterbi", "augmented-minilm-quick-drop0-case-viterbi",
                          "two-step-minilm-quick-drop0-case-viterbi"]
    assert work["single-minilm-quick-drop0-case-viterbi"].steps == single["steps"][-1]["global_step"]
    assert work["single-minilm-quick-drop0-case-viterbi"].tokens == single["steps"][-1]["tokens_seen"]
    # two-step trains only its step 2 (step 1 is the augmented run, reused)
    two = runs.Run(config.published_dir() / "two-step-minilm-quick-drop0-case-viterbi").metrics()
    assert work["two-step-minilm-quick-drop0-case-viterbi"].steps == two["steps"][-1]["global_step"]
    # a profile whose default runs are not committed: the reference recipe's run of each recipe
    reference = runs.Run(config.published_dir() / "single-minilm-full").metrics()
    full = estimate.workload(config.PROFILES["full"])
    assert full[0].run == "single-minilm-full-case-viterbi"  # what notebook 04 trains, whichever run is read
    if not (config.published_dir() / "single-minilm-full-case-viterbi").is_dir():
        assert full[0].source == "results/single-minilm-full/metrics.json"
        assert full[0].tokens == reference["steps"][-1]["tokens_seen"]
    # the plan's line names the default runs and estimates each (the rerun of a stopped notebook: step 2 only)
    assert estimate.estimate(config.PROFILES["smoke"], cal=CAL, results_dir="/nonexistent",
                             trainings=["two-step-minilm-smoke-case-viterbi"])["trainings"] == 1


def test_workload_of_smoke_comes_from_its_profile():
    smoke = config.get_profile("smoke")
    work = estimate.workload(config.PROFILES["smoke"], results_dir="/nonexistent")
    assert [t.steps for t in work] == [smoke.max_steps] * 3


def test_estimate_arithmetic():
    est = estimate.estimate(config.PROFILES["smoke"], cal=CAL, results_dir="/nonexistent")
    smoke = config.get_profile("smoke")
    one = (smoke.max_steps * CAL["step_s"] + smoke.max_steps * smoke.batch_size * estimate.MEAN_WINDOW_TOKENS
           * CAL["token_s"] + 2 * smoke.max_eval_sentences * CAL["window_s"])
    assert est["trainings"] == 3 and est["notebook04_s"] == pytest.approx(3 * one)
    assert est["tutorial_s"] == pytest.approx(3 * one + estimate.OTHER_NOTEBOOKS_S["smoke"])


def test_calibration_is_cached_per_machine_key(tmp_path, monkeypatch):
    calls = []

    def fake_measure(base_model, batch_size, eval_batch_size):
        calls.append(torch.get_num_threads())
        return {"step_s": 0.1, "token_s": 1e-4, "window_s": 0.003, "step_times": {}}

    monkeypatch.setattr(estimate, "_measure", fake_measure)
    monkeypatch.setenv("CRAFTLIB_THREADS", "1")
    first = estimate.calibrate(data_dir=tmp_path, verbose=False)
    again = estimate.calibrate(data_dir=tmp_path, verbose=False)
    assert calls == [1] and first["cached"] is False and again["cached"] is True
    assert "1 threads" in first["key"] and "torch " + torch.__version__ in first["key"]
    monkeypatch.setenv("CRAFTLIB_THREADS", "2")  # another key: measured again, both kept
    estimate.calibrate(data_dir=tmp_path, verbose=False)
    assert len(calls) == 2 and len(json.loads((tmp_path / "calibration.json").read_text())) == 2
    estimate.calibrate(data_dir=tmp_path, verbose=False, force=True)
    assert len(calls) == 3


def test_real_calibration_runs_and_restores_threads(tmp_path, monkeypatch):
    """The real model, a shortened calibration: positive costs, the caller's thread count untouched."""
    monkeypatch.setattr(estimate, "CALIBRATION_STEPS", 2)
    before = torch.get_num_threads()
    cal = estimate.calibrate(data_dir=tmp_path, verbose=False)
    assert cal["window_s"] > 0 and cal["step_s"] + cal["token_s"] > 0
    assert torch.get_num_threads() == before


def test_notebook_plan(tmp_path, monkeypatch):
    monkeypatch.setattr(estimate, "calibrate", lambda *a, **k: CAL)
    smoke = config.data_spec("smoke", data=tmp_path)
    plan = estimate.notebook_plan(smoke, models_dir=tmp_path)
    assert plan.startswith("Plan: 3 trainings, about ") and "on this CPU (bf16, 2 thread(s))" in plan
    (tmp_path / "augmented-minilm-smoke-case-viterbi").mkdir()
    (tmp_path / "augmented-minilm-smoke-case-viterbi" / "metrics.json").write_text("{}")
    assert estimate.notebook_plan(smoke, models_dir=tmp_path).startswith("Plan: 2 trainings (1 already trained")
    # only two-step asked for, no augmented run: two-step trains it first
    (tmp_path / "augmented-minilm-smoke-case-viterbi" / "metrics.json").unlink()
    assert estimate.notebook_plan(smoke, ["two-step"], models_dir=tmp_path).startswith("Plan: 2 trainings")
    for recipe in estimate.RECIPES:
        (tmp_path / f"{recipe}-minilm-smoke-case-viterbi").mkdir(exist_ok=True)
        (tmp_path / f"{recipe}-minilm-smoke-case-viterbi" / "metrics.json").write_text("{}")
    assert estimate.notebook_plan(smoke, models_dir=tmp_path).startswith("Plan: nothing to train")


def test_report_lines_per_profile_and_recommendation(monkeypatch):
    monkeypatch.setattr(estimate, "calibrate", lambda *a, **k: {**CAL, "cached": True})
    lines = estimate.report_lines()
    assert lines[0].startswith("time estimate on this CPU (bf16, 2 thread(s)), cached calibration")
    for name in config.PROFILES:
        assert any(line.strip().startswith(f"{name} ") and "notebook 04:" in line for line in lines)
    assert lines[-1].strip().startswith("recommendation: ")


@pytest.mark.parametrize("quick_s, word", [(10 * 60, "use the default"), (40 * 60, "before a break"),
                                           (3 * 3600, "use smoke")])
def test_recommendation(quick_s, word):
    assert word in estimate.recommendation(quick_s, 30)


def test_doctor_prints_the_estimate(monkeypatch, capsys, tmp_path):
    from craftlib import doctor
    from craftlib.cli import main

    monkeypatch.setattr(doctor, "run_checks", lambda *a, **k: [doctor.Check("x", doctor.OK, "fine")])
    monkeypatch.setattr(estimate, "report_lines", lambda *a, **k: ["time estimate on this CPU: ..."])
    assert main(["doctor", "--data-dir", str(tmp_path)]) == 0
    assert "time estimate on this CPU" in capsys.readouterr().out
    assert main(["doctor", "--no-estimate", "--data-dir", str(tmp_path)]) == 0
    assert "time estimate" not in capsys.readouterr().out


def test_calibration_lengths_change_every_step_like_crafts_windows():
    lengths = estimate.calibration_lengths(600)
    assert min(lengths) >= 8 and max(lengths) <= 128
    assert 30 <= sum(lengths) / len(lengths) <= 42  # CRAFT's windows average about 35 sub-tokens
    assert sum(a != b for a, b in itertools.pairwise(lengths)) > 0.9 * len(lengths)  # a new shape (almost) every step
    assert lengths == estimate.calibration_lengths(600)
