"""The explorers, driven in a real JupyterLab page: clicks and key presses go through the browser.

Each test runs its notebook with Run All (the notebook's own cells leave every explorer in a known
state) and checks what test_run_all.py checks for the other widget notebooks (every cell ran
without error, every widget rendered live, every image decoded): 05 and 06 run in the browser
here only, once each. Then it uses the explorers as a learner would and waits, after every
action, for the kernel's answer to appear in the page. An element screenshot of each explorer
is written to build/screenshots/ (docs/images/ holds copies of them).
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.jupyter import (
    ROOT,
    SCREENSHOTS,
    WAIT_MS,
    assert_front_end_shows_everything,
    open_and_run_all,
)

pytestmark = pytest.mark.browser
WAIT = WAIT_MS  # ms for every wait on the kernel: generous, the machine may be busy
NOTEBOOK_05 = ROOT / "notebooks" / "05_optimizer_step.ipynb"
NOTEBOOK_06 = ROOT / "notebooks" / "06_zero_grad_and_accumulation.ipynb"

# The bytes behind an <img> (ipywidgets 8 shows an Image widget through a blob: URL), as base64.
IMAGE_BYTES = """async img => {
  await img.decode();
  const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}"""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _expect(locator: Any) -> Any:
    """Playwright's expect with WAIT as its default timeout (its own `expect` is left alone)."""
    from playwright.sync_api import Expect

    expect = Expect()
    expect.set_options(timeout=WAIT)
    return expect(locator)


def _explorer(page: Any, marker: Any) -> Any:
    """The one top-level widget box in an output area that contains `marker` (a page locator)."""
    root = page.locator(".jp-OutputArea-output > .jupyter-widgets.widget-vbox").filter(has=marker)
    _expect(root).to_have_count(1)  # widget views render after the kernel is idle
    _expect(root).to_be_visible(timeout=WAIT)
    return root


def _screenshot(page: Any, root: Any, name: str) -> None:
    """Save an element screenshot of an explorer, with no focus ring or hover on it."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.mouse.move(0, 0)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    root.screenshot(path=str(SCREENSHOTS / f"{name}.png"), animations="disabled")


def _png(image: Any) -> bytes:
    """The PNG an Image widget shows in the page (checked to decode)."""
    from PIL import Image

    data = base64.b64decode(image.evaluate(IMAGE_BYTES))
    Image.open(io.BytesIO(data)).verify()
    return data


def _slider(root: Any, page: Any, label: str) -> tuple[Any, Any]:
    """The noUiSlider handle and the readout of the slider whose label is `label`."""
    slider = root.locator(".widget-slider").filter(
        has=page.locator("label.widget-label", has_text=label)
    )
    _expect(slider).to_have_count(1)
    return slider.locator(".noUi-handle"), slider.locator(".widget-readout")


def _press(handle: Any, key: str, times: int) -> None:
    handle.focus()
    for _ in range(times):
        handle.press(key)


# ----- notebook 05: TrainingStepExplorer and LearningRateExplorer --------------------------------


def _reference_step() -> dict[str, str]:
    """What one training step on the explorer's built-in problem gives, computed here with torch."""
    from helpers.state import format_value
    from helpers.widgets.step import default_problem

    model, loss_fn, optimizer, inputs, targets = default_problem()
    shown = {"weight0": format_value(model.weight), "bias0": format_value(model.bias)}
    prediction = model(inputs)
    loss = loss_fn(prediction, targets)
    loss.backward()
    optimizer.step()
    shown.update(
        prediction=format_value(prediction),
        loss=format_value(float(loss.detach())),
        weight_grad=format_value(model.weight.grad),
        bias_grad=format_value(model.bias.grad),
        weight1=format_value(model.weight),
        bias1=format_value(model.bias),
    )
    return shown


def _click(page: Any, root: Any, phase: str, says: tuple[str, ...]) -> None:
    """Click a phase button and wait until the message says `says` and the panel lists the click."""
    message = root.locator(".looplab-message")
    old = message.inner_text()
    for phrase in says:  # else the wait below could pass before the kernel answered
        assert phrase not in old, f"{phrase!r} is already on the message before {phase}: {old}"
    root.get_by_role("button", name=phase, exact=True).click()
    for phrase in says:
        _expect(message).to_contain_text(phrase)
    clicked = root.locator(".looplab-step-panel > div", has_text=re.compile("^Clicked:"))
    _expect(clicked).to_have_text(re.compile(rf"→ {phase}$"))


def _drive_training_step_explorer(page: Any, expected: dict[str, str]) -> None:
    root = _explorer(page, page.get_by_role("button", name="zero_grad", exact=True))
    _expect(root.get_by_role("button")).to_have_text(
        ["zero_grad", "forward", "loss", "backward", "step", "reset"]
    )
    panel = root.locator(".looplab-step-panel")
    message = root.locator(".looplab-message")

    def cells(label: str) -> Any:
        """The cells of the panel row whose first cell reads `label`."""
        row = panel.locator("tr").filter(has=page.get_by_text(label, exact=True))
        _expect(row).to_have_count(1)
        return row.locator("td")

    # The notebook's last cell clicked reset: the first weights, no grads, no prediction.
    _expect(message).to_contain_text("Back to the start")
    _expect(cells("weight").nth(1)).to_contain_text(expected["weight0"])
    _expect(cells("prediction").nth(1)).to_have_text("not computed yet")

    _click(page, root, "zero_grad", ("every .grad was already None, so nothing changed",))
    _expect(cells("weight").nth(2)).to_have_text("None")
    _expect(cells("bias").nth(2)).to_have_text("None")

    _click(page, root, "forward", ("prediction = model(inputs) computed 8 values",))
    _expect(cells("prediction").nth(1)).to_contain_text(expected["prediction"])
    _expect(cells("loss").nth(1)).to_have_text("not computed yet")

    _click(page, root, "loss", (f"loss = loss_fn(prediction, targets) = {expected['loss']}:",))
    _expect(cells("loss").nth(1)).to_have_text(expected["loss"])
    _expect(cells("weight").nth(2)).to_have_text("None")  # loss alone fills no .grad

    _click(page, root, "backward", ("loss.backward() filled .grad of every parameter",))
    _expect(cells("weight").nth(2)).to_have_text(f"{expected['weight_grad']} (new)")
    _expect(cells("bias").nth(2)).to_have_text(f"{expected['bias_grad']} (new)")
    _expect(cells("weight").nth(1)).to_have_text(expected["weight0"])  # backward moves no weight

    _click(
        page,
        root,
        "step",
        ("optimizer.step() changed the weights in place", "created the optimizer's state"),
    )
    _expect(cells("weight").nth(1)).to_contain_text(expected["weight1"])
    _expect(cells("bias").nth(1)).to_contain_text(expected["bias1"])
    _expect(cells("weight").nth(2)).to_have_text(expected["weight_grad"])  # step leaves .grad
    # SGD with momentum: the first step's buffer is the gradient itself.
    _expect(cells("weight").nth(3)).to_contain_text(f"momentum_buffer: {expected['weight_grad']}")
    _screenshot(page, root, "training_step_explorer")

    _click(page, root, "backward", ("second time", "backward() frees the graph it walks"))
    _expect(message).to_have_class(re.compile("looplab-warning"))
    _expect(cells("weight").nth(1)).to_contain_text(expected["weight1"])

    _click(page, root, "reset", ("Back to the start",))
    _expect(cells("weight").nth(1)).to_contain_text(expected["weight0"])
    _expect(cells("weight").nth(2)).to_contain_text("None")
    _expect(cells("prediction").nth(1)).to_have_text("not computed yet")


LOSS_RUN = re.compile(r"after 30 steps the loss went from (\S+) to (\S+), at")


def _drive_learning_rate_explorer(page: Any) -> None:
    root = _explorer(page, page.locator("label.widget-label", has_text="learning rate"))
    handle, readout = _slider(root, page, "learning rate")
    message = root.locator(".looplab-message")
    image = root.locator("img.widget-image")

    # The notebook's last cell set lr=0.1, 30 steps, SGD.
    _expect(readout).to_have_text("0.100")
    _expect(message).to_contain_text("SGD, learning rate 0.1: after 30 steps")
    first, last = LOSS_RUN.search(message.inner_text()).groups()
    old_src, old_png = image.get_attribute("src"), _png(image)

    # The log slider moves its exponent by 0.05 a key press: ten presses take 0.1 to 10**-0.5.
    _press(handle, "ArrowRight", 10)
    _expect(readout).to_have_text("0.316")
    _expect(message).to_contain_text("SGD, learning rate 0.316: after 30 steps")
    new_first, new_last = LOSS_RUN.search(message.inner_text()).groups()
    assert new_first == first, "the run no longer starts where it did"
    assert new_last != last, "the loss after 30 steps did not change with the learning rate"
    _expect(image).not_to_have_attribute("src", old_src)
    new_src, new_png = image.get_attribute("src"), _png(image)
    assert new_png != old_png, "the figure did not change with the learning rate"
    _screenshot(page, root, "learning_rate_explorer")

    root.get_by_role("button", name="SGD with momentum", exact=True).click()
    _expect(message).to_contain_text("SGD with momentum, learning rate 0.316")
    _expect(root.locator(".widget-toggle-button.mod-active")).to_have_text("SGD with momentum")
    _expect(image).not_to_have_attribute("src", new_src)
    assert _png(image) != new_png, "the figure did not change with the optimizer"


def test_training_step_and_learning_rate_explorers_in_the_browser(lab, lab_server):
    expected = _reference_step()
    before = _digest(NOTEBOOK_05)
    model = open_and_run_all(lab, lab_server, NOTEBOOK_05)
    assert_front_end_shows_everything(lab, model, NOTEBOOK_05)
    _drive_training_step_explorer(lab, expected)
    _drive_learning_rate_explorer(lab)
    assert _digest(NOTEBOOK_05) == before, "the browser run changed the notebook file"


# ----- notebook 06: AccumulationExplorer ----------------------------------------------------------

PARAMETERS = ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]
WITH_BATCHNORM = [
    "hidden.weight",
    "hidden.bias",
    "norm.weight",
    "norm.bias",
    "out.weight",
    "out.bias",
]


def test_accumulation_explorer_in_the_browser(lab, lab_server):
    before = _digest(NOTEBOOK_06)
    page = lab
    model = open_and_run_all(page, lab_server, NOTEBOOK_06)
    assert_front_end_shows_everything(page, model, NOTEBOOK_06)
    root = _explorer(page, page.locator("label.widget-label", has_text="micro-batches K"))
    handle, readout = _slider(root, page, "micro-batches K")
    message = root.locator(".looplab-message")
    table = root.locator(".looplab-accumulation")
    rows = table.locator("tbody tr")

    # The notebook's last cell set K=4, loss / K, even micro-batches, no BatchNorm.
    _expect(readout).to_have_text("4")
    _expect(table).to_contain_text("48 samples in 4 micro-batches of sizes 12, 12, 12, 12;")
    _expect(message).to_contain_text("The gradients are equal.")

    _press(handle, "ArrowRight", 2)
    _expect(readout).to_have_text("6")
    _expect(table).to_contain_text(
        "48 samples in 6 micro-batches of sizes 8, 8, 8, 8, 8, 8; each micro-batch loss is "
        "multiplied by 1/6 before backward().",
        timeout=WAIT,
    )
    _expect(message).to_contain_text("dividing each by 6")
    _expect(rows.locator("td:nth-child(1)")).to_have_text(PARAMETERS)
    _expect(rows.locator("td:nth-child(5)")).to_have_text(["equal"] * len(PARAMETERS))

    batchnorm = root.get_by_role("checkbox", name="BatchNorm layer")
    _expect(batchnorm).not_to_be_checked()
    batchnorm.check()
    _expect(message).to_contain_text("The gradients are different. BatchNorm in train mode")
    _expect(rows.locator("td:nth-child(1)")).to_have_text(WITH_BATCHNORM)
    # hidden.bias agrees only because BatchNorm subtracts the mean right after it.
    _expect(rows.locator("td:nth-child(5)")).to_have_text(
        ["differs", "equal", "differs", "differs", "differs", "differs"]
    )
    _expect(table).to_contain_text("6 micro-batches")  # the K from the slider is kept
    _screenshot(page, root, "accumulation_explorer")
    assert _digest(NOTEBOOK_06) == before, "the browser run changed the notebook file"
