"""Command-line options that several commands share, declared once.

Each stage module keeps its command next to the function it wraps (``add_commands(subparsers)``) and takes the
shared options from here, so every command validates them the same way when the command line is parsed: a bad
value is a one-line ``error:`` and exit status 2, before any work starts. (:mod:`craftlib.cli` builds the parser
from the stage modules and runs the command; this module imports no stage, so every stage may use it.)
"""

from __future__ import annotations

import argparse

from craftlib import config

# ------------------------------------------------------------------------------------------ value types


def profile_name(value: str) -> str:
    """argparse type of ``--profile``: one of :data:`craftlib.config.PROFILES`."""
    if value not in config.PROFILES:
        raise argparse.ArgumentTypeError(f"unknown profile {value!r}: choose one of {', '.join(config.PROFILES)}")
    return value


def _number(kind, value: str, ok, what: str):
    try:
        number = kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a{'n integer' if kind is int else ' number'}") from None
    if not ok(number):
        raise argparse.ArgumentTypeError(f"{value!r}: {what}")
    return number


#: The largest seed every random generator accepts (NumPy's legacy seeding takes 32 bits).
MAX_SEED = 2**32 - 1


def seed_value(value: str) -> int:
    """argparse type of every ``--seed``: an integer from 0 to 2**32-1 (what NumPy accepts; a negative or larger seed
    is refused, not silently folded)."""
    return _number(int, value, lambda n: 0 <= n <= MAX_SEED, f"the seed must be an integer from 0 to {MAX_SEED}")


def positive_float(value: str) -> float:
    """argparse type of a value that must be > 0 (``--epochs``, ``--learning-rate``)."""
    return _number(float, value, lambda x: x > 0 and x != float("inf"), "must be a number > 0 (0 trains nothing)")


def positive_int(value: str) -> int:
    """argparse type of a count that must be >= 1 (``--max-train-sentences``)."""
    return _number(int, value, lambda n: n >= 1, "must be an integer >= 1")


def probability(value: str) -> float:
    """argparse type of a probability (``--replace-prob``, ``augment --ratio``): a number from 0 to 1."""
    return _number(float, value, lambda x: 0.0 <= x <= 1.0, "must be a number from 0 to 1")


def warmup_value(value: str) -> float:
    """argparse type of ``--warmup-ratio``: a fraction of the optimizer steps, from 0 to below 1."""
    return _number(float, value, lambda x: 0.0 <= x < 1.0, "must be a number from 0 to below 1 (a fraction of the steps)")


def max_steps_value(value: str) -> int:
    """argparse type of ``--max-steps``: ``-1`` (train by epochs) or a number of steps >= 1."""
    return _number(int, value, lambda n: n == -1 or n >= 1, "must be >= 1, or -1 to train by epochs (0 trains nothing)")


# ------------------------------------------------------------------------------------------ option blocks


def add_profile_option(parser: argparse.ArgumentParser,
                       help: str = "run profile (default: $CRAFTLIB_PROFILE or quick)") -> None:
    """The ``--profile`` option of every command (validated when parsed; ``CRAFTLIB_PROFILE`` is checked by
    :func:`craftlib.cli.main`)."""
    parser.add_argument("--profile", default=None, type=profile_name, metavar="{" + ",".join(config.PROFILES) + "}",
                        help=help)


def add_dataset_options(parser: argparse.ArgumentParser) -> None:
    """``--profile``, ``--annotation-set``, ``--data-dir``, ``--source``: which dataset a command reads (and
    builds when it is missing)."""
    add_profile_option(parser)
    parser.add_argument("--annotation-set", default="proper", choices=config.ANNOTATION_SETS)
    parser.add_argument("--data-dir", default=None, help="data directory (default: CRAFTLIB_DATA_DIR or ./data)")
    parser.add_argument("--source", default=None, help="CRAFT archive/folder/URL (default: $CRAFT_SOURCE)")


def add_ontology_options(parser: argparse.ArgumentParser, builds_lists: bool = False) -> None:
    """``--ontology-dir`` and ``--obo TYPE=PATH`` (into ``args.sources``; parse it with
    :func:`craftlib.ontology.parse_source_options`). ``builds_lists``: the command's job is to build the entity
    lists (``entity-lists``); otherwise the options are used only if the lists must be built first."""
    if builds_lists:
        parser.add_argument("--ontology-dir", default=None, help="extra OBO files (default: CRAFTLIB_ONTOLOGY_DIR)")
        parser.add_argument("--obo", dest="sources", action="append", metavar="TYPE=PATH",
                            help="OBO file for a type (repeatable; replaces that type's defaults; TYPE= means none)")
    else:
        parser.add_argument("--ontology-dir", default=None, help="extra OBO files, if the entity lists must be built")
        parser.add_argument("--obo", dest="sources", action="append", metavar="TYPE=PATH",
                            help="OBO file for a type, if the entity lists must be built")


__all__ = [
    "add_dataset_options", "add_ontology_options", "add_profile_option", "max_steps_value", "positive_float",
    "positive_int", "profile_name", "seed_value",
]
