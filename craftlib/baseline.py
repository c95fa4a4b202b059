"""Dictionary baseline: a longest-match tagger that knows only the entity lists.

It shows what the ontology lists alone achieve on CRAFT (and where they fail: plurals, abbreviations,
generic words, ambiguity between types). Matching is case-insensitive and works on CoNLL-U tokens, so a
match always starts and ends on a token boundary: the entity-list terms are tokenized like CRAFT
(:func:`craftlib.ontology.craft_tokenize`) and compared with :func:`craftlib.ontology.term_key`.

At each position the longest term starting there wins; a term in several lists gets the type that comes
first in ``priority`` (default: :data:`DEFAULT_PRIORITY`, most specific names first, as in the tag policies).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Mapping, Sequence

from craftlib import cache, config, runs, stages
from craftlib.bio import spans_to_bio, tag_names
from craftlib.evaluate import score
from craftlib.ontology import craft_tokenize, parse_source_options
from craftlib.options import add_dataset_options, add_ontology_options
from craftlib.runtime import versions
from craftlib.tags import eval_subset

#: Type chosen when a term is in several lists (specific names before generic chemical/sequence words).
DEFAULT_PRIORITY: tuple[str, ...] = ("Gene", "Protein", "Taxon", "Cell", "Chemical", "Sequence")


class DictionaryTagger:
    """Longest-match, case-insensitive, token-level tagger over ``{type: [term, ...]}``."""

    def __init__(self, entity_lists: Mapping[str, Sequence[str]], priority: Sequence[str] = DEFAULT_PRIORITY):
        rank = {t: i for i, t in enumerate(priority)}
        self.lexicon: dict[tuple[str, ...], str] = {}
        self.conflicts = 0
        for t in sorted(entity_lists, key=lambda x: rank.get(x, len(rank))):
            for term in entity_lists[t]:
                key = tuple(tok.casefold() for tok in craft_tokenize(term))
                if not key:
                    continue
                if key in self.lexicon:
                    self.conflicts += self.lexicon[key] != t
                    continue
                self.lexicon[key] = t
        self.max_len = max((len(k) for k in self.lexicon), default=0)
        self.first_tokens = {k[0] for k in self.lexicon}

    def __len__(self) -> int:
        return len(self.lexicon)

    def find(self, tokens: Sequence[str]) -> list[tuple[int, int, str]]:
        """Matches ``(start, end_exclusive, type)``, left to right, longest first, never overlapping."""
        low = [t.casefold() for t in tokens]
        out, i, n = [], 0, len(low)
        while i < n:
            if low[i] in self.first_tokens:
                for length in range(min(self.max_len, n - i), 0, -1):
                    kind = self.lexicon.get(tuple(low[i:i + length]))
                    if kind is not None:
                        out.append((i, i + length, kind))
                        i += length
                        break
                else:
                    i += 1
            else:
                i += 1
        return out

    def tag(self, tokens: Sequence[str]) -> list[str]:
        """IOB2 tags of one sentence."""
        return spans_to_bio(len(tokens), self.find(tokens))


def _eval_rows(ds, limit: int | None) -> list[dict]:
    names = ds.features["ner_tags"].feature.names
    sub = eval_subset(ds, limit)
    return [
        {"doc_id": d, "sentence_id": int(s), "tokens": list(t), "gold": tag_names(g, names)}
        for d, s, t, g in zip(sub["doc_id"], sub["sentence_id"], sub["tokens"], sub["ner_tags"])
    ]


def run_dictionary_baseline(spec: config.DataSpec, models_dir: str | os.PathLike | None = None,
                            priority: Sequence[str] = DEFAULT_PRIORITY, command: str | None = None) -> dict:
    """Tag dev and test with the entity lists; write ``models/dictionary-<profile>/`` (``metrics.json``,
    ``predictions_validation.jsonl``, ``predictions_test.jsonl``) and return the metrics.

    Evaluation uses the first ``profile.max_eval_sentences`` sentences of each split (all when ``None``),
    as every other system of the project does; scores come from :func:`craftlib.evaluate.score`.
    """
    prof = spec.profile
    t0 = time.perf_counter()
    dsd = stages.load("dataset", spec, say=lambda line: None)
    lists = stages.load("entity_lists", spec, say=lambda line: None)
    tagger = DictionaryTagger(lists, priority=priority)
    build_seconds = time.perf_counter() - t0
    run = runs.Run.named(runs.system_run_name("dictionary", prof, seed=spec.seed, annotation_set=spec.annotation_set),
                         models_dir)
    metrics = runs.metrics_core(run.name, "dictionary", prof, spec.seed, spec.dataset_name)
    t1 = time.perf_counter()
    with cache.atomic_dir(run.dir) as build_dir:  # the run folder appears complete, or not at all
        for split, key in (("validation", "dev"), ("test", "test")):
            rows = _eval_rows(dsd[split], prof.max_eval_sentences)
            for r in rows:
                r["pred"] = tagger.tag(r["tokens"])
            # an empty split (only in tiny fixtures) has no score
            metrics[key] = score([r["gold"] for r in rows], [r["pred"] for r in rows]) if rows else None
            runs.Run(build_dir).write_predictions(split, rows)
        stats = stages.stats("entity_lists", spec)
        metrics.update({
            "train_seconds": round(build_seconds, 2),
            "predict_seconds": round(time.perf_counter() - t1, 2),
            "entity_lists": {t: len(v) for t, v in lists.items()},
            "entity_list_fallback": stats.get("fallback", []),
            "lexicon_entries": len(tagger), "type_conflicts": tagger.conflicts, "priority": list(priority),
            "max_eval_sentences": prof.max_eval_sentences,
            "command": command or runs.baseline_command(
                prof, spec.annotation_set, None if spec.data_dir == config.data_dir() else spec.data_dir, models_dir,
                spec.source, spec.ontology_dir, spec.sources),
            "versions": versions(),
            "hardware": f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)",
            "created": runs.now(),
        })
        runs.Run(build_dir).write_metrics(metrics)
    return metrics


def _cmd_baseline(args: argparse.Namespace) -> int:
    sources = parse_source_options(args.sources) or None
    spec = config.data_spec(args.profile, args.annotation_set, args.data_dir, source=args.source,
                            ontology_dir=args.ontology_dir, sources=sources)
    command = runs.baseline_command(spec.profile, args.annotation_set, args.data_dir, args.models_dir, args.source,
                                    args.ontology_dir, sources)
    m = run_dictionary_baseline(spec, args.models_dir, command=command)
    print(f"{'':<10} {'P':>6} {'R':>6} {'F1':>6}")
    for key in ("dev", "test"):
        s = m[key]
        if s is None:
            print(f"{key:<10} (empty split)")
            continue
        print(f"{key:<10} {s['precision']:>6.3f} {s['recall']:>6.3f} {s['f1']:>6.3f}")
    for t, s in (m["test"] or {}).get("per_type", {}).items():
        print(f"  test {t:<9} P {s['precision']:.3f} R {s['recall']:.3f} F1 {s['f1']:.3f} (support {s['support']})")
    print(f"wrote {config.models_dir(args.models_dir) / m['run']}")
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("baseline", help="dictionary (longest-match) baseline on dev and test")
    add_dataset_options(p)
    p.add_argument("--models-dir", default=None, help="default: CRAFTLIB_MODELS_DIR or ./models")
    add_ontology_options(p)
    p.set_defaults(func=_cmd_baseline)


__all__ = ["DEFAULT_PRIORITY", "DictionaryTagger", "run_dictionary_baseline"]
