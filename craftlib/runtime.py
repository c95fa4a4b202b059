"""Reproducibility and hardware: seeds, library versions, device and precision.

``craftlib.setup()`` is the one call every notebook makes first.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import random
from dataclasses import asdict, dataclass, field

#: Distributions whose versions are recorded in metrics files and model cards.
TRACKED_PACKAGES = (
    "craftlib", "torch", "transformers", "datasets", "accelerate", "tokenizers", "seqeval", "obonet",
    "conllu", "numpy", "papermill",
)


def versions(packages: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``packages`` (``"not installed"`` for missing ones) plus Python's."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass
class Device:
    """Where training runs: ``cuda`` with mixed precision when a GPU exists, else ``cpu`` in fp32."""

    type: str
    name: str
    bf16: bool = False
    fp16: bool = False
    count: int = 0

    @property
    def precision(self) -> str:
        return "bf16" if self.bf16 else "fp16" if self.fp16 else "fp32"


def detect_device() -> Device:
    import torch

    if torch.cuda.is_available():
        bf16 = bool(torch.cuda.is_bf16_supported())
        return Device("cuda", torch.cuda.get_device_name(0), bf16=bf16, fp16=not bf16, count=torch.cuda.device_count())
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return Device("mps", "Apple MPS", count=1)
    return Device("cpu", f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)", count=0)


def seed_everything(seed: int = 42) -> None:
    """Seed Python, NumPy and PyTorch (CPU and all GPUs) so the same data gives the same numbers."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


@dataclass
class SetupInfo:
    seed: int
    device: Device
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["device"]["precision"] = self.device.precision
        return d


def setup(seed: int = 42, verbose: bool = True) -> SetupInfo:
    """Seed everything, detect the device, collect versions; print one short line."""
    seed_everything(seed)
    info = SetupInfo(seed=seed, device=detect_device(), versions=versions())
    if verbose:
        v = info.versions
        print(
            f"seed={seed} | device={info.device.type} ({info.device.name}, {info.device.precision}) | "
            f"torch {v['torch']} | transformers {v['transformers']} | datasets {v['datasets']}"
        )
    return info
