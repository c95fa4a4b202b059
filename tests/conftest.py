"""Shared fixtures. Unit tests use small hand-written fixtures only (``tests/fixtures``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


def local_craft_source() -> str | None:
    """The local CRAFT archive/folder named by ``CRAFT_SOURCE``, resolved (``None`` when unset or a URL)."""
    from craftlib import config

    if not os.environ.get("CRAFT_SOURCE"):
        return None
    src = config.craft_source()  # a relative setting is taken from the repository root, as everywhere
    return src if not config.is_url(src) and Path(src).exists() else None


def require_local_craft() -> str:
    """Skip (or fail, when ``CRAFTLIB_REQUIRE_DATA=1`` as in CI) without a local CRAFT copy."""
    src = local_craft_source()
    if src is None:
        msg = "CRAFT_SOURCE does not point at a local CRAFT archive or folder"
        if os.environ.get("CRAFTLIB_REQUIRE_DATA") == "1":
            pytest.fail(msg + " (CRAFTLIB_REQUIRE_DATA=1)")
        pytest.skip(msg)
    return src
