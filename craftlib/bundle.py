"""``python -m craftlib bundle DIR``: everything an offline room needs, in one folder (``make wheelhouse``).

Conference Wi-Fi cannot serve 20 x (torch + transformers + CRAFT). The bundle holds::

    DIR/wheels/        the wheels of every locked dependency (requirements/lock.txt) for a target platform and
                       Python version, torch first (from TORCH_PIP's index: the CPU build for laptops), pip,
                       setuptools, and craftlib's own wheel
    DIR/craft/         the CRAFT release archive
    DIR/ontologies/    the extra OBO files (CRAFTLIB_ONTOLOGY_DIR)
    DIR/SHA256SUMS     sha256 of every file above (``sha256sum -c SHA256SUMS`` checks a copy)
    DIR/README.txt     how to install and which settings to export

On a learner's laptop, with the network off: ``make setup WHEELHOUSE=DIR`` (or ``DIR/wheels``; pip ``--no-index
--find-links``), then ``export CRAFT_SOURCE=DIR/craft/CRAFT-5.0.2.tar.gz CRAFT_SHA256=... CRAFTLIB_ONTOLOGY_DIR=DIR/ontologies``
with ``DIR`` absolute (the bundle prints these settings so).

``pip download`` evaluates environment markers on the machine that builds the bundle (only the wheel tags
follow ``--platform`` / ``--python-version``): build it on the room's operating system, or check the
install once on a laptop of the room.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from craftlib import config, corpus
from craftlib.errors import CraftlibError

log = logging.getLogger(__name__)

#: The lock file of exact versions (``make lock`` regenerates it; see its first lines).
LOCK_FILE = "requirements/lock.txt"
#: Installed from the bundle too: pip itself, and what ``pip install -e .`` needs to build craftlib.
BUILD_REQUIREMENTS = ("pip", "setuptools>=68", "wheel")


class BundleError(CraftlibError):
    """The bundle cannot be made (a download failed, a file is missing)."""


def _repo_root() -> Path | None:
    return config._repo_root()


def pip_download(requirements: Sequence[str], dest: Path, *, platforms: Sequence[str] = (),
                 python_version: str | None = None, pip_args: Sequence[str] = (), no_deps: bool = False) -> None:
    """``pip download`` binary wheels of ``requirements`` (strings, or ``-r FILE``) into ``dest``."""
    cmd = [sys.executable, "-m", "pip", "download", "--dest", str(dest), "--find-links", str(dest),
           "--progress-bar", "off"]
    # a complete lock is downloaded without resolving (--no-deps), which lets sdist-only packages (seqeval)
    # in; everything else (torch and its platform-specific dependencies) is resolved, wheels only
    cmd += ["--no-deps", "--prefer-binary"] if no_deps else ["--only-binary=:all:"]
    for plat in platforms:
        cmd += ["--platform", plat]
    if python_version:
        cmd += ["--python-version", python_version]
    cmd += [*pip_args, *requirements]
    log.info("%s", shlex.join(cmd))
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BundleError(f"`{shlex.join(cmd)}` failed:\n{done.stderr.strip()[-2000:]}\nCheck the network "
                          "(PyPI, and the TORCH_PIP index), the platform tags and the Python version.")


def wheel_sdists(dest: Path, pip_args: Sequence[str] = ()) -> list[str]:
    """Turn downloaded source archives into wheels when they build as pure Python (``py3-none-any``, good on
    every platform); a package with compiled code keeps its sdist (and is reported)."""
    kept = []
    for sdist in sorted([*dest.glob("*.tar.gz"), *dest.glob("*.zip")]):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", tmp, *pip_args, str(sdist)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            built = list(Path(tmp).glob("*-none-any.whl")) if done.returncode == 0 else []
            if built:
                shutil.move(str(built[0]), dest / built[0].name)
                sdist.unlink()
            else:
                kept.append(sdist.name)
                log.warning("%s is not pure Python: kept as a source archive (needs a compiler to install)", sdist.name)
    return kept


def build_own_wheel(dest: Path, root: Path | None = None) -> Path:
    """craftlib's own wheel (``pip wheel --no-deps --no-build-isolation``) into ``dest``."""
    root = root or _repo_root()
    if root is None:
        raise BundleError("craftlib's wheel is built from a checkout (pyproject.toml): run this in a clone.")
    with tempfile.TemporaryDirectory() as tmp:
        # build from a copy without the git-ignored outputs, so no data or models end up in the wheel
        src = Path(tmp) / "src"
        shutil.copytree(root, src, ignore=shutil.ignore_patterns(
            ".git", ".venv", "data", "models", "build", "dist", "*.egg-info", "__pycache__", "notebooks", "results"))
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(dest),
               str(src)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BundleError(f"`{shlex.join(cmd)}` failed:\n{done.stderr.strip()[-2000:]}")
    wheels = sorted(dest.glob("craftlib-*.whl"), key=lambda p: p.stat().st_mtime)
    return wheels[-1]


def target_environment(platforms: Sequence[str] = (), python_version: str | None = None) -> dict[str, str]:
    """PEP 508 marker values of the room's laptops (this machine's, overridden by the platform tag and Python)."""
    from packaging.markers import default_environment

    env = dict(default_environment())
    if python_version:
        parts = python_version.split(".")
        env["python_version"] = ".".join(parts[:2])
        env["python_full_version"] = ".".join((parts + ["0", "0"])[:3])
    tag = platforms[0] if platforms else ""
    for prefix, sys_platform, system in (("manylinux", "linux", "Linux"), ("musllinux", "linux", "Linux"),
                                         ("linux", "linux", "Linux"), ("macosx", "darwin", "Darwin"),
                                         ("win", "win32", "Windows")):
        if tag.startswith(prefix):
            env.update(sys_platform=sys_platform, platform_system=system,
                       os_name="nt" if system == "Windows" else "posix")
            machine = "AMD64" if tag == "win_amd64" else "ARM64" if tag == "win_arm64" else tag.rsplit("_", 1)[-1]
            if tag.endswith("x86_64"):
                machine = "x86_64"
            elif tag.endswith(("aarch64", "arm64")):
                machine = "arm64" if system == "Darwin" else "aarch64"
            env["platform_machine"] = machine
            break
    return env


def lock_for_target(lock: Path, env: dict[str, str]) -> list[str]:
    """The ``name==version`` lines of a universal lock whose markers hold on the target (markers dropped):
    ``pip download`` alone would evaluate them on this machine."""
    from packaging.requirements import Requirement

    out = []
    for line in lock.read_text().splitlines():
        if not line.strip() or line.startswith((" ", "#", "-")):
            continue
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env):
            out.append(f"{req.name}{req.specifier}")
    return out


def locked_torch(lock: Path) -> str | None:
    """The ``torch==X`` line of a lock file, if any."""
    m = re.search(r"^(torch==[^\s;]+)", lock.read_text(), re.MULTILINE)
    return m.group(1) if m else None


def sha256sum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_sums(folder: Path) -> Path:
    """``SHA256SUMS`` (``sha256sum -c`` format, relative paths) of every file under ``folder``."""
    lines = [f"{sha256sum(p)}  {p.relative_to(folder).as_posix()}"
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "SHA256SUMS"]
    out = folder / "SHA256SUMS"
    out.write_text("\n".join(lines) + "\n")
    return out


def verify_sums(folder: Path) -> list[str]:
    """Files whose sha256 differs from ``SHA256SUMS`` (or that are missing); empty when all match."""
    bad = []
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        path = folder / name
        if not path.is_file() or sha256sum(path) != digest:
            bad.append(name)
    return bad


def copy_data(dest: Path, source: str | None = None, sha256: str | None = None, ontology_dir=None) -> dict:
    """The CRAFT archive (copied, or downloaded when the source is a URL; verified when its sha256 is known)
    and the ontology files. Returns the settings a learner exports."""
    src = config.craft_source(source)
    (dest / "craft").mkdir(parents=True, exist_ok=True)
    archive = dest / "craft" / f"{corpus.CRAFT_DIRNAME}.tar.gz"
    if corpus._is_url(src):
        corpus._download(src, archive, progress=False)
    else:
        path = Path(src).expanduser()
        if not path.is_file():
            raise BundleError(f"CRAFT source {path} is not an archive file: point CRAFT_SOURCE (or --source) at "
                              "the CRAFT-5.0.2.tar.gz release archive (a folder cannot be bundled as is).")
        shutil.copyfile(path, archive)
    actual = sha256sum(archive)
    expected = config.craft_sha256(sha256) or config.KNOWN_SHA256.get(archive.name)
    if expected and actual.lower() != expected.lower():
        archive.unlink()
        raise BundleError(f"{src} has sha256 {actual}, expected {expected}: get the archive again.")
    # absolute paths: a relative one would be taken from the checkout's root (craftlib.config.base_dir), not from
    # where the bundle is
    settings = {"CRAFT_SOURCE": str(dest.resolve() / "craft" / archive.name), "CRAFT_SHA256": actual}
    folder = config.ontology_dir(ontology_dir)
    if folder is not None:
        files = [p for p in sorted(Path(folder).iterdir()) if p.is_file()]
        if not files:
            raise BundleError(f"Ontology folder {folder} is empty: fix CRAFTLIB_ONTOLOGY_DIR (or --ontology-dir).")
        (dest / "ontologies").mkdir(exist_ok=True)
        for p in files:
            shutil.copyfile(p, dest / "ontologies" / p.name)
        settings["CRAFTLIB_ONTOLOGY_DIR"] = str(dest.resolve() / "ontologies")
    else:
        log.warning("no CRAFTLIB_ONTOLOGY_DIR: the bundle holds no extra ontology files")
    return settings


README = """An offline room for the CRAFT NER tutorial, made by `{command}`.

Check a copy:      cd {name} && sha256sum -c SHA256SUMS
Install (no network), in the checkout of the tutorial:
    make setup WHEELHOUSE={path}
  or by hand:
    python3 -m venv .venv && .venv/bin/pip install --no-index --find-links {path}/wheels -r requirements/lock.txt -e ".[dev,peers]"
Then, before `make check` / `make test` / JupyterLab (if you copied {name} elsewhere, replace {path} by
where it is now):
{exports}
Wheels for: {target}
"""


@dataclass(frozen=True)
class Wheels:
    """Which wheels a bundle holds: for which laptops (wheel ``platforms`` tags, ``python_version``; default: this
    machine's), from which ``lock`` (default: the checkout's), with which pip options (``torch_pip`` for torch's own
    index, ``pip_args`` for all), plus the build requirements and craftlib's own wheel."""

    platforms: Sequence[str] = ()
    python_version: str | None = None
    torch_pip: Sequence[str] = ()
    lock: str | os.PathLike | None = None
    pip_args: Sequence[str] = ()
    own_wheel: bool = True
    build_requirements: Sequence[str] = BUILD_REQUIREMENTS


def make_bundle(dest: str | os.PathLike, wheels_spec: Wheels = Wheels(), data: config.DataSpec | None = None,
                command: str = "") -> dict:
    """Fill ``dest`` (wheels, data, SHA256SUMS, README.txt); return a summary (files, bytes, settings).
    ``data``: the CRAFT source, its sha256 and the ontology folder to copy (:func:`craftlib.config.data_spec`);
    ``None``: wheels only."""
    dest = Path(dest).expanduser().resolve()
    root = _repo_root()
    platforms, python_version = wheels_spec.platforms, wheels_spec.python_version
    pip_args, lock = wheels_spec.pip_args, wheels_spec.lock
    lock = Path(lock) if lock else (root / LOCK_FILE if root else None)
    if lock is None or not lock.is_file():
        raise BundleError(f"Lock file {lock} not found: run in a checkout, or pass --lock FILE.")
    wheels = dest / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    opts = {"platforms": platforms, "python_version": python_version}
    torch = locked_torch(lock)
    if torch:  # first, from its own index (TORCH_PIP): the rest of the lock then finds it in wheels/
        pip_download([torch], wheels, pip_args=[*pip_args, *wheels_spec.torch_pip], **opts)
    pinned = dest / "requirements-target.txt"  # the lock as the target sees it (kept: it is what was bundled)
    pinned.write_text("\n".join(lock_for_target(lock, target_environment(platforms, python_version))) + "\n")
    pip_download(["-r", str(pinned)], wheels, pip_args=pip_args, no_deps=True, **opts)
    if wheels_spec.build_requirements:
        pip_download(list(wheels_spec.build_requirements), wheels, pip_args=pip_args, **opts)
    sdists = wheel_sdists(wheels, pip_args)
    if wheels_spec.own_wheel:
        build_own_wheel(wheels, root)
    settings = copy_data(dest, data.source, data.sha256, data.ontology_dir) if data is not None else {}
    if root is not None and lock.resolve().is_relative_to(root):
        shutil.copyfile(lock, dest / "lock.txt")
    exports = "\n".join(f"    export {k}={v}" for k, v in settings.items()) or "    (no data bundled)"
    target = f"platform {', '.join(platforms) or 'of the building machine'}, Python {python_version or sys.version.split()[0]}"
    (dest / "README.txt").write_text(README.format(command=command or "python -m craftlib bundle", name=dest.name, path=dest,
                                                   exports=exports, target=target))
    write_sums(dest)
    files = [p for p in dest.rglob("*") if p.is_file()]
    return {"dest": str(dest), "files": len(files), "bytes": sum(p.stat().st_size for p in files),
            "wheels": len(list(wheels.glob("*.whl"))), "sdists": sdists, "settings": settings}


def _cmd_bundle(args) -> int:
    command = "python -m craftlib bundle " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    wheels = Wheels(platforms=tuple(args.platform or ()), python_version=args.python_version,
                    torch_pip=tuple(shlex.split(args.torch_pip or os.environ.get("TORCH_PIP", ""))), lock=args.lock)
    data = None if args.no_data else config.data_spec(source=args.source, sha256=args.sha256,
                                                      ontology_dir=args.ontology_dir)
    summary = make_bundle(args.dest, wheels, data, command=command)
    print(f"{summary['dest']}: {summary['wheels']} wheels, {summary['files']} files, "
          f"{summary['bytes'] / 1e6:.0f} MB; SHA256SUMS and README.txt written")
    if summary["sdists"]:
        print(f"  source archives kept (need a compiler on the laptops): {', '.join(summary['sdists'])}")
    for k, v in summary["settings"].items():
        print(f"  {k}={v}")
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("bundle", help="wheels + CRAFT + ontologies in one folder, for an offline room",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("dest", help="folder to fill (created)")
    p.add_argument("--platform", action="append",
                   help="wheel platform tag of the room's laptops, repeatable (e.g. manylinux_2_28_x86_64, "
                        "macosx_11_0_arm64, win_amd64); default: this machine's")
    p.add_argument("--python-version", default=None, help="the room's Python, e.g. 3.11 (default: this one's)")
    p.add_argument("--torch-pip", default=None,
                   help="extra pip options for torch, e.g. \"--index-url https://download.pytorch.org/whl/cpu\" "
                        "(default: $TORCH_PIP)")
    p.add_argument("--lock", default=None, help=f"lock file (default: {LOCK_FILE})")
    p.add_argument("--no-data", action="store_true", help="wheels only: no CRAFT archive, no ontology files")
    p.add_argument("--source", default=None, help="CRAFT archive or URL (default: $CRAFT_SOURCE or the release URL)")
    p.add_argument("--sha256", default=None, help="expected sha256 of the archive (default: $CRAFT_SHA256)")
    p.add_argument("--ontology-dir", default=None, help="default: $CRAFTLIB_ONTOLOGY_DIR")
    p.set_defaults(func=_cmd_bundle)
