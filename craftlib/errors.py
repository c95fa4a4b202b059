"""Errors a user can act on. Each message says what is wrong and what to do; the CLI prints it
without a traceback."""

from __future__ import annotations


class CraftlibError(Exception):
    """Base class: a problem with the input or the set-up, not a bug."""


class CorpusError(CraftlibError):
    """The CRAFT source is missing, corrupt, truncated or not laid out like the release."""


class AlignmentError(CraftlibError):
    """Tokens (CoNLL-U) do not match the document text at the expected offsets."""


class BIOError(CraftlibError):
    """A tag sequence is not valid IOB2 (e.g. ``I-Gene`` after ``O`` or after ``B-Protein``)."""


class OntologyError(CraftlibError):
    """An ontology file is missing or cannot be read."""


class ModelNotAvailableError(CraftlibError):
    """A base model cannot be loaded (offline and not cached, or unknown)."""
