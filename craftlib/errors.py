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


class ConfigError(CraftlibError, ValueError):
    """A setting or option value is invalid (unknown profile, a hyperparameter that trains nothing, ...)."""


class DatasetError(CraftlibError):
    """A saved dataset is missing files, damaged, or holds tags that are not valid IOB2 / not craftlib's labels."""


class RunError(CraftlibError):
    """A run or model folder is incomplete or its weights cannot be loaded."""


class StorageError(CraftlibError, OSError):
    """Writing or reading a file failed for a reason outside craftlib: disk full, read-only or no permission."""


#: errno values that mean "the disk is full" / "this place cannot be written".
_FULL = {"ENOSPC", "EDQUOT", "EFBIG"}
_DENIED = {"EACCES", "EPERM", "EROFS"}


def os_error_message(err: OSError, doing: str = "") -> str | None:
    """A one-line explanation with what to do for an :class:`OSError` caused by the storage (disk full, read-only
    or not writable, file missing), or ``None`` when ``err`` is not such an error."""
    import errno as _errno

    name = _errno.errorcode.get(err.errno or -1, "")
    where = err.filename or "the target folder"
    doing = f" while {doing}" if doing else ""
    if name in _FULL:
        return (f"No space left on the device holding {where}{doing} ({err.strerror}). Free some space (or point "
                "--data-dir / --models-dir / CRAFTLIB_DATA_DIR at a disk with room), then run the same command "
                "again: nothing half-written is kept.")
    if name in _DENIED:
        return (f"Cannot write {where}{doing} ({err.strerror}): the folder is read-only or not yours. Point "
                "--data-dir / --models-dir (or CRAFTLIB_DATA_DIR / CRAFTLIB_MODELS_DIR) at a writable folder, "
                "or fix its permissions.")
    if name in {"ENOENT", "ENOTDIR", "EISDIR"}:
        return f"{where}: {err.strerror}{doing}. Check the path."
    return None


def foreign_storage_message(err: BaseException) -> str | None:
    """A one-line message for a storage failure that a library reports without an :class:`OSError`: safetensors'
    ``SafetensorError`` (a full disk while saving a model: ``IoError(Os { code: 28, ... })``). ``None`` for any
    other exception (a bug keeps its traceback)."""
    import os as _os
    import re as _re

    if type(err).__name__ != "SafetensorError":
        return None
    text = " ".join(str(err).split())
    code = _re.search(r"\bcode: (\d+)", text)
    if code:
        number = int(code.group(1))
        message = os_error_message(OSError(number, _os.strerror(number)), "saving the model weights")
        if message:
            return message
    if "serializ" in text.lower():
        return (f"Saving the model weights failed (SafetensorError: {text}). If the disk is full, free some space "
                "(or point --models-dir / CRAFTLIB_MODELS_DIR at a disk with room), then run the same command "
                "again: nothing half-written is kept.")
    return (f"Model weights cannot be read (SafetensorError: {text}): the file is damaged or truncated; train the "
            "model again (`python -m craftlib train ...`).")
