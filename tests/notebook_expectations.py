"""What a learner must see in each executed notebook (smoke profile): the one list of promised outputs.

Used by the papermill tier (``tests/test_notebooks.py``) and the real-browser tier (``tests/test_browser.py``).
Counts are minimums, so that a notebook may gain figures or views without breaking the tests; a notebook
that loses one, or any error output, fails both tiers.
"""

from __future__ import annotations

import re

#: Notebook 04 in the browser tier: stopped once during two-step's step 2 (after a checkpoint), then run again.
#: ``cell``: text of the training cell; ``resume_folder``: the resumable folder (``models/``) whose first complete
#: checkpoint is awaited before pressing stop; ``line``: the one
#: line the stop must end in; ``named``: outputs of the cell before the stop (named bars, "k of 3", collapsed to one
#: line when done); ``resumed``: outputs after Run All again.
STOP_04 = {
    "cell": "estimate.training_session",
    "resume_folder": r"\.resume-two-step-minilm-smoke-case-viterbi-[0-9a-f]{12}",
    "line": r"Stopped during two-step-minilm-smoke-case-viterbi step 2 \(3 of 3\) at epoch \d+\.\d\d \(\d of 8 steps done\); "
            r"kept: 2 finished run\(s\), its checkpoint of step \d; rerun the cell to resume\.",
    "named": [r"Plan: 3 trainings, about", r"done: single-minilm-smoke-case-viterbi \(1 of 3\): 8 steps in \d+:\d\d",
              r"done: augmented-minilm-smoke-case-viterbi \(2 of 3\): 8 steps in \d+:\d\d",
              r"two-step-minilm-smoke-case-viterbi step 2 \(3 of 3\): \d/8 steps.* \| stopped"],
    "resumed": [r"Plan: 1 training \(2 already trained: reused\), about",
                r"single-minilm-smoke-case-viterbi: a finished run with the same settings is in .*: reused, not trained again",
                r"augmented-minilm-smoke-case-viterbi: a finished run with the same settings is in .*: reused, not trained again",
                r"two-step-minilm-smoke-case-viterbi step 2 \(1 of 1\): resuming from its checkpoint of step \d",
                (r"done: two-step-minilm-smoke-case-viterbi step 2 \(1 of 1\): 8 steps in \d+:\d\d \(resumed from its checkpoint "
                 r"of step \d\)"),
                r"this cell: 1 training\(s\) in \d+:\d\d .*; 2 finished run\(s\) reused\."],
}

#: notebook → minimum number of figures drawn as images (``image/png`` outputs), of entity HTML views
#: (``craftlib.viz`` renders each entity as a ``<mark>``), whether it shows the error-browser widget (05) or the text
#: box that tags what is typed (07), and ``texts``: patterns (``re.search``) that its printed output must contain.
#: Browser tier only: ``stop`` (see :data:`STOP_04`) and ``no_widgets`` (no ipywidgets output at all: its progress
#: bars are display handles, so the saved notebook reopens without "Error displaying widget: model not found").
EXPECTED: dict[str, dict] = {
    # mentions per module, mention lengths; reading the corpus shows a display-handle bar, not a widget
    "01_explore_craft.ipynb": {"figures": 2, "entity_views": 1, "no_widgets": True},
    "02_normalize_tags.ipynb": {"figures": 1, "entity_views": 1, "no_widgets": True},  # label shares; tagged sentences
    "03_augment_with_ontologies.ipynb": {"figures": 2, "entity_views": 2},  # coverage, dictionary F1
    # learning curves (after training!) and per-seed scores of the controlled comparison; the plan with its
    # estimate, printed before training (craftlib.estimate)
    "04_two_step_transfer.ipynb": {"figures": 2, "entity_views": 0,
                                   "texts": [r"Plan: 3 trainings, about \d+ (s|min) on this (CPU|GPU) \("],
                                   "stop": STOP_04, "no_widgets": True},
    "05_error_analysis.ipynb": {"figures": 3, "entity_views": 2, "widget": True},  # F1, errors, confusions
    "06_compare_toolkits.ipynb": {"figures": 1, "entity_views": 0},    # accuracy against cost
    # engines' speed; paragraph, article (model | gold), pasted text, tag box; the text box widget (browser tier)
    # (JupyterLab keeps 3 of them as cell outputs: one is drawn inside a widget's output area; the page shows them all)
    "07_use_your_model.ipynb": {"figures": 1, "entity_views": 3, "tag_box": True},
}


def _outputs(cells) -> list[dict]:
    """Every output of the code cells (nbformat cells, or plain dicts with an ``outputs`` list)."""
    return [o for c in cells if c.get("cell_type", "code") == "code" for o in c.get("outputs", [])]


def count_images(cells) -> int:
    return sum("image/png" in o.get("data", {}) for o in _outputs(cells))


def count_entity_views(cells) -> int:
    return sum("<mark" in _text(o.get("data", {}).get("text/html", "")) for o in _outputs(cells))


def error_outputs(cells) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue')}" for o in _outputs(cells) if o.get("output_type") == "error"]


def stderr_texts(cells) -> list[str]:
    """Text a learner sees in red (stderr streams)."""
    return [_text(o.get("text", "")) for o in _outputs(cells)
            if o.get("output_type") == "stream" and o.get("name") == "stderr" and _text(o.get("text", "")).strip()]


def stdout_text(cells) -> str:
    """Everything the notebook printed (stdout streams), in order."""
    return "".join(_text(o.get("text", "")) for o in _outputs(cells)
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def problems(name: str, cells) -> list[str]:
    """What is missing or wrong in the executed notebook ``name`` (empty when it shows everything promised)."""
    want = EXPECTED[name]
    found = []
    found += [f"error output: {e}" for e in error_outputs(cells)]
    found += [f"red (stderr) output: {t[:300]!r}" for t in stderr_texts(cells)]
    if count_images(cells) < want["figures"]:
        found.append(f"{count_images(cells)} figure(s) drawn as images, expected at least {want['figures']}")
    if count_entity_views(cells) < want["entity_views"]:
        found.append(f"{count_entity_views(cells)} entity HTML view(s), expected at least {want['entity_views']}")
    printed = stdout_text(cells)
    found += [f"no printed line matches {pattern!r}" for pattern in want.get("texts", [])
              if not re.search(pattern, printed)]
    return found
