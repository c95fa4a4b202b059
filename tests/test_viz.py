"""HTML rendering and plots: spans agree with seqeval, HTML is escaped, figures show the data."""

from __future__ import annotations

import random

import matplotlib
import pytest
from seqeval.metrics.sequence_labeling import get_entities

from craftlib import bio, runtime, viz
from craftlib import evaluate as ev
from craftlib.config import ENTITY_TYPES, LABELS

matplotlib.use("Agg")


@pytest.mark.parametrize("seed", range(5))
def test_bio_spans_agree_with_seqeval_default(seed):
    rng = random.Random(seed)
    for _ in range(200):
        tags = [rng.choice(LABELS) for _ in range(rng.randint(0, 15))]
        ours = [(t, s, e - 1) for s, e, t in bio.bio_spans(tags)]
        assert ours == get_entities(tags), tags


def test_tags_and_example_html_escape_and_show_both_rows():
    tokens = ["<b>", "IL-2", "&", "mice", "x", "y"]
    gold = ["O", "B-Protein", "O", "B-Taxon", "O", "O"]
    pred = ["O", "B-Gene", "O", "O", "O", "B-Cell"]
    out = viz.example_html(tokens, gold, pred, span=(1, 2), context=None, caption="a <caption>")
    assert "<b>" not in out.replace("<b>gold", "")  # the token is escaped
    assert "&lt;b&gt;" in out and "&amp;" in out and "a &lt;caption&gt;" in out
    assert out.count("<tr>") == 2 and ">gold<" in out and ">predicted<" in out
    assert viz.TYPE_COLORS["Protein"] in out and viz.TYPE_COLORS["Gene"] in out and viz.TYPE_COLORS["Cell"] in out
    cropped = viz.example_html(tokens, gold, pred, span=(1, 2), context=1)
    assert "mice" not in cropped and "…" in cropped and viz.TYPE_COLORS["Taxon"] not in cropped


def mentions():
    records = [{"doc_id": "d", "sentence_id": 1, "tokens": list("abcdefg"),
                "gold": ["B-Gene", "I-Gene", "O", "B-Cell", "O", "B-Taxon", "O"],
                "pred": ["B-Protein", "I-Protein", "O", "B-Cell", "I-Cell", "O", "B-Chemical"]}]
    return records, ev.mention_table(records)


def test_confusion_heatmap_writes_counts():
    _, m = mentions()
    cm = ev.confusion_matrix(m)
    fig = viz.confusion_heatmap(cm)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == cm.size and texts.count("1") == int(cm.to_numpy().sum())
    assert [t.get_text() for t in ax.get_xticklabels()] == list(ENTITY_TYPES) + ["O"]


def test_f1_bars_one_bar_per_type_and_system():
    records, _ = mentions()
    s = ev.score([records[0]["gold"]], [records[0]["pred"]])
    perfect = ev.score([records[0]["gold"]], [records[0]["gold"]])
    fig = viz.f1_bars({"model": s, "oracle": perfect})
    bars = fig.axes[0].patches
    assert len(bars) == 2 * (len(ENTITY_TYPES) + 1)
    heights = [b.get_height() for b in bars]
    assert heights[len(ENTITY_TYPES)] == pytest.approx(s["f1"])  # micro bar of the first system
    assert heights[-1] == 1.0


def test_error_bars_stack_categories():
    _, m = mentions()
    counts = ev.error_counts(m)
    fig = viz.error_bars(counts)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [c for c in ev.CATEGORIES if c != "correct"]
    total = sum(b.get_height() for b in ax.patches)
    assert total == counts.drop(index="total").drop(columns="correct").to_numpy().sum() == 4


def test_error_browser_static_and_interactive(monkeypatch):
    records, m = mentions()
    errors = ev.errors_table(m)
    monkeypatch.setenv("CRAFTLIB_WIDGETS", "0")
    assert runtime.has_widget_frontend() is False
    table = viz.error_browser(errors, records, page_size=1)
    assert sorted(table.index) == sorted(errors["category"]) and "text" in table.columns
    monkeypatch.setenv("CRAFTLIB_WIDGETS", "1")
    assert runtime.has_widget_frontend() is True
    assert viz.error_table(errors, page_size=1).equals(table)  # the static view, on its own
    assert type(viz.error_widget(errors, records, page_size=1)).__name__ == "VBox"  # the widget, not displayed
    box = viz.error_browser(errors, records, page_size=1)
    (cat, kind, page), info, _out = box.children[0].children, box.children[1], box.children[2]
    assert info.value == f"{len(errors)} errors, page 1/{len(errors)}"
    page.value = 2
    assert info.value == f"{len(errors)} errors, page 2/{len(errors)}"
    kind.value = "Gene"
    assert info.value.startswith("1 errors")
    cat.value = "missed"
    assert info.value.startswith("0 errors")


def test_seed_scores_shows_every_seed_the_mean_and_the_interval():
    result = {"confidence": 0.95, "score": "micro F1",
              "systems": {"single": {"f1": 0.6, "low": 0.55, "high": 0.66, "seeds": 3, "sd": 0.01,
                                     "seed_f1": [0.59, 0.6, 0.61]},
                          "crf": {"f1": 0.7, "low": 0.65, "high": 0.75, "seeds": 1, "sd": None, "seed_f1": [0.7]}}}
    fig = viz.seed_scores(result, labels={"crf": "CRF"})
    ax = fig.axes[0]
    dots = [tuple(p) for c in ax.collections for p in c.get_offsets()]
    assert sorted(x for x, _ in dots) == [0.59, 0.6, 0.61, 0.7]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["CRF", "single  (3 seeds)"]
    lines = [tuple(line.get_xdata()) for line in ax.lines]
    assert (0.55, 0.66) in lines and (0.65, 0.75) in lines
    systems, _ = ev.bootstrap_tables({**result, "differences": []})
    assert list(systems.columns) == ["seeds", "F1", "sd", "95% low", "95% high"]
