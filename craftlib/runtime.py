"""Reproducibility and hardware: seeds, library versions, device and precision.

``craftlib.setup()`` is the one call every notebook makes first.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import random
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from craftlib.errors import ConfigError, CraftlibError

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


#: ``CRAFTLIB_PRECISION``: ``auto`` (default: bf16 on a GPU that supports it, else fp16; bf16 on a CPU with native
#: bf16 instructions, else fp32), or force ``fp32`` / ``bf16`` / ``fp16``.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 matrix products natively (AVX512-BF16 or AMX), where bf16 autocast runs
    about twice as fast as fp32. Elsewhere bf16 is emulated (slower than fp32), so craftlib keeps fp32."""
    try:
        import torch

        probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        if any(p is not None and p() for p in probes):
            return True
    except Exception:  # noqa: BLE001, S110 - private helpers; fall back to the CPU flags
        pass
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def precision_setting(value: str | None = None) -> str:
    """The precision asked for: ``value``, else ``CRAFTLIB_PRECISION``, else ``auto``."""
    value = (value or os.environ.get("CRAFTLIB_PRECISION") or "auto").lower()
    if value not in PRECISIONS:
        raise CraftlibError(f"CRAFTLIB_PRECISION={value!r} is not one of {', '.join(PRECISIONS)}: unset it or pick one.")
    return value


@dataclass
class Device:
    """Where training runs and in which precision (see :data:`PRECISIONS`): mixed precision on a GPU, bf16
    autocast on a CPU with native bf16, fp32 elsewhere."""

    type: str
    name: str
    bf16: bool = False
    fp16: bool = False
    count: int = 0

    @property
    def precision(self) -> str:
        return "bf16" if self.bf16 else "fp16" if self.fp16 else "fp32"


def detect_device(precision: str | None = None) -> Device:
    """The device training uses and its precision (``precision`` / ``CRAFTLIB_PRECISION`` may force one)."""
    import torch

    want = precision_setting(precision)
    if torch.cuda.is_available():
        bf16 = bool(torch.cuda.is_bf16_supported()) if want == "auto" else want == "bf16"
        fp16 = (not bf16) if want == "auto" else want == "fp16"
        return Device("cuda", torch.cuda.get_device_name(0), bf16=bf16, fp16=fp16, count=torch.cuda.device_count())
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return Device("mps", "Apple MPS", count=1)
    native = cpu_has_native_bf16()
    name = f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores{', native bf16' if native else ''})"
    return Device("cpu", name, bf16=native if want == "auto" else want == "bf16", count=0)


def seed_everything(seed: int = 42) -> None:
    """Seed Python, NumPy and PyTorch (CPU and all GPUs) so the same data gives the same numbers. ``seed``: an integer
    from 0 to 2**32-1 (NumPy's limit), else :class:`~craftlib.errors.ConfigError`."""
    import numpy as np
    import torch

    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**32 - 1:
        raise ConfigError(f"seed={seed!r}: a seed must be an integer from 0 to {2**32 - 1} (e.g. SEED = 42).")

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


# ------------------------------------------------------------------------------------------ notebooks


@contextlib.contextmanager
def datasets_bars(enabled: bool):
    """``datasets``' own progress bars (``map``'s "tokenizing", loading a recipe's data) on or off for a block;
    the caller's setting is restored on exit (``train --no-progress`` silences them)."""
    import datasets

    was = datasets.is_progress_bar_enabled()
    if was and not enabled:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was and not enabled:
            datasets.enable_progress_bars()


def has_widget_frontend() -> bool:
    """Whether ipywidgets will be drawn: inside an IPython kernel that a Jupyter server started
    (``JPY_SESSION_NAME`` is set for it), unless ``CRAFTLIB_WIDGETS=0``. ``CRAFTLIB_WIDGETS=1`` forces widgets.
    Headless runs (papermill, nbclient) have a kernel but nobody to draw the widgets."""
    forced = os.environ.get("CRAFTLIB_WIDGETS")
    if forced in ("0", "1"):
        return forced == "1"
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    in_kernel = shell is not None and hasattr(shell, "kernel")
    return in_kernel and bool(os.environ.get("JPY_SESSION_NAME") or os.environ.get("VSCODE_PID"))


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
