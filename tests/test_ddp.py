"""Data-parallel training really shards: two CPU processes (gloo) under ``torchrun``.

Each process must train on its own half of the windows (half the optimizer steps of one process), and only
the main process writes the run folder, once, with complete metrics. Runs the smoke profile of the local CRAFT
copy with a tiny random BERT (about half a minute on 2 cores).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_local_craft
from tests.test_train import tiny_model_dir  # noqa: F401  (fixture)


def _train(args: list[str], env: dict, cwd: Path, nproc: int) -> subprocess.CompletedProcess:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if nproc > 1:
        cmd = [torchrun, "--standalone", f"--nproc_per_node={nproc}", "-m", "craftlib", *args]
    else:
        cmd = [sys.executable, "-m", "craftlib", *args]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.skipif(sys.platform == "win32", reason="torchrun with gloo is tested on Linux/macOS")
def test_torchrun_two_cpu_processes_shard_the_data(tmp_path, tiny_model_dir):  # noqa: F811
    source = require_local_craft()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRAFTLIB_", "CRAFT_"))}
    env.update({"CRAFT_SOURCE": source, "CRAFT_SHA256": os.environ.get("CRAFT_SHA256", ""), "CRAFTLIB_DATA_DIR": str(tmp_path / "data"),
                "CRAFTLIB_PRECISION": "fp32", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
                "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    args = ["train", "--recipe", "single", "--profile", "smoke", "--base-model", str(tiny_model_dir),
            "--max-steps", "-1", "--no-progress"]
    runs = {}
    for nproc in (1, 2):
        models = tmp_path / f"models-{nproc}"
        proc = _train(args + ["--models-dir", str(models)], env, tmp_path, nproc)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        run_dirs = [d for d in models.iterdir()]
        assert len(run_dirs) == 1, f"one run folder expected, found {run_dirs}"
        assert not [p for p in models.rglob("*") if p.name.startswith((".build-", "checkpoint"))]
        metrics = json.loads((run_dirs[0] / "metrics.json").read_text())
        runs[nproc] = (run_dirs[0], metrics)

    one, two = runs[1][1]["steps"][-1], runs[2][1]["steps"][-1]
    windows = one["train_windows"]
    assert two["train_windows"] == windows
    assert one["processes"] == 1 and two["processes"] == 2
    assert one["global_step"] == math.ceil(windows / 8)
    assert two["global_step"] == math.ceil(windows / 16), "each process must see half of the batches"
    # the sub-tokens seen by both processes together cover the training set about once (the distributed sampler
    # repeats a few windows to give both processes equal shards), not twice as when each trains on everything
    assert one["tokens_seen"] <= two["tokens_seen"] < 1.5 * one["tokens_seen"]
    # outputs written once, complete: every dev/test sentence predicted and scored
    run_dir, metrics = runs[2]
    for split, key in (("validation", "dev"), ("test", "test")):
        lines = (run_dir / f"predictions_{split}.jsonl").read_text().splitlines()
        assert len(lines) == metrics[key]["sentences"] > 0
    assert (run_dir / "model.safetensors").is_file() and (run_dir / "README.md").is_file()
