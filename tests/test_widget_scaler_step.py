"""ScalerStepExplorer: each button runs the real call, the panel marks what changed, and a line out
of its place gets a message that says what goes wrong (no click ever raises)."""

from __future__ import annotations

import ipywidgets as widgets
import pytest
import torch

from helpers.widgets.scaler_step import ACTIONS, ScalerStepExplorer, cpu_grad_scaler

pytestmark = pytest.mark.skipif(cpu_grad_scaler() is None, reason="no CPU GradScaler")

CANONICAL = [
    "backward",
    "backward",
    "unscale_",
    "clip",
    "step",
    "update",
    "scheduler.step",
    "zero_grad",
]


@pytest.fixture
def explorer():
    made = ScalerStepExplorer()
    yield made
    widgets.Widget.close_all()


def run(explorer, actions):
    changes = []
    for action in actions:
        explorer.click(action)
        changes.append((action, explorer.changed, explorer.message))
    return changes


def test_builds_and_leaves_the_global_generator_alone():
    state = torch.random.get_rng_state()
    made = ScalerStepExplorer()
    assert torch.equal(state, torch.random.get_rng_state())
    assert repr(made) == "ScalerStepExplorer()"
    assert "Nothing clicked yet" in made.message
    assert set(made.buttons) == set(ACTIONS)
    widgets.Widget.close_all()


def test_the_canonical_order_changes_each_holder_where_the_notebook_says(explorer):
    changed = {action: c for action, c, _ in run(explorer, CANONICAL)}
    assert changed["unscale_"] == [".grad"] and changed["clip"] == [".grad"]
    assert changed["step"] == ["parameters", "optimizer state"]
    assert changed["scheduler.step"] == ["learning rate", "scheduler steps"]
    assert changed["zero_grad"] == [".grad"]
    messages = [c.message for c in explorer.history]
    assert not any("wiped" in m or "*scaled*" in m or "warns" in m for m in messages)
    assert explorer.state[".grad"] is None


def test_the_scaled_gradient_is_the_true_one_times_the_scale(explorer):
    explorer.click("backward")
    scaled = [p.grad.clone() for p in explorer.model.parameters()]
    explorer.click("unscale_")
    for s, p in zip(scaled, explorer.model.parameters(), strict=True):
        assert torch.allclose(s / 65536.0, p.grad)


def test_clip_before_unscale_is_named(explorer):
    run(explorer, ["backward", "backward", "clip"])
    assert "*scaled*" in explorer.message and "unscale_ first" in explorer.message


def test_clip_after_step_is_named(explorer):
    run(explorer, ["backward", "backward", "unscale_", "step", "clip"])
    assert "already used the gradient" in explorer.message


def test_overflow_skips_the_step_and_update_halves_the_scale(explorer):
    run(explorer, ["overflow backward", "unscale_"])
    weights = explorer.state["parameters"]
    explorer.click("step")
    assert "Skipped" in explorer.message and explorer.state["parameters"] == weights
    assert explorer.state["optimizer state"] == 0
    explorer.click("update")
    assert explorer.state["scaler scale"] == 32768.0 and "halved" in explorer.message


def test_two_clean_steps_double_the_scale(explorer):
    run(explorer, CANONICAL + CANONICAL)
    assert explorer.state["scaler scale"] == 131072.0
    assert "doubled" in explorer.message or "doubled" in explorer.history[-3].message


def test_scheduler_before_step_shows_pytorchs_warning(explorer):
    explorer.click("scheduler.step")
    assert "before `optimizer.step()`" in explorer.message
    explorer.click("scheduler.step")
    assert "ran ahead" in explorer.message


def test_zero_grad_before_step_and_unscale_twice_and_step_without_grads(explorer):
    run(explorer, ["backward", "zero_grad"])
    assert "wiped" in explorer.message
    explorer.click("step")
    assert "no gradients" in explorer.message
    run(explorer, ["backward", "unscale_", "unscale_"])
    assert "did not work" in explorer.message and "unscale_()" in explorer.message


def test_unscale_inside_the_window_and_backward_after_it_are_named(explorer):
    run(explorer, ["backward", "unscale_"])
    assert "Only 1 of K = 2" in explorer.message
    explorer.click("backward")
    assert "the mix is wrong" in explorer.message


def test_a_button_does_what_click_does_and_bad_names_raise(explorer):
    explorer.buttons["backward"].click()
    assert explorer.history[-1].action == "backward" and explorer.state[".grad"] is not None
    with pytest.raises(ValueError, match="action must be one of"):
        explorer.click("forward")


def test_reset_starts_again_from_the_same_weights(explorer):
    start = explorer.state
    run(explorer, CANONICAL + ["reset"])
    assert explorer.state == start
    assert "changed" not in explorer.panel_html.split("parameters")[0]
