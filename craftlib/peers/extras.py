"""The optional ``[peers]`` extra: a clear error when it is not installed."""

from __future__ import annotations

import importlib.util

from craftlib.errors import CraftlibError

#: import name → distribution name, for the error message.
EXTRA_PACKAGES = {"sklearn_crfsuite": "sklearn-crfsuite", "spacy": "spacy"}


class MissingExtraError(CraftlibError):
    """A peer toolkit (sklearn-crfsuite, spaCy) is not installed."""


def require(module: str) -> None:
    """Raise :class:`MissingExtraError` (with the install command) when ``module`` cannot be imported."""
    if importlib.util.find_spec(module) is None:
        dist = EXTRA_PACKAGES.get(module, module)
        raise MissingExtraError(
            f"The peer comparison needs {dist!r}, which is not installed. Install the optional extra with "
            "`pip install -e .[peers]` (from the repository root), or pick other systems with --systems."
        )
