"""Command line: ``python -m craftlib <command> [options]`` (``--help`` lists the commands).

Each stage module owns its commands: it defines ``add_commands(subparsers)`` which adds its
sub-parsers and sets ``func`` (called with the parsed ``argparse.Namespace``, returns an exit code).
Stage modules import heavy libraries (torch, transformers, spacy) inside functions, so that
``--help`` and ``data`` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from craftlib.errors import CraftlibError

#: Modules that contribute commands, in the order of the data flow.
COMMAND_MODULES: tuple[str, ...] = (
    "craftlib.doctor",     # doctor (is this machine ready?)
    "craftlib.tags",       # data
    "craftlib.ontology",   # entity-lists
    "craftlib.augment",    # augment
    "craftlib.baseline",   # baseline (dictionary tagger)
    "craftlib.train",      # train, predict
    "craftlib.evaluate",   # evaluate
    "craftlib.peers",      # benchmark
    "craftlib.bundle",     # bundle (an offline room: wheels + data)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m craftlib",
        description="Biomedical NER on CRAFT: build data, augment, train, evaluate.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # stage not written yet
                continue
            raise
        module.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CraftlibError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
