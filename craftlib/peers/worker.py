"""One peer system trained and evaluated in its own process (so its peak memory can be measured).

Called by :mod:`craftlib.peers.runner` as ``python -m craftlib.peers.worker SPEC.json``. The spec
names the system, the sentences file written by the runner, the run directory and the settings;
the worker writes ``result`` (JSON): predictions for the validation and test sentences, and times.
Systems trained elsewhere (``dictionary``, ``transformer``) are only timed on the test sentences.
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    On Linux: ``VmHWM`` from ``/proc/self/status``, the high-water mark of this process's own address space
    (``ru_maxrss`` is not used there: it keeps the parent's size at ``fork`` across ``exec``). Elsewhere:
    ``ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _columns(records: list[dict]) -> tuple[list[list[str]], list[list[str]]]:
    return [r["tokens"] for r in records], [r["tags"] for r in records]


def _run_crf(splits: dict, run_dir: Path, settings: dict, seed: int) -> tuple[dict, Path]:
    from craftlib.peers.crf import predict_crf, train_crf

    settings = dict(settings)
    italic = settings.pop("italic", False)  # crf-italic: the tokens' italic flags as features

    def flags(split: str):
        return [r["italic"] for r in splits[split]] if italic else None

    tokens, tags = _columns(splits["train"])
    model_file = run_dir / "model.crfsuite"
    before = _rss_mb()
    t0 = time.perf_counter()
    crf = train_crf(tokens, tags, model_file, italic=flags("train"), **settings)
    train_seconds = time.perf_counter() - t0
    return (_predict_all(lambda toks, split: predict_crf(crf, toks, flags(split)), splits, train_seconds, before),
            model_file)


def _run_spacy(splits: dict, run_dir: Path, settings: dict, seed: int) -> tuple[dict, Path]:
    from craftlib.peers.spacy_ner import predict_spacy, quickstart_config, train_spacy, write_docbin

    before = _rss_mb()
    with tempfile.TemporaryDirectory(prefix="spacy-corpus-") as tmp:
        t0 = time.perf_counter()
        write_docbin(*_columns(splits["train"]), Path(tmp) / "train.spacy")
        write_docbin(*_columns(splits["validation"]), Path(tmp) / "dev.spacy")
        config = quickstart_config(Path(tmp) / "train.spacy", Path(tmp) / "dev.spacy", seed=seed, **settings)
        train_out = run_dir / "spacy-training"
        nlp = train_spacy(config, train_out, log=sys.stdout)
        train_seconds = time.perf_counter() - t0
    model_dir = run_dir / "model-best"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    (train_out / "model-best").rename(model_dir)
    shutil.rmtree(train_out)  # model-last: not the kept model
    return _predict_all(lambda toks, split: predict_spacy(nlp, toks), splits, train_seconds, before), model_dir


def _predict_all(predict, splits: dict, train_seconds: float, rss_before: float) -> dict:
    out = {"train_seconds": train_seconds, "rss_before_training_mb": rss_before, "pred": {}, "predict_seconds": {}}
    for split in ("validation", "test"):
        tokens, _ = _columns(splits[split])
        t0 = time.perf_counter()
        out["pred"][split] = predict(tokens, split)
        out["predict_seconds"][split] = time.perf_counter() - t0
    return out


def _infer_transformer(splits: dict, spec: dict) -> dict:
    """Time a saved transformer run (``models/<run>``) tagging the test sentences (model loading included)."""
    from craftlib.train import predict

    tokens, _ = _columns(splits["test"])
    before = _rss_mb()
    t0 = time.perf_counter()
    pred = [r["tags"] for r in predict(spec["run_dir"], tokens, batch_size=int(spec["batch_size"]))]
    return {"pred": {"test": pred}, "predict_seconds": {"test": time.perf_counter() - t0},
            "rss_before_training_mb": before}


def _infer_dictionary(splits: dict, spec: dict) -> dict:
    """Time the dictionary tagger (built from the saved entity lists) tagging the test sentences."""
    from craftlib import config, stages
    from craftlib.baseline import DictionaryTagger

    tokens, _ = _columns(splits["test"])
    before = _rss_mb()
    t0 = time.perf_counter()
    data = config.data_spec(spec["profile"], spec["annotation_set"], spec["data_dir"])
    tagger = DictionaryTagger(stages.load("entity_lists", data, build=False))
    t1 = time.perf_counter()
    pred = [tagger.tag(t) for t in tokens]
    return {"pred": {"test": pred}, "predict_seconds": {"test": time.perf_counter() - t1},
            "load_seconds": t1 - t0, "rss_before_training_mb": before}


RUNNERS = {"crf": _run_crf, "crf-italic": _run_crf, "spacy": _run_spacy}
INFERENCE = {"transformer": _infer_transformer, "dictionary": _infer_dictionary}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text())
    splits = json.loads(Path(spec["splits"]).read_text()) if spec.get("splits") else {}
    run_dir = Path(spec["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    if spec["system"] == "train":  # a transformer recipe whose peak memory is wanted
        from craftlib.train import run_spec, train_recipe

        t0 = time.perf_counter()
        train_recipe(run_spec(**spec["train"]), progress=False)
        result = {"exit_code": 0, "seconds": time.perf_counter() - t0}
    elif spec["system"] in INFERENCE:
        result = INFERENCE[spec["system"]](splits, spec)
    else:
        result, model_path = RUNNERS[spec["system"]](splits, run_dir, spec["settings"], int(spec["seed"]))
        result["model_path"] = str(model_path)
    result["peak_rss_self_mb"] = _rss_mb()
    from craftlib import cache  # standard library only: it adds nothing to the peak memory measured above

    cache.atomic_write_text(spec["result"], json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
