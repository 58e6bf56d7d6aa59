"""Explorers a learner clicks through: each is an ipywidgets container that can also be driven
from Python (`explorer.click("backward")`, `explorer.set(lr=0.1)`), so tests need no browser."""

from helpers.widgets.accumulation import AccumulationExplorer
from helpers.widgets.learning_rate import LearningRateExplorer
from helpers.widgets.scaler_step import ScalerStepExplorer
from helpers.widgets.step import TrainingStepExplorer

__all__: list[str] = [
    "TrainingStepExplorer",
    "LearningRateExplorer",
    "AccumulationExplorer",
    "ScalerStepExplorer",
]
