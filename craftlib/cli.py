"""Command line: ``python -m craftlib <command> [options]`` (``--help`` lists the commands).

Each stage module owns its commands: it defines ``add_commands(subparsers)`` which adds its
sub-parsers and sets ``func`` (called with the parsed ``argparse.Namespace``, returns an exit code).
Stage modules import heavy libraries (torch, transformers, spacy) inside functions, so that
``--help`` and ``data`` start fast.

Options shared by several commands are declared once in :mod:`craftlib.options` (``--profile``, the dataset
and ontology option blocks, the value types ``seed_value``, ``positive_float``, ...), so every command validates
them the same way when the command line is parsed: a bad value is a one-line ``error:`` and exit status 2,
before any work starts. This module imports the stage modules (to build the parser); no stage imports it.

Errors: a :class:`craftlib.errors.CraftlibError` is printed as one line (exit 2); an ``OSError`` (disk full,
read-only folder, ...) too, with what to do; any other exception is a bug and keeps its traceback.
``--debug`` (or ``CRAFTLIB_DEBUG=1``) shows the traceback of every error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from craftlib import config
from craftlib.errors import CraftlibError, foreign_storage_message, os_error_message

#: Modules that contribute commands, in the order of the data flow.
COMMAND_MODULES: tuple[str, ...] = (
    "craftlib.doctor",     # doctor (is this machine ready?)
    "craftlib.stages",     # data, entity-lists, augment
    "craftlib.gene_rules",  # gene-rules
    "craftlib.baseline",   # baseline (dictionary tagger)
    "craftlib.adapt",      # adapt (domain-adaptive masked-LM pretraining)
    "craftlib.train",      # train
    "craftlib.tagger",     # predict, export-onnx
    "craftlib.concepts",   # concepts (linking scores)
    "craftlib.evaluate",   # evaluate, compare
    "craftlib.runs",       # results, publish
    "craftlib.peers",      # benchmark
    "craftlib.bundle",     # bundle (an offline room: wheels + data)
)


# ------------------------------------------------------------------------------------ parser and main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m craftlib",
        description="Biomedical NER on CRAFT: build data, augment, train, evaluate.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of any error (also: CRAFTLIB_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)  # an import error is a bug: never hide a command
    return parser


#: Options that name a setting's path (:data:`craftlib.config.PATH_SETTINGS`): a relative value typed on the command
#: line means "from here", so it is made absolute before the command runs (the library takes relative settings
#: from :func:`craftlib.config.base_dir`, the repository root).
PATH_OPTIONS: tuple[str, ...] = ("data_dir", "models_dir", "results_dir", "ontology_dir", "source", "to")


def _absolute_options(args: argparse.Namespace) -> None:
    for name in PATH_OPTIONS:
        value = getattr(args, name, None)
        if isinstance(value, str) and value and not config.is_url(value):
            setattr(args, name, os.path.abspath(os.path.expanduser(value)))


def _check_environment(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Settings from the environment that a command will use, validated like its options."""
    env = os.environ.get("CRAFTLIB_PROFILE")
    if getattr(args, "profile", "") is None and env and env not in config.PROFILES:
        parser.error(f"CRAFTLIB_PROFILE={env!r} is not a profile: choose one of {', '.join(config.PROFILES)} "
                     "(or pass --profile)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_environment(parser, args)
    _absolute_options(args)
    debug = args.debug or os.environ.get("CRAFTLIB_DEBUG", "") not in ("", "0")
    hint = "" if debug else " (run with --debug or CRAFTLIB_DEBUG=1 for the traceback)"
    try:
        if hasattr(args, "source") or hasattr(args, "sha256"):  # the command may read CRAFT: a bad checksum is
            config.craft_sha256(getattr(args, "sha256", None))  # refused before any work (ConfigError)
        return int(args.func(args) or 0)
    except CraftlibError as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # training says where it stopped and what it kept (craftlib.session.Stopped)
        print(str(err) or "interrupted: nothing half-written was kept; run the same command again to resume",
              file=sys.stderr)
        return 130
    except OSError as err:  # the last resort: disk full, read-only folder, missing file, network
        if debug:
            raise
        message = os_error_message(err) or f"{type(err).__name__}: {err}"
        print(f"error: {message}{hint}", file=sys.stderr)
        return 2
    except Exception as err:  # a storage failure a library reports without an OSError (safetensors); else a bug
        message = foreign_storage_message(err)
        if message is None or debug:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
