"""Pictures and HTML: entities highlighted in text, plots of results.

HTML helpers return ``str``; in a notebook wrap them with ``IPython.display.HTML``. Styles are
inline so the rendering survives the executed-notebook HTML export.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from craftlib.config import ENTITY_TYPES

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


def bio_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Token spans ``(start, end_exclusive, type)`` of an IOB2 sequence (lenient: a stray ``I-`` opens a span)."""
    spans, start, kind = [], None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, t = tag.partition("-")
        if start is not None and (prefix != "I" or t != kind):
            spans.append((start, i, kind))
            start, kind = None, None
        if prefix == "B" or (prefix == "I" and start is None):
            start, kind = i, t
    return spans


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


__all__ = ["ENTITY_TYPES", "MODULE_COLORS", "TYPE_COLORS", "bio_spans", "legend_html", "spans_html", "tags_html"]
