"""Inference engines for a trained tagger: torch (fp32, bf16 autocast), ONNX Runtime (fp32) and ONNX int8.

:func:`export_onnx` writes ``<run>/onnx/model.onnx`` (the fine-tuned model traced with ``torch.onnx.export``,
dynamic batch and sequence axes) and ``<run>/onnx/model-int8.onnx`` (ONNX Runtime's dynamic quantisation: int8
weights of every MatMul, activations quantised on the fly), with ``export.json`` recording the weights they were
exported from, so a retrained model is never served by a stale export.

:func:`load_engine` gives an object with ``logits(batch) -> numpy array`` whatever runs underneath; ``"auto"``
picks ONNX int8 when a current export and onnxruntime are there (the fastest on a CPU, see
``results/engines-*.json``), else torch (bf16 on a CPU with native bf16 or a GPU, fp32 elsewhere, like training).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

from craftlib import cache
from craftlib.errors import CraftlibError, RunError
from craftlib.models import load_model, load_tokenizer
from craftlib.runtime import cpu_has_native_bf16, detect_device

#: Engine names a caller may ask for ("auto": see :func:`choose_engine`).
ENGINES: tuple[str, ...] = ("auto", "torch", "torch-bf16", "onnx", "onnx-int8")
ONNX_DIRNAME = "onnx"
ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model-int8.onnx"}
EXPORT_RECORD = "export.json"
#: Input names of the exported graph, in order (token_type_ids only when the model has them).
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17


def _weights_fingerprint(model_dir: Path) -> dict:
    for name in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json"):
        if (model_dir / name).is_file():
            fp = cache.file_fingerprint(model_dir / name)
            return {"file": name, "size": fp["size"], "mtime_ns": fp["mtime_ns"]}
    raise RunError(f"{model_dir} holds no weights to export: give a models/<run> folder written by `train`.")


def onnx_dir(model_dir: str | os.PathLike) -> Path:
    return Path(model_dir) / ONNX_DIRNAME


def export_status(model_dir: str | os.PathLike) -> dict[str, bool]:
    """Which ONNX engines have a current export in ``<model_dir>/onnx/`` (exported from today's weights)."""
    model_dir = Path(model_dir)
    folder = onnx_dir(model_dir)
    try:
        record = json.loads((folder / EXPORT_RECORD).read_text())
        current = record.get("weights") == _weights_fingerprint(model_dir)
    except (OSError, ValueError, RunError):
        current = False
    return {name: current and (folder / f).is_file() for name, f in ONNX_FILES.items()}


def export_onnx(model_dir: str | os.PathLike, quantize: bool = True, force: bool = False) -> dict[str, Path]:
    """Export the model of ``model_dir`` to ``<model_dir>/onnx/model.onnx`` and (``quantize``) its int8 version;
    reused when current (``force`` re-exports). Returns ``{engine: path}``."""
    import torch

    model_dir = Path(model_dir)
    folder = onnx_dir(model_dir)
    status = export_status(model_dir)
    if not force and status["onnx"] and (status["onnx-int8"] or not quantize):
        return {k: folder / f for k, f in ONNX_FILES.items() if status[k]}
    try:
        import onnxruntime  # noqa: F401
        from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic
    except ImportError as err:
        raise CraftlibError("ONNX export needs onnx and onnxruntime: pip install -e '.[dev]' (or pip install onnx "
                            "onnxruntime).") from err
    tokenizer = load_tokenizer(model_dir)
    model = load_model(model_dir).float().eval()
    names = [n for n in INPUT_NAMES if n in tokenizer.model_input_names]
    sample = tokenizer(["Pax6 is expressed in the lens.", "A second sentence"], padding=True, return_tensors="pt")
    args = tuple(sample[n] for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch", 1: "sequence"}}
    t0 = time.perf_counter()
    with cache.atomic_dir(folder) as tmp, warnings.catch_warnings():
        # the TorchScript exporter's deprecation and tracer notes: the traced graph is checked against torch in
        # tests/test_tagger.py, and they would show as red text in a notebook
        warnings.simplefilter("ignore")
        fp32 = tmp / ONNX_FILES["onnx"]
        with torch.inference_mode():
            torch.onnx.export(model, args, str(fp32), input_names=names, output_names=["logits"],
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        if quantize:
            # ONNX Runtime's recommended pre-processing (shape inference, graph optimisation), then int8 weights
            pre = tmp / "pre.onnx"
            quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
            quantize_dynamic(str(pre), str(tmp / ONNX_FILES["onnx-int8"]), weight_type=QuantType.QInt8)
            pre.unlink()
        record = {"weights": _weights_fingerprint(model_dir), "inputs": names, "opset": OPSET,
                  "quantization": ("onnxruntime quant_pre_process + quantize_dynamic, QInt8 weights" if quantize
                                   else None),
                  "seconds": round(time.perf_counter() - t0, 1)}
        (tmp / EXPORT_RECORD).write_text(json.dumps(record, indent=2))
    return {k: folder / f for k, f in ONNX_FILES.items() if (folder / f).is_file()}


def choose_engine(model_dir: str | os.PathLike) -> str:
    """``onnx-int8`` when ``<model_dir>/onnx/`` holds a current int8 export and onnxruntime is installed, else
    ``onnx`` likewise, else ``torch``."""
    status = export_status(model_dir)
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torch"
    return "onnx-int8" if status["onnx-int8"] else "onnx" if status["onnx"] else "torch"


class TorchEngine:
    """The fine-tuned model in torch, fp32 or under bf16 autocast."""

    def __init__(self, model_dir: Path, bf16: bool = False):
        self.name = "torch-bf16" if bf16 else "torch"
        self.model = load_model(model_dir).eval()
        self.device = next(self.model.parameters()).device
        self.bf16 = bf16
        self.id2label = {int(k): v for k, v in self.model.config.id2label.items()}

    def logits(self, batch: dict):
        import contextlib

        import torch

        tensors = {k: torch.as_tensor(v, device=self.device) for k, v in batch.items()}
        ctx = (torch.autocast(device_type=self.device.type, dtype=torch.bfloat16) if self.bf16
               else contextlib.nullcontext())
        with torch.inference_mode(), ctx:
            return self.model(**tensors).logits.float().cpu().numpy()


class OnnxEngine:
    """An exported graph run by ONNX Runtime on the CPU."""

    def __init__(self, model_dir: Path, name: str):
        import onnxruntime as ort

        status = export_status(model_dir)
        if not status[name]:
            raise RunError(f"{model_dir} has no current {name} export: run `python -m craftlib export-onnx --model "
                           f"{model_dir}` first (or use --engine torch).")
        self.name = name
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_dir(model_dir) / ONNX_FILES[name]), opts,
                                            providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        config = json.loads((Path(model_dir) / "config.json").read_text())
        self.id2label = {int(k): v for k, v in config["id2label"].items()}

    def logits(self, batch: dict):
        import numpy as np

        feed = {k: np.asarray(batch[k], dtype=np.int64) for k in self.inputs}
        return self.session.run(["logits"], feed)[0]


def load_engine(model_dir: str | os.PathLike, engine: str = "auto"):
    """An engine for ``model_dir`` (see :data:`ENGINES`)."""
    model_dir = Path(model_dir)
    if engine not in ENGINES:
        raise CraftlibError(f"Unknown engine {engine!r}: choose one of {', '.join(ENGINES)}.")
    if engine == "auto":
        engine = choose_engine(model_dir)
        if engine == "torch":
            engine = "torch-bf16" if detect_device().bf16 else "torch"
    if engine.startswith("torch"):
        return TorchEngine(model_dir, bf16=engine == "torch-bf16")
    return OnnxEngine(model_dir, engine)


def hardware() -> dict:
    """The machine a speed was measured on: CPU model, cores this process may use, the instruction sets that
    decide bf16 and int8 speed (AVX2, AVX-512, VNNI, AVX512-BF16, AMX), native bf16, GPU if any."""
    import platform

    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("", platform.machine(), platform.processor()):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    out = {"cpu": model, "cores": cores, "machine_cores": os.cpu_count(), "flags": [f for f in wanted if f in flags],
           "native_bf16": cpu_has_native_bf16(), "system": f"{platform.system()} {platform.release()}"}
    try:
        import torch

        out["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            out["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return out


def describe(hw: dict) -> str:
    """One line for a table or a plot title."""
    flags = ", ".join(hw.get("flags", [])) or "no AVX2"
    return f"{hw['cpu']}, {hw['cores']} cores ({flags}{'; native bf16' if hw.get('native_bf16') else ''})"


def file_size_mb(model_dir: str | os.PathLike, engine: str) -> float:
    """Size on disk of what an engine loads (the weights file for torch, the .onnx file otherwise)."""
    model_dir = Path(model_dir)
    if engine.startswith("torch"):
        path = model_dir / _weights_fingerprint(model_dir)["file"]
    else:
        path = onnx_dir(model_dir) / ONNX_FILES[engine]
    return round(path.stat().st_size / 1e6, 2)


__all__ = ["ENGINES", "OnnxEngine", "TorchEngine", "choose_engine", "describe", "export_onnx", "export_status",
           "file_size_mb", "hardware", "load_engine", "onnx_dir"]
