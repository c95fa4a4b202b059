"""Bad input and faults reach the user as one clear line (exit status 2), never as a traceback; real bugs keep
their traceback; ``--debug`` / ``CRAFTLIB_DEBUG=1`` show it for everything."""

from __future__ import annotations

import errno
import json
import os

import pytest

from craftlib import cache, cli, config
from tests.conftest import FIXTURES

ROOT = FIXTURES / "craft" / "CRAFT-5.0.2"
PROFILE_COMMANDS = [["data"], ["entity-lists"], ["augment"], ["baseline"], ["train"], ["benchmark"]]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    """No setting from the shell; should a refused command start work anyway, it is tiny and stays in tmp_path."""
    for var in ("CRAFTLIB_PROFILE", "CRAFTLIB_DEBUG", "CRAFT_SHA256", "CRAFTLIB_ONTOLOGY_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CRAFT_SOURCE", str(ROOT))
    for var in ("CRAFTLIB_DATA_DIR", "CRAFTLIB_MODELS_DIR", "CRAFTLIB_RESULTS_DIR"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))


def _exit_code(argv) -> int:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    return info.value.code


@pytest.mark.parametrize("command", PROFILE_COMMANDS, ids=lambda c: c[0])
def test_unknown_profile_is_refused_by_every_command(command, capsys):
    assert _exit_code(command + ["--profile", "huge"]) == 2
    assert "unknown profile 'huge': choose one of smoke, quick, full" in capsys.readouterr().err


@pytest.mark.parametrize("command", PROFILE_COMMANDS, ids=lambda c: c[0])
def test_unknown_profile_in_the_environment_is_refused_before_any_work(command, monkeypatch, capsys):
    monkeypatch.setenv("CRAFTLIB_PROFILE", "huge")
    assert _exit_code(command) == 2
    assert "CRAFTLIB_PROFILE='huge' is not a profile" in capsys.readouterr().err


SEED_COMMANDS = [["augment"], ["train"], ["benchmark"], ["compare", "--runs", "a", "b"]]


@pytest.mark.parametrize("command", SEED_COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("seed", ["-1", "1099511627776", str(2**32)])
def test_a_seed_out_of_range_is_refused_by_every_command(command, seed, capsys):
    # `augment --seed -1` used to equal --seed 1; `train --seed 1099511627776` ended in NumPy's traceback
    assert _exit_code(command + ["--seed", seed]) == 2
    assert "the seed must be an integer from 0 to 4294967295" in capsys.readouterr().err


@pytest.mark.parametrize("command", SEED_COMMANDS, ids=lambda c: c[0])
def test_the_largest_seed_is_accepted_by_every_command(command):
    assert cli.build_parser().parse_args(command + ["--seed", str(2**32 - 1)]).seed == 2**32 - 1


def test_seeding_from_python_refuses_a_seed_numpy_cannot_take():
    from craftlib import runtime
    from craftlib.errors import ConfigError

    with pytest.raises(ConfigError, match="from 0 to 4294967295"):
        runtime.seed_everything(1099511627776)


def test_a_full_disk_while_saving_a_model_is_one_error_line(tmp_path, monkeypatch, capsys):
    """safetensors reports a full disk as SafetensorError, not OSError."""
    import safetensors
    import transformers.modeling_utils as mu
    from transformers import BertConfig, BertForTokenClassification

    from craftlib import train

    def full(*args, **kwargs):
        raise safetensors.SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                                          'message: "No space left on device" })')

    monkeypatch.setattr(mu, "safe_save_file", full)
    model = BertForTokenClassification(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
                                                  num_attention_heads=1, intermediate_size=8))

    def fake_train(*args, **kwargs):
        with cache.atomic_dir(tmp_path / "models" / "run") as tmp:
            model.save_pretrained(tmp)

    monkeypatch.setattr(train, "train_recipe", fake_train)
    assert cli.main(["train", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line.lower()]  # (after the bar of the save)
    assert len(errors) == 1 and errors[0].startswith("error: No space left on the device")
    assert "run the same command again" in errors[0] and "Traceback" not in err
    assert not (tmp_path / "models" / "run").exists()


def test_every_command_module_is_imported_never_skipped(monkeypatch):
    """An import error in a stage module is a bug: the parser fails loudly instead of dropping the command."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", cli.COMMAND_MODULES + ("craftlib.no_such_stage",))
    with pytest.raises(ModuleNotFoundError, match="no_such_stage"):
        cli.build_parser()


def _data(tmp_path, *extra):
    return ["data", "--source", str(ROOT), "--data-dir", str(tmp_path / "data"), "--profile", "quick", *extra]


def _disk_full(monkeypatch, tmp_path):
    import datasets

    def full(self, path, *args, **kwargs):
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "half-written.arrow"), "wb") as fh:
            fh.write(b"x" * 10)
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(datasets.DatasetDict, "save_to_disk", full)


def test_full_disk_is_a_clear_error_and_leaves_nothing_half_written(tmp_path, monkeypatch, capsys):
    _disk_full(monkeypatch, tmp_path)
    assert cli.main(_data(tmp_path)) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # (after the progress bar)
    assert last.startswith("error: No space left on the device holding") and "--data-dir" in last
    assert "corrupt" not in err and "Traceback" not in err
    out = config.processed_dir("quick", "proper", tmp_path / "data")
    assert not (out / "stats.json").exists() and not [p for p in out.iterdir() if p.name.startswith(".")]


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    _disk_full(monkeypatch, tmp_path)
    with pytest.raises(OSError, match="No space left"):
        cli.main(["--debug", *_data(tmp_path)])
    monkeypatch.setenv("CRAFTLIB_DEBUG", "1")
    with pytest.raises(OSError, match="No space left"):
        cli.main(_data(tmp_path))


def test_a_real_bug_is_never_swallowed(tmp_path, monkeypatch):
    import dataclasses

    from craftlib import stages

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setitem(stages.STAGES, "dataset", dataclasses.replace(stages.STAGES["dataset"], build=bug))
    with pytest.raises(ZeroDivisionError):
        cli.main(_data(tmp_path))


def test_read_only_data_folder_monkeypatched(tmp_path, monkeypatch, capsys):
    """Runs everywhere, also as root (where chmod does not stop writes): the write is made to fail."""

    def denied(*args, dir=None, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(dir))

    monkeypatch.setattr(cache.tempfile, "mkdtemp", denied)
    assert cli.main(_data(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "Cannot write" in err and "read-only or not yours" in err and "Traceback" not in err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_data_folder_chmod(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o555)
    try:
        assert cli.main(_data(tmp_path)) == 2
    finally:
        data.chmod(0o755)
    assert "Cannot write" in capsys.readouterr().err


def test_malformed_metrics_under_results_is_a_clear_error(tmp_path, capsys):
    run = tmp_path / "results" / "single-minilm-quick"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text('{"run": "single-minilm-quick", "test": {"f1": 0.5')
    assert cli.main(["results", "--results-dir", str(tmp_path / "results")]) == 2
    assert "metrics.json is not valid JSON" in capsys.readouterr().err
    (run / "metrics.json").write_text(json.dumps({"run": "single-minilm-quick", "test": {"f1": "high"}}))
    assert cli.main(["results", "--results-dir", str(tmp_path / "results")]) == 2
    assert "test scores precision, recall, f1, accuracy are missing or not numbers" in capsys.readouterr().err


def test_a_stopped_training_is_one_line_on_the_command_line(monkeypatch, capsys):
    """Ctrl-C during `train`: the line of craftlib.session.Stopped (where, what is kept, how to resume), exit 130."""
    from craftlib import session, train

    line = "Stopped during single-minilm-smoke at epoch 0.15 (3 of 8 steps done); kept: its checkpoint of step 3; " \
           "run the same command again to resume."

    def stopped(*args, **kwargs):
        raise session.Stopped(line)

    monkeypatch.setattr(train, "train_recipe", stopped)
    assert cli.main(["train", "--profile", "smoke"]) == 130
    assert capsys.readouterr().err == line + "\n"
