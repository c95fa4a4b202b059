"""``python -m craftlib doctor``: is this machine ready for the tutorial? One line per item, each failure with its fix.

A learner runs it first (``make check`` does the same). Items: Python, torch and its device (CPU/GPU, bf16),
JupyterLab and the ``python3`` kernel, the offline base model, the CRAFT source (reachable or cached, and
verified when its sha256 is known), the extra ontology files, free disk and memory against what the chosen
profile needs, and the optional ``[peers]`` extra. Then, when nothing failed, the time estimate of
:mod:`craftlib.estimate`: a few training and prediction steps timed here, notebook 04 and the whole tutorial per
profile, and a recommendation. The exit code is 1 when a required item fails, else 0.

Status words: ``[ok]``, ``[warn]`` (optional or degraded: the tutorial still runs), ``[FAIL]`` (required: fix
it first). Colours are used only when the output is a terminal (and ``NO_COLOR`` is unset).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from craftlib import config, corpus, estimate, models
from craftlib.errors import CraftlibError
from craftlib.options import add_profile_option
from craftlib.runtime import detect_device

OK, WARN, FAIL = "ok", "warn", "FAIL"
MIN_PYTHON = (3, 11)

#: What each profile needs on this machine (the one place to change them), measured on the tutorial's 2-core CPU;
#: the commands are in docs/instructors.md ("What the machines need").
#: smoke: in a fresh CRAFTLIB_DATA_DIR / CRAFTLIB_MODELS_DIR, `data`, `entity-lists`, `augment`, then
#: `/usr/bin/time -v python -m craftlib train --recipe two-step --profile smoke`: `du -sm` data 181 MB (the
#: extracted corpus is 178 MB of it) + models 174 MB (two MiniLM runs of 87 MB); peak RSS 1.22 GB (training).
#: The test suite's smoke notebooks train one more run (87 MB): 0.6 GB of disk, 1.5 GB of memory.
#: quick: data 199 MB (corpus 178 MB + craft-proper 21 MB), three MiniLM runs of 87 MB and the CRF/spaCy peers
#: (``model_size_mb`` in results/peers-quick.json): about 0.5 GB, required 1 GB for the downloads and logs; peak
#: RSS 1.58 GB (``augmented`` training, ``peak_memory_mb`` in results/peers-quick.json), required 2.5 GB.
#: full was not measured here (GPU recommended): the same data as quick with longer windows and 4 epochs, so
#: quick's needs with a margin are a floor, not a measurement.
PROFILE_NEEDS: dict[str, dict[str, float | str]] = {
    "smoke": {"disk_gb": 0.6, "memory_gb": 1.5, "source": "measured: smoke runs"},
    "quick": {"disk_gb": 1.0, "memory_gb": 2.5, "source": "measured: quick runs (results/peers-quick.json)"},
    "full": {"disk_gb": 1.5, "memory_gb": 4.0, "source": "not measured: quick's needs plus margin"},
}

_COLORS = {OK: "\033[32m", WARN: "\033[33m", FAIL: "\033[31m"}
_RESET = "\033[0m"


@dataclass
class Check:
    """One line of the report. ``fix`` says what to do when ``status`` is not ``ok``."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self, color: bool = False) -> str:
        word = f"[{self.status}]"
        if color:
            word = f"{_COLORS[self.status]}{word}{_RESET}"
        text = f"{word:<6} {self.name}: {self.detail}"
        if self.status != OK and self.fix:
            text += f"\n       fix: {self.fix}"
        return text


# --------------------------------------------------------------------------------------------- checks


def check_python(version: Sequence[int] | None = None) -> Check:
    version = tuple(version or sys.version_info[:3])
    shown = ".".join(map(str, version))
    if version[:2] >= MIN_PYTHON:
        return Check("Python", OK, f"{shown} ({sys.executable})")
    need = ".".join(map(str, MIN_PYTHON))
    return Check("Python", FAIL, f"{shown} is too old (craftlib needs >= {need})",
                 f"install Python {need} or newer, then `make setup` (or `make setup PYTHON=python3.11`)")


def cpu_bf16(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> tuple[bool, str]:
    """Whether the CPU has native bf16 instructions (``avx512_bf16`` / ``amx_bf16``), and how that was found."""
    flags: set[str] = set()
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    found = sorted(flags & {"avx512_bf16", "amx_bf16"})
    capability = ""
    try:
        import torch

        capability = torch.backends.cpu.get_cpu_capability()
    except (ImportError, AttributeError):
        pass
    where = f"CPU capability {capability}" if capability else "CPU"
    if found:
        return True, f"{where}, native bf16 ({', '.join(found)})"
    return False, f"{where}, no native bf16 (training runs in fp32)"


def check_torch() -> Check:
    if importlib.util.find_spec("torch") is None:
        return Check("torch", FAIL, "not installed",
                     "`make setup` (CPU-only laptop: make setup TORCH_PIP=\"--index-url https://download.pytorch.org/whl/cpu\")")
    import torch

    device = detect_device()
    if device.type == "cuda":
        where = f"GPU {device.name} x{device.count}, {'bf16' if device.bf16 else 'fp16'} mixed precision"
    elif device.type == "mps":
        where = "Apple MPS, fp32"
    else:
        _, bf16 = cpu_bf16()
        where = f"{device.name}, no GPU; {bf16}"
    return Check("torch", OK, f"{torch.__version__}, {where}")


def check_jupyter() -> list[Check]:
    out = []
    if importlib.util.find_spec("jupyterlab") is None:
        out.append(Check("JupyterLab", FAIL, "not installed", "`make setup` (or `pip install jupyterlab`)"))
    else:
        out.append(Check("JupyterLab", OK, importlib.metadata.version("jupyterlab")))
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError:
        out.append(Check("Jupyter kernel", FAIL, "jupyter_client is not installed", "`make setup`"))
        return out
    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        out.append(Check("Jupyter kernel", FAIL, "no 'python3' kernel",
                         f"`{sys.executable} -m ipykernel install --user` (the notebooks use the python3 kernel)"))
        return out
    exe = spec.argv[0] if spec.argv else ""
    if exe in ("python", "python3", "{python}") or Path(exe).resolve() == Path(sys.executable).resolve():
        out.append(Check("Jupyter kernel", OK, f"python3 runs this Python ({sys.executable})"))
    else:
        out.append(Check("Jupyter kernel", WARN, f"python3 runs {exe}, not this environment's Python",
                         f"start Jupyter from this environment, or `{sys.executable} -m ipykernel install --user`"))
    return out


def check_model(base_model: str = "minilm") -> Check:
    try:
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()  # no load report / progress bar in a one-line check; restored below
        hf_logging.disable_progress_bar()
        try:
            tokenizer = models.load_tokenizer(base_model)
            model = models._load(AutoModel, base_model)
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
    except CraftlibError as err:
        return Check("base model", FAIL, f"{base_model!r} does not load", str(err))
    except ImportError as err:
        return Check("base model", FAIL, f"{base_model!r} does not load ({err})", "`make setup`")
    n = sum(p.numel() for p in model.parameters())
    return Check("base model", OK, f"{base_model!r} loads offline ({n / 1e6:.0f}M parameters, "
                                   f"{type(tokenizer).__name__})")


def _reachable(url: str, timeout: float = 5.0) -> str | None:
    """``None`` when a HEAD request to ``url`` succeeds, else the reason."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return None
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}"
    except (OSError, ValueError) as err:
        return str(getattr(err, "reason", err))


def check_source(source: str | None = None, sha256: str | None = None, data_dir=None,
                 reachable: Callable[[str], str | None] = _reachable) -> Check:
    """The CRAFT source: a cached extraction, a local folder or archive (verified when the sha256 is known), or a URL."""
    src = config.craft_source(source)
    try:
        expected = config.craft_sha256(sha256)
    except CraftlibError as err:
        return Check("CRAFT source", FAIL, "the expected sha256 is not a checksum", str(err))
    usb = ("point CRAFT_SOURCE at a local copy of CRAFT-5.0.2.tar.gz (your instructor's shared folder or USB "
           "stick) and set CRAFT_SHA256 from its SHA256SUMS")
    cached = config.data_dir(data_dir) / "raw" / corpus.CRAFT_DIRNAME
    marker = cached / corpus.MARKER
    if not corpus._is_url(src):
        path = Path(src).expanduser()
        if path.is_dir():
            root = corpus._find_root(path)
            if root is None:
                return Check("CRAFT source", FAIL, f"{path} is not a CRAFT release folder", usb)
            try:
                corpus.check_layout(root)
            except CraftlibError as err:
                return Check("CRAFT source", FAIL, f"{root} is incomplete", str(err))
            return Check("CRAFT source", OK, f"folder {root} (read in place)")
        if not path.is_file():
            return Check("CRAFT source", FAIL, f"{path} does not exist", usb)
        expected = expected or config.KNOWN_SHA256.get(path.name)
        size = f"{path.stat().st_size / 1e6:.0f} MB"
        if not expected:
            return Check("CRAFT source", WARN, f"archive {path} ({size}), no sha256 to verify it against",
                         "set CRAFT_SHA256 (from SHA256SUMS, or `sha256sum` of a trusted copy)")
        actual = corpus.sha256_file(path)
        if actual.lower() != expected.lower():
            return Check("CRAFT source", FAIL, f"{path} has sha256 {actual[:12]}..., expected {expected[:12]}...",
                         "the copy is corrupt or another release: copy it again from the shared folder / USB "
                         "(or correct CRAFT_SHA256)")
        return Check("CRAFT source", OK, f"archive {path} ({size}), sha256 verified")
    # a URL: a complete cached extraction is enough
    if marker.is_file():
        recorded = json.loads(marker.read_text()).get("sha256")
        if expected and recorded and recorded.lower() != expected.lower():
            return Check("CRAFT source", WARN, f"cached {cached} came from another archive (sha256 {recorded[:12]}...)",
                         "`python -m craftlib data --force` re-downloads and re-extracts it")
        how = "verified" if recorded else "not verified: no sha256 was known"
        return Check("CRAFT source", OK, f"cached extraction {cached} ({how})")
    reason = reachable(src)
    if reason is None:
        return Check("CRAFT source", OK, f"{src} reachable (downloaded on first use, about 23 MB)")
    return Check("CRAFT source", FAIL, f"{src} unreachable ({reason}) and not cached in {cached.parent}", usb)


def check_ontologies(ontology_dir=None) -> Check:
    folder = config.ontology_dir(ontology_dir)
    if folder is None:
        return Check("ontology files", WARN, "CRAFTLIB_ONTOLOGY_DIR not set: types whose ontology is not in the "
                     "CRAFT archive fall back to train class labels (notebook 03)",
                     "point CRAFTLIB_ONTOLOGY_DIR at the folder of .obo/.obo.gz files (shared folder / USB)")
    if not folder.is_dir():
        return Check("ontology files", FAIL, f"{folder} does not exist",
                     "fix CRAFTLIB_ONTOLOGY_DIR (the folder of .obo/.obo.gz files), or unset it")
    files = sorted(p.name for p in folder.iterdir() if p.name.endswith((".obo", ".obo.gz", ".obo.zip")))
    if not files:
        return Check("ontology files", FAIL, f"{folder} holds no .obo, .obo.gz or .obo.zip file",
                     "copy the ontology files into it, or point CRAFTLIB_ONTOLOGY_DIR elsewhere")
    return Check("ontology files", OK, f"{len(files)} in {folder}: {', '.join(files)}")


def _existing(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def available_memory_gb() -> float | None:
    try:
        import psutil

        return psutil.virtual_memory().available / 1e9
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return None


def check_resources(profile: str | None = None, data_dir=None, models_dir=None,
                    min_free_gb: float | None = None) -> list[Check]:
    prof = config.get_profile(profile)
    needs = PROFILE_NEEDS[prof.name]
    disk_need = float(min_free_gb if min_free_gb is not None else needs["disk_gb"])
    out = []
    folders = {_existing(config.data_dir(data_dir)), _existing(config.models_dir(models_dir))}
    free = {f: shutil.disk_usage(f).free / 1e9 for f in folders}
    where, least = min(free.items(), key=lambda kv: kv[1])
    detail = f"{least:.1f} GB free in {where}; profile {prof.name} needs {disk_need:g} GB ({needs['source']})"
    if least >= disk_need:
        out.append(Check("disk", OK, detail))
    else:
        out.append(Check("disk", FAIL, detail,
                         "free some space, or move the data and models elsewhere: CRAFTLIB_DATA_DIR=... "
                         "CRAFTLIB_MODELS_DIR=... (or the notebooks' DATA_DIR / MODELS_DIR), or use a "
                         "smaller profile (CRAFTLIB_PROFILE=smoke)"))
    mem = available_memory_gb()
    mem_need = float(needs["memory_gb"])
    if mem is None:
        out.append(Check("memory", WARN, f"could not measure; profile {prof.name} needs {mem_need:g} GB",
                         "check by hand that enough memory is free"))
    elif mem >= mem_need:
        out.append(Check("memory", OK, f"{mem:.1f} GB available; profile {prof.name} needs {mem_need:g} GB"))
    else:
        out.append(Check("memory", FAIL, f"{mem:.1f} GB available; profile {prof.name} needs {mem_need:g} GB",
                         "close other programs, or use a smaller profile (CRAFTLIB_PROFILE=smoke)"))
    return out


def check_peers() -> Check:
    missing = [m for m in ("sklearn_crfsuite", "spacy") if importlib.util.find_spec(m) is None]
    if missing:
        return Check("[peers] extra", WARN, f"{', '.join(missing)} not installed (only notebook 06 needs them)",
                     "pip install -e \".[peers]\" (make setup installs it)")
    return Check("[peers] extra", OK, "sklearn-crfsuite " + importlib.metadata.version("sklearn-crfsuite")
                 + ", spaCy " + importlib.metadata.version("spacy"))


def check_use() -> Check:
    """Notebook 07 (`predict`): BioC/brat files through ``bioc``, ONNX export and the ONNX Runtime engines."""
    missing = [m for m in ("bioc", "onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        return Check("notebook 07 (predict)", FAIL, f"{', '.join(missing)} not installed (notebook 07 and "
                     "`predict --format bioc/brat`, `export-onnx` need them)",
                     "pip install -e \".[dev,peers]\" (make setup installs them)")
    return Check("notebook 07 (predict)", OK, "bioc " + importlib.metadata.version("bioc") + ", onnxruntime "
                 + importlib.metadata.version("onnxruntime"))


def run_checks(data: config.DataSpec, base_model: str = "minilm", models_dir=None, min_free_gb: float | None = None,
               model: bool = True) -> list[Check]:
    """Every check, for the data ``data`` names (:func:`craftlib.config.data_spec`: profile, CRAFT source and
    checksum, data and ontology folders) and the base model."""
    checks = [check_python(), check_torch(), *check_jupyter()]
    if model:
        checks.append(check_model(base_model))
    checks += [check_source(data.source, data.sha256, data.data_dir), check_ontologies(data.ontology_dir),
               *check_resources(data.profile.name, data.data_dir, models_dir, min_free_gb), check_peers(),
               check_use()]
    return checks


def resolved_settings(options: dict[str, str | None] | None = None) -> list[tuple[str, str, str]]:
    """``(setting, as given, where it resolves)`` for every path setting (:data:`craftlib.config.PATH_SETTINGS`).
    ``options``: command-line values by environment variable name (they win over the environment)."""
    out = []
    for var, resolve in config.PATH_SETTINGS.items():
        option = (options or {}).get(var)
        given = (f"option {option}" if option else f"{var}={os.environ[var]}" if os.environ.get(var)
                 else "default")
        value = resolve(option)
        out.append((var, given, str(value) if value is not None else "not set"))
    return out


def settings_report(options: dict[str, str | None] | None = None) -> str:
    """The settings block ``doctor`` prints first: where each path setting resolves."""
    lines = [f"settings (a relative path is taken from {config.base_dir()}):"]
    for var, given, value in resolved_settings(options):
        lines.append(f"  {var:<22} {given} -> {value}")
    return "\n".join(lines)


def report(checks: Sequence[Check], color: bool = False) -> str:
    lines = [c.line(color) for c in checks]
    failed = sum(c.status == FAIL for c in checks)
    warned = sum(c.status == WARN for c in checks)
    lines.append(f"{failed} failed, {warned} warnings: " + ("ready." if not failed else "fix the [FAIL] lines above."))
    return "\n".join(lines)


def use_color(stream=None) -> bool:
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty() and "NO_COLOR" not in os.environ


def _cmd_doctor(args) -> int:
    profile = config.get_profile(args.profile).name
    print(f"craftlib doctor (profile {profile}, base model {args.base_model})")
    print(settings_report({"CRAFT_SOURCE": args.source, "CRAFTLIB_DATA_DIR": args.data_dir,
                           "CRAFTLIB_MODELS_DIR": args.models_dir, "CRAFTLIB_ONTOLOGY_DIR": args.ontology_dir}))
    data = config.data_spec(profile, data=args.data_dir, source=args.source, sha256=args.sha256,
                            ontology_dir=args.ontology_dir)
    checks = run_checks(data, args.base_model, args.models_dir, args.min_free_gb, model=not args.no_model)
    print(report(checks, use_color()))
    failed = any(c.status == FAIL for c in checks)
    if not (failed or args.no_model or args.no_estimate):  # the estimate needs torch and the base model
        print("\n".join(estimate.report_lines(args.base_model, args.data_dir, force=args.recalibrate)))
    return 1 if failed else 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("doctor", help="check that this machine is ready for the tutorial",
                              description=__doc__.split("\n\n")[0])
    add_profile_option(p, help="profile whose disk/memory needs are checked (default: $CRAFTLIB_PROFILE or quick)")
    p.add_argument("--base-model", default="minilm", help="base model to load (default: minilm)")
    p.add_argument("--source", default=None, help="CRAFT source (default: $CRAFT_SOURCE or the release URL)")
    p.add_argument("--sha256", default=None, help="expected sha256 of the archive (default: $CRAFT_SHA256)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--models-dir", default=None)
    p.add_argument("--ontology-dir", default=None, help="default: $CRAFTLIB_ONTOLOGY_DIR")
    p.add_argument("--min-free-gb", type=float, default=None,
                   help="free disk space to require instead of the profile's measured need")
    p.add_argument("--no-model", action="store_true", help="skip loading the base model (and the time estimate)")
    p.add_argument("--no-estimate", action="store_true",
                   help="skip the time estimate (a few training and prediction steps timed on this machine)")
    p.add_argument("--recalibrate", action="store_true",
                   help="time the training and prediction steps again instead of reusing the cached calibration")
    p.set_defaults(func=_cmd_doctor)
