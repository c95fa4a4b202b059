from __future__ import annotations

import pytest

from craftlib import config


def test_labels_fixed_order():
    assert len(config.LABELS) == 13
    assert config.LABELS[0] == "O"
    assert config.LABELS[1:3] == ("B-Sequence", "I-Sequence")
    assert config.LABELS[-2:] == ("B-Chemical", "I-Chemical")
    assert all(config.LABEL2ID[label] == i for i, label in enumerate(config.LABELS))


def test_profiles_and_dataset_names(monkeypatch, tmp_path):
    monkeypatch.delenv("CRAFTLIB_PROFILE", raising=False)
    assert config.get_profile().name == "quick"
    assert config.get_profile("full").epochs == 4
    assert config.get_profile("full").learning_rate == 3e-5
    assert config.get_profile("smoke", epochs=2, max_steps=-1).epochs == 2
    with pytest.raises(ValueError, match="Unknown profile"):
        config.get_profile("huge")
    assert config.dataset_name("full") == "craft-proper"
    assert config.dataset_name("smoke", "extensions") == "craft-extensions-smoke"
    with pytest.raises(ValueError, match="annotation set"):
        config.dataset_name("full", "both")
    monkeypatch.setenv("CRAFTLIB_DATA_DIR", str(tmp_path))
    assert config.processed_dir("quick") == tmp_path / "processed" / "craft-proper"
    assert config.data_dir(tmp_path / "x") == tmp_path / "x"


def test_settings_from_environment(monkeypatch):
    monkeypatch.delenv("CRAFT_SOURCE", raising=False)
    assert config.craft_source() == config.CRAFT_URL
    monkeypatch.setenv("CRAFT_SOURCE", "/tmp/craft.tar.gz")
    assert config.craft_source() == "/tmp/craft.tar.gz"
    assert config.craft_source("/other") == "/other"


def test_unknown_profile_in_the_environment_is_a_clear_error(monkeypatch):
    from craftlib.errors import ConfigError

    monkeypatch.setenv("CRAFTLIB_PROFILE", "huge")
    with pytest.raises(ConfigError, match="CRAFTLIB_PROFILE='huge'.*smoke, quick, full"):
        config.get_profile()


@pytest.mark.parametrize("overrides, message", [
    ({"epochs": 0, "max_steps": -1}, "epochs=0 .must be > 0"),
    ({"learning_rate": 0.0}, "learning_rate=0.0 .must be > 0"),
    ({"learning_rate": -1e-4}, "learning_rate=-0.0001"),
    ({"max_steps": 0}, "max_steps=0"),
    ({"max_train_sentences": 0}, "max_train_sentences=0"),
    ({"epochs": 0}, "epochs=0"),  # on smoke
    ({"epochs": 2}, "no effect.*max_steps=8.*--max-steps -1"),  # smoke's max_steps would silently win
])
def test_hyperparameters_that_train_nothing_are_refused(overrides, message):
    from craftlib.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        config.get_profile("smoke", **overrides)
    assert config.get_profile("quick", epochs=2).epochs == 2  # quick trains by epochs: fine
