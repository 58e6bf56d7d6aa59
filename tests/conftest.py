"""Shared test set-up: a fixed seed and no widget left over from the previous test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fresh_state():
    """Seed every generator before each test and close every widget after it."""
    from helpers.environment import seed_everything

    seed_everything(0)
    yield
    try:
        from ipywidgets import Widget

        Widget.close_all()
    except ImportError:
        pass
