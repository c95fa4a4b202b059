"""Pictures and HTML: entities highlighted in text, plots of results.

HTML helpers return ``str``; in a notebook wrap them with ``IPython.display.HTML``. Styles are
inline so the rendering survives the executed-notebook HTML export. The last stage: no craftlib module imports it.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from craftlib.bio import bio_spans
from craftlib.config import ENTITY_TYPES
from craftlib.runtime import has_widget_frontend

#: One colour per entity type (colour-blind-friendly Okabe-Ito palette, lightened for text).
TYPE_COLORS: dict[str, str] = {
    "Sequence": "#f6c28b",
    "Cell": "#9fd3f2",
    "Protein": "#8fe0c4",
    "Gene": "#f5e79a",
    "Taxon": "#c9b3e6",
    "Chemical": "#f2a8a8",
}
#: CRAFT module → colour (modules map to types; PR uses the Protein colour).
MODULE_COLORS: dict[str, str] = {
    "SO": TYPE_COLORS["Sequence"],
    "CL": TYPE_COLORS["Cell"],
    "PR": TYPE_COLORS["Protein"],
    "NCBITaxon": TYPE_COLORS["Taxon"],
    "CHEBI": TYPE_COLORS["Chemical"],
}
_FALLBACK = "#dddddd"


def _mark(text: str, label: str, color: str) -> str:
    return (
        f'<mark style="background:{color};padding:0 2px;border-radius:3px;line-height:1.9">'
        f"{html.escape(text)}"
        f'<sub style="font-size:0.65em;font-weight:bold;margin-left:2px">{html.escape(label)}</sub></mark>'
    )


def legend_html(colors: dict[str, str] | None = None) -> str:
    colors = colors or TYPE_COLORS
    return " ".join(_mark(name, "", c) for name, c in colors.items())


def spans_html(
    text: str,
    spans: Iterable[tuple[int, int, str]],
    colors: dict[str, str] | None = None,
) -> str:
    """Highlight character spans ``(start, end, label)`` of ``text``.

    Overlapping spans cannot all be drawn in one line of text: the earliest-starting (then longest)
    span wins and the spans it overlaps are listed under the passage, so nothing is hidden silently.
    """
    colors = colors or {**TYPE_COLORS, **MODULE_COLORS}
    chosen, hidden, end_of_last = [], [], -1
    for start, end, label in sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]))):
        if start >= end_of_last:
            chosen.append((start, end, label))
            end_of_last = end
        else:
            hidden.append((start, end, label))
    parts, pos = [], 0
    for start, end, label in chosen:
        parts.append(html.escape(text[pos:start]))
        parts.append(_mark(text[start:end], label, colors.get(label, _FALLBACK)))
        pos = end
    parts.append(html.escape(text[pos:]))
    body = "".join(parts).replace("\n", "<br>")
    out = f'<div style="font-family:sans-serif;line-height:1.9">{body}</div>'
    if hidden:
        items = ", ".join(f"{html.escape(text[s:e])!s} ({html.escape(lab)})" for s, e, lab in hidden)
        out += f'<div style="font-size:0.8em;color:#666">overlapping, not drawn: {items}</div>'
    return out


def tags_html(tokens: Sequence[str], tags: Sequence[str], colors: dict[str, str] | None = None) -> str:
    """One sentence with its IOB2 entities highlighted by type."""
    colors = colors or TYPE_COLORS
    parts, pos = [], 0
    for start, end, kind in bio_spans(tags):
        parts.extend(html.escape(t) for t in tokens[pos:start])
        parts.append(_mark(" ".join(tokens[start:end]), kind, colors.get(kind, _FALLBACK)))
        pos = end
    parts.extend(html.escape(t) for t in tokens[pos:])
    return f'<div style="font-family:sans-serif;line-height:1.9">{" ".join(parts)}</div>'


# ----------------------------------------------------------------------------- error analysis pictures

#: One colour per error category of :mod:`craftlib.evaluate`.
CATEGORY_COLORS: dict[str, str] = {
    "correct": "#009e73",
    "wrong_type": "#cc79a7",
    "wrong_boundary": "#e69f00",
    "wrong_type_boundary": "#d55e00",
    "missed": "#56b4e9",
    "spurious": "#999999",
}


def example_html(
    tokens: Sequence[str],
    gold: Sequence[str],
    pred: Sequence[str],
    span: tuple[int, int] | None = None,
    context: int | None = 12,
    caption: str | None = None,
) -> str:
    """A sentence twice, gold entities above predicted ones (highlighted by type), with an optional caption.

    With ``span=(start, end)`` only ``context`` tokens either side of it are shown (``…`` marks the cut)
    and the span's text is repeated under the two rows.
    """
    lo, hi = 0, len(tokens)
    if span is not None and context is not None:
        lo, hi = max(0, span[0] - context), min(len(tokens), span[1] + context)
    toks = list(tokens[lo:hi])

    def row(name: str, tags: Sequence[str]) -> str:
        body = tags_html(toks, list(tags[lo:hi]))
        return (f'<tr><td style="font-weight:bold;padding-right:8px;vertical-align:top;text-align:left">{name}</td>'
                f'<td style="text-align:left">{"… " if lo else ""}{body}{" …" if hi < len(tokens) else ""}</td></tr>')

    out = f'<table style="border-collapse:collapse;margin:4px 0">{row("gold", gold)}{row("predicted", pred)}</table>'
    if span is not None:
        where = html.escape(" ".join(tokens[span[0]:span[1]]))
        out += f'<div style="font-size:0.85em;color:#444">span: <u>{where}</u> (tokens {span[0]}–{span[1]})</div>'
    if caption:
        out += f'<div style="font-style:italic;margin-bottom:10px">{html.escape(caption)}</div>'
    return out


def confusion_heatmap(cm, ax=None, title: str = "Type confusions (gold rows, predicted columns)"):
    """Heatmap of :func:`craftlib.evaluate.confusion_matrix` with counts written in the cells; returns the Figure."""
    import matplotlib.pyplot as plt

    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6.5, 5.5))
    values = cm.to_numpy()
    im = ax.imshow(values, cmap="Blues")
    ax.set_xticks(range(len(cm.columns)), labels=list(cm.columns), rotation=45, ha="right")
    ax.set_yticks(range(len(cm.index)), labels=list(cm.index))
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    top = values.max() if values.size else 0
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, int(values[i, j]), ha="center", va="center",
                    color="white" if top and values[i, j] > top / 2 else "black", fontsize=8)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


def f1_bars(scores: dict[str, dict], ax=None, title: str = "F1 per entity type"):
    """Grouped bars: per-type F1 (plus micro F1) of several systems; ``scores`` maps a name to a
    :func:`craftlib.evaluate.score` output. Returns the Figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(9, 4))
    groups = list(ENTITY_TYPES) + ["micro"]
    width = 0.8 / max(1, len(scores))
    x = np.arange(len(groups))
    for k, (name, s) in enumerate(scores.items()):
        vals = [s["per_type"][t]["f1"] for t in ENTITY_TYPES] + [s["f1"]]
        ax.bar(x + (k - (len(scores) - 1) / 2) * width, vals, width, label=name)
    ax.set_xticks(x, labels=groups)
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1 (seqeval, default mode)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def seed_scores(result: dict, ax=None, title: str = "Test F1 per seed, mean and bootstrap interval",
                labels: dict[str, str] | None = None):
    """One row per system of a :func:`craftlib.evaluate.bootstrap` result: each seed's test F1 as a dot, the mean
    as a bar, and the interval (documents and seeds resampled) as a line; returns the Figure. ``labels`` renames
    systems for display."""
    import matplotlib.pyplot as plt

    systems = list(result["systems"].items())
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7.5, 0.55 * len(systems) + 1.2))
    for y, (name, v) in enumerate(reversed(systems)):
        ax.plot([v["low"], v["high"]], [y, y], color="0.35", lw=2, solid_capstyle="butt")
        ax.plot([v["f1"]], [y], marker="|", ms=18, mew=2.5, color="black")
        seeds = v.get("seed_f1") or [v["f1"]]
        ax.scatter(seeds, [y] * len(seeds), s=28, color="tab:orange", zorder=3,
                   label="one seed" if y == len(systems) - 1 else None)
    names = [(labels or {}).get(n, n) + (f"  ({v.get('seeds') or 1} seeds)" if (v.get("seeds") or 1) > 1 else "")
             for n, v in reversed(systems)]
    ax.set_yticks(range(len(systems)), labels=names)
    ax.set_xlabel(f"test F1 ({result.get('score', 'micro F1')}); line: {result['confidence']:.0%} interval")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def error_bars(counts, include_correct: bool = False, ax=None, title: str = "Where the errors are"):
    """Stacked bars of error categories per type from :func:`craftlib.evaluate.error_counts`; returns the Figure."""
    import matplotlib.pyplot as plt

    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(8, 4))
    table = counts.drop(index="total", errors="ignore")
    cats = [c for c in CATEGORY_COLORS if c in table.columns and (include_correct or c != "correct")]
    bottom = [0] * len(table)
    for c in cats:
        vals = [int(v) for v in table[c]]
        ax.bar(list(table.index), vals, bottom=bottom, label=c, color=CATEGORY_COLORS[c])
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_ylabel("mentions")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def error_table(errors, page_size: int = 5):
    """The first ``page_size`` errors of each category of an errors table (:func:`craftlib.evaluate.errors_table`),
    as a ``DataFrame`` indexed by category (the static view: headless runs, exported notebooks)."""
    cols = [c for c in ("doc_id", "sentence_id", "text", "gold", "predicted", "pred_text") if c in errors]
    table = errors.groupby("category", sort=True).head(page_size).sort_values("category", kind="stable")
    return table.set_index("category")[cols]


def error_widget(errors, records=None, page_size: int = 5):
    """An ipywidgets box that pages through an errors table (:func:`craftlib.evaluate.errors_table`) filtered by
    category and type. ``records`` (prediction records) lets each error be drawn in its sentence
    (:func:`example_html`). Returns the box (not displayed)."""
    import ipywidgets as widgets
    from IPython.display import HTML, display

    by_key = {(r["doc_id"], int(r["sentence_id"])): r for r in (records or [])}
    cat = widgets.Dropdown(options=["all", *sorted(errors["category"].unique())], description="category")
    kind = widgets.Dropdown(options=["all", *ENTITY_TYPES], description="type")
    page = widgets.BoundedIntText(value=1, min=1, max=1, description="page")
    info = widgets.Label()
    out = widgets.Output()

    def selected():
        sel = errors
        if cat.value != "all":
            sel = sel[sel["category"] == cat.value]
        if kind.value != "all":
            sel = sel[(sel["gold"] == kind.value) | (sel["predicted"] == kind.value)]
        return sel

    def draw(*_):
        sel = selected()
        pages = max(1, -(-len(sel) // page_size))
        page.max = pages
        info.value = f"{len(sel)} errors, page {min(page.value, pages)}/{pages}"
        chunk = sel.iloc[(page.value - 1) * page_size: page.value * page_size]
        out.clear_output()
        with out:
            parts = []
            for _, row in chunk.iterrows():
                rec = by_key.get((row["doc_id"], int(row["sentence_id"])))
                head = f"<b>{html.escape(str(row['category']))}</b> — {html.escape(str(row['doc_id']))}:{row['sentence_id']}"
                body = (example_html(rec["tokens"], rec["gold"], rec["pred"], span=(int(row["start"]), int(row["end"])))
                        if rec else html.escape(f"{row['text']}: gold {row['gold']}, predicted {row['predicted']}"))
                parts.append(f"<div>{head}</div>{body}")
            display(HTML("".join(parts) or "<i>no error with these filters</i>"))

    for w in (cat, kind):
        w.observe(lambda _c: (setattr(page, "value", 1), draw()), names="value")
    page.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([cat, kind, page]), info, out])


def error_browser(errors, records=None, page_size: int = 5, interactive: bool | None = None):
    """Show the errors in a notebook: :func:`error_widget` where a widget frontend draws it
    (:func:`craftlib.runtime.has_widget_frontend`, or ``interactive=True``), else :func:`error_table` (so headless
    runs stay clean). Displays it and returns what it displayed."""
    from IPython.display import display

    interactive = has_widget_frontend() if interactive is None else interactive
    shown = error_widget(errors, records, page_size) if interactive else error_table(errors, page_size)
    display(shown)
    return shown


# ------------------------------------------------------------------------------------ a tagged document


def tagged_html(doc, max_rows: int = 30) -> str:
    """A tagged document (:class:`craftlib.export.TaggedDocument`): the colour legend, its text with the mentions
    highlighted by type, then a table of the mentions with their score and ontology ids (the first ``max_rows``)."""
    view = spans_html(doc.text, [(e.start, e.end, e.type) for e in doc.entities])
    rows = []
    for e in doc.entities[:max_rows]:
        ids = "" if e.link is None else (
            f"{html.escape(e.link)}: " + ", ".join(f"{html.escape(i)} ({html.escape(n)})" for i, n in zip(e.ids, e.names))
            if e.ids else "no id")
        rows.append(f"<tr><td>{e.start}–{e.end}</td><td>{html.escape(e.text)}</td><td>{html.escape(e.type)}</td>"
                    f"<td>{e.score:.2f}</td><td>{ids}</td></tr>")
    more = f"<p>… and {len(doc.entities) - max_rows} more</p>" if len(doc.entities) > max_rows else ""
    table = ("<table><tr><th>offsets</th><th>mention</th><th>type</th><th>score</th><th>ids</th></tr>"
             f"{''.join(rows)}</table>{more}") if rows else "<p><i>no mention found</i></p>"
    return f"<p>{len(doc.entities)} mention(s) &nbsp; {legend_html(TYPE_COLORS)}</p>{view}{table}"


def tag_widget(tag, value: str = ""):
    """An ipywidgets text box: type or paste a text, press *Tag* (or leave the box), see its mentions highlighted
    with their ids. ``tag`` is a function ``str -> TaggedDocument`` (e.g. a :class:`craftlib.tagger.Tagger`'s
    ``tag_text``). Returns the box (not displayed)."""
    import ipywidgets as widgets
    from IPython.display import HTML, display

    box = widgets.Textarea(value=value, placeholder="Type or paste a text to tag", rows=4,
                           layout=widgets.Layout(width="95%"), continuous_update=False)
    button = widgets.Button(description="Tag", button_style="primary")
    out = widgets.Output()

    def draw(*_):
        out.clear_output()
        with out:
            text = box.value
            display(HTML(tagged_html(tag(text)) if text.strip() else "<p><i>type a text above</i></p>"))

    button.on_click(draw)
    box.observe(draw, names="value")
    draw()
    return widgets.VBox([box, button, out])


def tag_box(tag, value: str = "", interactive: bool | None = None):
    """Show :func:`tag_widget` where a widget frontend draws it, else the tagged ``value`` as HTML (headless runs).
    Displays it and returns what it displayed."""
    from IPython.display import HTML, display

    interactive = has_widget_frontend() if interactive is None else interactive
    shown = tag_widget(tag, value) if interactive else HTML(tagged_html(tag(value)))
    display(shown)
    return shown


def side_by_side_html(
    left: tuple[Sequence[str], Sequence[str]],
    right: tuple[Sequence[str], Sequence[str]],
    titles: tuple[str, str] = ("original", "augmented"),
    colors: dict[str, str] | None = None,
) -> str:
    """Two sentences ``(tokens, tags)`` in two columns (e.g. original vs augmented), entities highlighted."""
    cells = "".join(
        f'<td style="vertical-align:top;padding:4px 10px;width:50%"><b>{html.escape(title)}</b>'
        f"{tags_html(tokens, tags, colors)}</td>"
        for title, (tokens, tags) in zip(titles, (left, right))
    )
    return f'<table style="width:100%;border-collapse:collapse"><tr>{cells}</tr></table>'


# ------------------------------------------------------------------------------------ learning curves


def plot_learning_curve(log: Sequence[dict] | str | os.PathLike, title: str = "", ax=None):
    """Training loss per logged step and dev loss/F1 per epoch (one panel; F1 on the right axis).

    Draws on ``ax``; without one, on a new pyplot figure (interactive use: it shows like any other plot).
    """
    import pandas as pd

    df = pd.read_csv(log) if isinstance(log, (str, os.PathLike)) else pd.DataFrame(list(log))
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 3.5))
    # one x axis across steps: step-2 epochs continue after step 1
    offset, xs = 0.0, []
    for name, part in df.groupby("step_name", sort=False):
        xs.append(part["epoch"].fillna(0) + offset)
        offset += float(part["epoch"].max() or 0)
    df = df.assign(x=pd.concat(xs))
    train = df[df.get("loss").notna()] if "loss" in df else df.iloc[0:0]
    dev = df[df["eval_f1"].notna()] if "eval_f1" in df else df.iloc[0:0]
    if len(train):
        ax.plot(train["x"], train["loss"], label="train loss", color="tab:blue", alpha=0.7)
    if len(dev):
        ax.plot(dev["x"], dev["eval_loss"], "o-", label="dev loss", color="tab:orange")
        ax2 = ax.twinx()
        ax2.plot(dev["x"], dev["eval_f1"], "s--", label="dev F1", color="tab:green")
        ax2.set_ylabel("dev F1 (seqeval)")
        ax2.set_ylim(0, 1)
        ax2.legend(loc="upper right")
    ax.set_xlabel("epoch (two-step: step-2 epochs follow step 1)")
    ax.set_ylabel("loss")
    ax.legend(loc="upper left")
    ax.set_title(title)
    return ax


def save_learning_curve(csv_path: Path, png_path: Path, title: str) -> None:
    """Write the learning curve to ``png_path`` through a bare :class:`matplotlib.figure.Figure`: no pyplot
    state, no backend switch, so the caller's plots (a notebook's inline backend) keep working."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.5))
    plot_learning_curve(csv_path, title=title, ax=fig.subplots())
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)


__all__ = [
    "CATEGORY_COLORS", "ENTITY_TYPES", "MODULE_COLORS", "TYPE_COLORS", "confusion_heatmap", "error_bars",
    "error_browser", "error_table", "error_widget", "example_html", "f1_bars", "legend_html", "side_by_side_html",
    "spans_html", "tag_box", "tag_widget", "tagged_html", "tags_html",
]
