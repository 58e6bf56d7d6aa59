"""Explorers a learner clicks through: each is an ipywidgets container that can also be driven
from Python (`explorer.click("backward")`, `explorer.set(lr=0.1)`), so tests need no browser."""

__all__: list[str] = []
