"""Peer toolkits side by side with the project's systems: ``python -m craftlib benchmark``.

- :mod:`craftlib.peers.crf`: a CRF tagger (sklearn-crfsuite) with lexical, shape, affix, context features;
- :mod:`craftlib.peers.spacy_ner`: a spaCy NER pipeline trained from scratch (quickstart CPU config);
- :mod:`craftlib.peers.runner`: trains/evaluates them, collects the dictionary baseline and the
  transformer recipes from ``models/<run>/``, scores all with :func:`craftlib.evaluate.score` and
  writes ``runs/peers-<profile>.json`` / ``.md`` (``python -m craftlib publish peers-<profile>`` commits them).

The toolkits are the optional extra ``pip install -e .[peers]``; they are imported only when a
peer runs, so this package (and ``python -m craftlib --help``) imports without them.
"""

from __future__ import annotations

import argparse

from craftlib import config
from craftlib.options import add_dataset_options, seed_value
from craftlib.peers.runner import SYSTEMS, run_benchmark


def _cmd_benchmark(args: argparse.Namespace) -> int:
    data = config.data_spec(args.profile, args.annotation_set, args.data_dir, seed=args.seed, source=args.source)
    report = run_benchmark(
        data,
        systems=[s.strip() for s in args.systems.split(",") if s.strip()] if args.systems else None,
        models_dir=args.models_dir,
        results_dir=args.results_dir,
        train_transformers=args.train_transformers,
    )
    failed = [r["system"] for r in report["systems"] if r["status"] == "failed"]
    return 1 if failed else 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "benchmark",
        help="CRF and spaCy peers vs the dictionary baseline and transformer recipes (needs .[peers])",
        description="Train/evaluate the CRF and spaCy peers on the profile's sentences, collect the dictionary "
        "baseline and transformer runs from models/<run>/, score all with craftlib.evaluate.score, and write "
        "results/peers-<profile>.json and .md. Needs the optional extra: pip install -e .[peers]",
    )
    add_dataset_options(p)  # --profile, --annotation-set, --data-dir, --source (when the dataset must be built)
    p.add_argument("--seed", type=seed_value, default=42)
    p.add_argument("--systems", default=None, help=f"comma-separated subset of: {','.join(SYSTEMS)} (default: all but crf-italic, "
                                                         "the typography ablation)")
    p.add_argument("--train-transformers", action="store_true",
                   help="train the transformer recipes first (python -m craftlib train); default: read models/<run>/")
    p.add_argument("--models-dir", default=None, help="default: $CRAFTLIB_MODELS_DIR or <repo>/models")
    p.add_argument("--results-dir", default=None, help="default: $CRAFTLIB_RESULTS_DIR or the git-ignored <repo>/runs")
    p.set_defaults(func=_cmd_benchmark)
