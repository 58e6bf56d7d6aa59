"""Run by tests/test_ipywidgets7.py inside .venv-ipywidgets7: drive every explorer under 7.7."""

from __future__ import annotations

import ipywidgets
import torch

from helpers.plots import LiveLossPlot
from helpers.widgets import AccumulationExplorer, LearningRateExplorer, TrainingStepExplorer

assert ipywidgets.__version__.startswith("7.7"), ipywidgets.__version__

step = TrainingStepExplorer()
start = step.snapshot()
for phase in ("zero_grad", "forward", "loss", "backward", "step"):
    step.buttons[phase].click()  # the real button, as a click in the browser would
    assert step.history[-1].phase == phase, step.history
assert not torch.equal(step.snapshot()["weight"].value, start["weight"].value), "step moved nothing"
step.click("backward")
assert "second time" in step.message, step.message
step.click("reset")
assert torch.equal(step.snapshot()["weight"].value, start["weight"].value)

lr = LearningRateExplorer()
lr.lr_slider.value = 0.05
converged = lr.losses[-1]
lr.lr_slider.value = 5.0
assert lr.diverged and "diverged" in lr.message, lr.message
lr.optimizer_choice.value = "Adam"
lr.steps_slider.value = 10
assert len(lr.losses) >= 1 and converged < lr.losses[0] + 1e9

acc = AccumulationExplorer()
for k in (1, 2, 4, 8, 16):
    acc.micro_batches_slider.value = k
    assert acc.equal, (k, acc.max_differences)
acc.scale_toggle.value = "off"  # no scaling: K times the gradient
assert not acc.equal
acc.batchnorm_toggle.value = not acc.batchnorm_toggle.value
acc.uneven_toggle.value = not acc.uneven_toggle.value

live = LiveLossPlot(every=2)
for i in range(5):
    live.update(1.0 / (i + 1))
assert live.finish() is not None and live.value

# Displayed, each stores its live view, a picture of its state and a caption (7.7 displays
# widgets through _ipython_display_, not _repr_mimebundle_).
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from IPython.display import display  # noqa: E402

from helpers.widgets import ScalerStepExplorer  # noqa: E402

published = []
shell = InteractiveShell.instance()
shell.display_pub.publish = lambda data, metadata=None, **kwargs: published.append((data, metadata))
for shown in (step, lr, acc, ScalerStepExplorer(), live):
    display(shown)
    data, metadata = published[-1]
    view = data["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == shown.model_id, view
    assert data["image/png"] and data["text/plain"] == type(shown).CAPTION, data["text/plain"]
    assert metadata == {"image/png": {"alt": type(shown).CAPTION}}, metadata
assert len(published) == 5, published

print("ipywidgets", ipywidgets.__version__, ": every explorer works")
