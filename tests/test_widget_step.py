"""TrainingStepExplorer: every button, every out-of-order click, checked on the real tensors."""

from __future__ import annotations

import warnings

import ipywidgets as widgets
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from helpers.state import TrainingState, diff, snapshot
from helpers.widgets.step import PHASES, Click, TrainingStepExplorer, default_problem

ALL = (*PHASES, "reset")


def _run(explorer, *phases):
    for phase in phases:
        explorer.click(phase)
    return explorer


def _single_grads(explorer):
    """The gradient of one forward-loss-backward at the current weights, computed on the side."""
    params = list(explorer.model.parameters())
    loss = explorer.loss_fn(explorer.model(explorer.inputs), explorer.targets)
    return [g.detach() for g in torch.autograd.grad(loss, params)]


def _two_layer():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    inputs, targets = torch.randn(6, 3), torch.randn(6, 1)
    return model, nn.MSELoss(), optimizer, inputs, targets


# -- building ---------------------------------------------------------------------------------


def test_builds_with_no_arguments_on_the_default_problem():
    explorer = TrainingStepExplorer()
    assert isinstance(explorer, widgets.VBox)
    assert repr(explorer) == "TrainingStepExplorer()"
    assert isinstance(explorer.model, nn.Linear)
    assert explorer.inputs.shape == (8, 2) and explorer.targets.shape == (8, 1)
    assert isinstance(explorer.optimizer, torch.optim.SGD)
    assert explorer.optimizer.param_groups[0]["momentum"] > 0
    assert list(explorer.buttons) == ["zero_grad", "forward", "loss", "backward", "step", "reset"]
    assert [b.description for b in explorer.buttons.values()] == list(ALL)
    assert explorer.buttons["backward"].tooltip == "loss.backward()"
    assert explorer.prediction is None and explorer.loss is None
    assert explorer.history == []
    assert "Nothing clicked yet" in explorer.message
    assert "not computed yet" in explorer.panel_html
    kinds = [type(child) for child in explorer.children]
    assert widgets.Output not in kinds


def test_default_problem_is_seeded_and_leaves_the_global_generator_alone():
    torch.manual_seed(5)
    expected_next = torch.rand(1)
    torch.manual_seed(5)
    first = default_problem()
    assert torch.equal(torch.rand(1), expected_next)
    second = default_problem()
    assert torch.equal(first[0].weight, second[0].weight)
    assert torch.equal(first[3], second[3]) and torch.equal(first[4], second[4])


def test_the_default_problem_learns():
    explorer = TrainingStepExplorer()
    losses = []
    for _ in range(5):
        _run(explorer, "zero_grad", "forward", "loss", "backward", "step")
        losses.append(explorer.loss.item())
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses


def test_snapshot_is_a_training_state_of_now():
    explorer = TrainingStepExplorer()
    state = explorer.snapshot()
    assert isinstance(state, TrainingState)
    assert len(diff(state, snapshot(explorer.model, explorer.optimizer))) == 0
    _run(explorer, "forward", "loss", "backward")
    assert explorer.snapshot()["weight"].grad is not None


# -- the usual order --------------------------------------------------------------------------


def test_one_normal_step_does_what_pytorch_does():
    explorer = TrainingStepExplorer()
    model, x, y = explorer.model, explorer.inputs, explorer.targets
    w0, b0 = model.weight.detach().clone(), model.bias.detach().clone()

    explorer.click("zero_grad")
    assert "already None" in explorer.message and len(explorer.last_diff) == 0

    explorer.click("forward")
    assert torch.allclose(explorer.prediction, x @ w0.T + b0)
    assert explorer.prediction.grad_fn is not None
    assert "8 values" in explorer.message
    assert len(explorer.last_diff) == 0

    explorer.click("loss")
    assert torch.allclose(explorer.loss, ((x @ w0.T + b0 - y) ** 2).mean())
    assert f"= {explorer.loss.item():.4g}" in explorer.message
    assert len(explorer.last_diff) == 0

    explorer.click("backward")
    expected = _single_grads(explorer)
    assert torch.allclose(model.weight.grad, expected[0]) and torch.allclose(
        model.bias.grad, expected[1]
    )
    assert torch.equal(model.weight.detach(), w0), "backward must not change the weights"
    assert "filled .grad" in explorer.message
    assert {(c.parameter, c.what, c.kind) for c in explorer.last_diff} == {
        ("weight", "grad", "appeared"),
        ("bias", "grad", "appeared"),
    }

    explorer.click("step")
    lr = explorer.optimizer.param_groups[0]["lr"]
    # first SGD-momentum step: the buffer is the gradient, p <- p - lr * grad
    assert torch.allclose(model.weight.detach(), w0 - lr * expected[0])
    assert torch.allclose(model.bias.detach(), b0 - lr * expected[1])
    assert torch.equal(model.weight.grad, expected[0]), "step must not change .grad"
    assert "changed the weights in place" in explorer.message
    assert "momentum_buffer" in explorer.message
    assert explorer.last_diff.get("weight", "state['momentum_buffer']").kind == "appeared"
    assert [c.phase for c in explorer.history] == [
        "zero_grad",
        "forward",
        "loss",
        "backward",
        "step",
    ]
    assert all(isinstance(c, Click) and c.message for c in explorer.history)


def test_a_button_does_exactly_what_click_does():
    by_click = _run(TrainingStepExplorer(), "forward", "loss", "backward", "step")
    by_button = TrainingStepExplorer()
    for phase in ("forward", "loss", "backward", "step"):
        by_button.buttons[phase].click()
    assert [c.phase for c in by_button.history] == ["forward", "loss", "backward", "step"]
    assert by_button.message == by_click.message
    assert torch.equal(by_button.model.weight, by_click.model.weight)
    assert torch.equal(by_button.model.bias.grad, by_click.model.bias.grad)


# -- out of order -----------------------------------------------------------------------------


def test_step_with_every_grad_none_changes_nothing():
    explorer = TrainingStepExplorer()
    before = explorer.snapshot()
    explorer.click("step")
    assert len(diff(before, explorer.snapshot())) == 0
    assert all(p.grad is None for p in explorer.model.parameters())
    assert (
        "changed nothing" in explorer.message
        and "skips parameters whose .grad is None" in explorer.message
    )


def test_step_with_none_grads_keeps_momentum_state_too():
    explorer = _run(TrainingStepExplorer(), "forward", "loss", "backward", "step", "zero_grad")
    before = explorer.snapshot()
    assert "momentum_buffer" in before["weight"].optimizer_state
    explorer.click("step")
    assert len(diff(before, explorer.snapshot())) == 0, "no momentum-only move when .grad is None"
    assert "changed nothing" in explorer.message


def test_backward_twice_shows_pytorchs_error_and_what_to_do():
    explorer = _run(TrainingStepExplorer(), "forward", "loss", "backward")
    grads = [p.grad.clone() for p in explorer.model.parameters()]
    explorer.click("backward")
    assert "Trying to backward through the graph a second time" in explorer.message
    assert "backward() frees the graph it walks" in explorer.message
    assert "Click forward and loss again" in explorer.message
    assert "Traceback" not in explorer.message
    for p, g in zip(explorer.model.parameters(), grads, strict=True):
        assert torch.equal(p.grad, g)
    # a new loss from the same (already backpropagated) prediction fails the same way
    _run(explorer, "loss", "backward")
    assert "backward through the graph a second time" in explorer.message


def test_second_forward_loss_backward_without_zero_grad_adds_the_gradients():
    explorer = _run(TrainingStepExplorer(), "forward", "loss", "backward")
    single = [p.grad.clone() for p in explorer.model.parameters()]
    _run(explorer, "forward", "loss", "backward")
    for p, g in zip(explorer.model.parameters(), single, strict=True):
        assert torch.allclose(p.grad, 2 * g)
    assert "sum of 2 backward passes" in explorer.message
    assert "weight.grad:" in explorer.message and " + " in explorer.message
    _run(explorer, "forward", "loss", "backward")
    assert torch.allclose(explorer.model.weight.grad, 3 * single[0])
    assert "sum of 3 backward passes" in explorer.message


def test_forgotten_zero_grad_across_a_step_accumulates_old_and_new():
    explorer = _run(TrainingStepExplorer(), "forward", "loss", "backward", "step")
    old = explorer.model.weight.grad.clone()
    fresh = _single_grads(explorer)[0]
    _run(explorer, "forward", "loss", "backward")
    assert torch.allclose(explorer.model.weight.grad, old + fresh)
    assert "sum of 2" in explorer.message


def test_backward_with_no_loss_says_what_to_click():
    explorer = TrainingStepExplorer()
    explorer.click("backward")
    assert "no loss yet" in explorer.message and "click forward, then loss" in explorer.message
    assert all(p.grad is None for p in explorer.model.parameters())
    explorer.click("forward")
    explorer.click("backward")
    assert "click loss, then backward" in explorer.message
    assert all(p.grad is None for p in explorer.model.parameters())


def test_loss_with_no_prediction_says_what_to_click():
    explorer = TrainingStepExplorer()
    explorer.click("loss")
    assert explorer.loss is None
    assert "no prediction yet" in explorer.message and "click forward first" in explorer.message


def test_zero_grad_between_backward_and_step_wipes_the_update():
    explorer = _run(TrainingStepExplorer(), "forward", "loss", "backward")
    weights = explorer.model.weight.detach().clone()
    explorer.click("zero_grad")
    assert all(p.grad is None for p in explorer.model.parameters())
    assert "before step() used them" in explorer.message
    explorer.click("step")
    assert torch.equal(explorer.model.weight, weights)
    assert explorer.optimizer.state_dict()["state"] == {}
    assert "zero_grad wiped the gradients" in explorer.message


def test_step_twice_with_the_same_gradient_moves_twice_and_momentum_grows():
    explorer = _run(TrainingStepExplorer(), "forward", "loss", "backward")
    w0 = explorer.model.weight.detach().clone()
    grad = explorer.model.weight.grad.clone()
    group = explorer.optimizer.param_groups[0]
    lr, momentum = group["lr"], group["momentum"]
    _run(explorer, "step", "step")
    # buf1 = g, buf2 = momentum * g + g; p2 = p0 - lr * (buf1 + buf2)
    assert torch.allclose(explorer.model.weight, w0 - lr * (grad + (momentum + 1) * grad))
    assert "ran again with the same .grad" in explorer.message
    assert "momentum buffer grew" in explorer.message
    assert "largest weight change" in explorer.history[-2].message


def test_forward_after_loss_leaves_an_old_loss_and_backward_says_so():
    explorer = _run(TrainingStepExplorer(), "forward", "loss", "forward")
    assert "still belongs to the previous prediction" in explorer.message
    assert "from an earlier prediction" in explorer.panel_html
    explorer.click("backward")
    assert "earlier prediction" in explorer.message
    assert explorer.model.weight.grad is not None


def test_loss_twice_is_the_same_number():
    explorer = _run(TrainingStepExplorer(), "forward", "loss")
    first = explorer.loss.item()
    explorer.click("loss")
    assert explorer.loss.item() == first
    assert "Computed again from the same prediction" in explorer.message


def test_forward_twice_gives_the_same_prediction_until_a_step():
    explorer = _run(TrainingStepExplorer(), "forward")
    first = explorer.prediction.detach().clone()
    explorer.click("forward")
    assert torch.equal(explorer.prediction, first)
    assert "Same values as before" in explorer.message
    _run(explorer, "loss", "backward", "step", "forward")
    assert not torch.equal(explorer.prediction, first)


def test_step_after_forward_marks_the_prediction_as_old():
    explorer = _run(TrainingStepExplorer(), "forward", "loss", "backward", "step")
    assert "computed with the old weights" in explorer.message
    assert "made before the last step" in explorer.panel_html
    explorer.click("loss")
    assert "loss of the old weights" in explorer.message


def test_backward_after_step_changed_the_weights_in_place():
    model, loss_fn, optimizer, x, y = _two_layer()
    explorer = TrainingStepExplorer(model, loss_fn, optimizer, x, y)
    _run(explorer, "forward", "loss", "backward", "forward", "loss", "step")
    grads = [p.grad.clone() for p in model.parameters()]
    explorer.click("backward")
    assert "modified by an inplace operation" in explorer.message
    assert "step() changed the weights in place" in explorer.message
    for p, g in zip(model.parameters(), grads, strict=True):
        assert torch.equal(p.grad, g)


def test_reset_restores_the_first_state():
    explorer = TrainingStepExplorer()
    start = explorer.snapshot()
    _run(explorer, "forward", "loss", "backward", "step", "step")
    explorer.click("reset")
    assert len(diff(start, explorer.snapshot())) == 0
    assert explorer.prediction is None and explorer.loss is None
    assert explorer.optimizer.state_dict()["state"] == {}
    assert "Back to the start" in explorer.message
    # the same explorer trains again exactly as the first time
    first = _run(TrainingStepExplorer(), "forward", "loss", "backward", "step")
    _run(explorer, "forward", "loss", "backward", "step")
    assert torch.equal(explorer.model.weight, first.model.weight)


# -- the learner's own model ----------------------------------------------------------------


def test_a_two_layer_net_with_adam():
    model, loss_fn, optimizer, x, y = _two_layer()
    params = list(model.parameters())
    explorer = TrainingStepExplorer(
        model=model, loss_fn=loss_fn, optimizer=optimizer, inputs=x, targets=y
    )
    assert explorer.model is model and explorer.optimizer is optimizer
    _run(explorer, "zero_grad", "forward", "loss", "backward")
    grads = [p.grad.clone() for p in params]
    reference = [p.detach().clone() for p in params]
    twin = torch.optim.Adam([r.requires_grad_() for r in reference], lr=0.05)
    for r, g in zip(reference, grads, strict=True):
        r.grad = g.clone()
    twin.step()
    explorer.click("step")
    for p, r in zip(params, reference, strict=True):
        assert torch.allclose(p, r)
    assert "Adam" in explorer.message
    state = explorer.snapshot()
    assert {"step", "exp_avg", "exp_avg_sq"} <= set(state["0.weight"].optimizer_state)
    assert state.names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    explorer.click("reset")
    assert all(p is q for p, q in zip(model.parameters(), params, strict=True))
    assert optimizer.param_groups[0]["params"][0] is params[0]
    assert optimizer.state_dict()["state"] == {}


def test_own_model_without_an_optimizer_gets_sgd():
    model = nn.Linear(3, 2)
    explorer = TrainingStepExplorer(model, inputs=torch.randn(4, 3), targets=torch.randn(4, 2))
    assert isinstance(explorer.optimizer, torch.optim.SGD)
    assert explorer.optimizer.param_groups[0]["params"][0] is model.weight
    assert isinstance(explorer.loss_fn, nn.MSELoss)


def test_parameters_the_loss_does_not_reach_are_named():
    class HalfUsed(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(2, 1)
            self.unused = nn.Linear(2, 1)

        def forward(self, x):
            return self.used(x)

    model = HalfUsed()
    explorer = TrainingStepExplorer(model, inputs=torch.randn(4, 2), targets=torch.randn(4, 1))
    _run(explorer, "forward", "loss", "backward")
    assert "No gradient reached unused.weight, unused.bias" in explorer.message
    explorer.click("step")
    assert "Skipped unused.weight, unused.bias" in explorer.message


def test_errors_inside_the_learners_code_become_messages():
    calls = {"n": 0}

    def flaky(prediction, target):
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("my loss broke\nsecond line")
        return nn.functional.mse_loss(prediction, target)

    explorer = TrainingStepExplorer(loss_fn=flaky)
    _run(explorer, "forward", "loss")
    assert explorer.message == "loss did not work: RuntimeError: my loss broke"
    assert explorer.history[-1] == Click("loss", explorer.message)
    assert explorer.loss is None


def test_a_detached_loss_gets_an_explanation():
    explorer = TrainingStepExplorer(
        loss_fn=lambda p, t: torch.tensor(nn.functional.mse_loss(p, t).item())
    )
    _run(explorer, "forward", "loss", "backward")
    assert "PyTorch refused" in explorer.message
    assert "not connected to any parameter" in explorer.message
    assert all(p.grad is None for p in explorer.model.parameters())


def test_a_pytorch_warning_is_shown_not_printed():
    inputs, targets = torch.randn(8, 2), torch.randn(8)  # (8,) against a prediction of (8, 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        explorer = _run(TrainingStepExplorer(inputs=inputs, targets=targets), "forward", "loss")
    assert caught == []
    assert "PyTorch warned: Using a target size" in explorer.message


def test_building_does_not_change_batchnorm_statistics():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1))
    before = model[1].running_mean.clone()
    TrainingStepExplorer(model, inputs=torch.randn(8, 2) + 5, targets=torch.randn(8, 1))
    assert torch.equal(model[1].running_mean, before)
    assert int(model[1].num_batches_tracked) == 0


# -- the panel --------------------------------------------------------------------------------


def test_panel_highlights_what_the_last_click_changed():
    explorer = _run(TrainingStepExplorer(), "forward", "loss", "backward")
    page = explorer.panel_html
    # after backward: the .grad cells are highlighted, the value cells are not
    assert page.count("background:#fff3b0") == 1 + 2  # the legend + two .grad cells
    assert "(new)" in page
    explorer.click("step")
    page = explorer.panel_html
    assert page.count("background:#fff3b0") == 1 + 4  # two values + two momentum buffers
    assert "changed by up to" in page and "momentum_buffer" in page
    assert "Clicked: forward → loss → backward → step" in page
    assert "0x" not in page


def test_panel_shows_prediction_loss_and_hyperparameters():
    explorer = _run(TrainingStepExplorer(), "forward", "loss")
    page = explorer.panel_html
    assert f"<code>{explorer.loss.item():.4g}</code>" in page
    assert "SGD param_groups[0]: <code>lr=0.1, momentum=0.5" in page
    assert page.count("fff3b0") == 2  # the legend + the loss


# -- bad input --------------------------------------------------------------------------------


def test_click_rejects_unknown_phases_listing_them():
    explorer = TrainingStepExplorer()
    with pytest.raises(
        ValueError,
        match="phase must be one of 'zero_grad', 'forward', 'loss', 'backward', 'step', 'reset'; got 'fit'",
    ):
        explorer.click("fit")
    with pytest.raises(ValueError, match="phase must be one of"):
        explorer.click(3)
    assert explorer.history == []


@pytest.mark.parametrize(
    ("kwargs", "error", "phrase"),
    [
        ({"model": "net"}, TypeError, "model must be a torch.nn.Module"),
        ({"loss_fn": 3}, TypeError, "loss_fn must be callable"),
        (
            {"model": nn.Linear(2, 1), "optimizer": "SGD"},
            TypeError,
            "optimizer must be a torch.optim.Optimizer",
        ),
        (
            {"inputs": [[1.0, 2.0]], "targets": torch.zeros(1, 1)},
            TypeError,
            "inputs must be a torch.Tensor",
        ),
        (
            {"inputs": torch.zeros(1, 2), "targets": [0.0]},
            TypeError,
            "targets must be a torch.Tensor",
        ),
        ({"inputs": torch.zeros(3, 2)}, ValueError, "pass inputs and targets together"),
        (
            {"optimizer": torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)},
            ValueError,
            "optimizer was given without model",
        ),
        (
            {"model": nn.Linear(2, 1)},
            ValueError,
            "with your own model, pass inputs and targets too",
        ),
        (
            {"inputs": torch.zeros(4, 2), "targets": torch.zeros(3, 1)},
            ValueError,
            "same number of samples",
        ),
        (
            {"inputs": torch.tensor(1.0), "targets": torch.zeros(1)},
            ValueError,
            "inputs must have a batch dimension",
        ),
        (
            {"inputs": torch.zeros(4, 3), "targets": torch.zeros(4, 1)},
            ValueError,
            r"model\(inputs\) failed with RuntimeError",
        ),
        (
            {"inputs": torch.zeros(4, 2), "targets": torch.zeros(4, 3, 5)},
            ValueError,
            r"loss_fn\(prediction, targets\) failed",
        ),
        ({"loss_fn": lambda p, t: (p - t) ** 2}, ValueError, "loss_fn must return one number"),
        (
            {"loss_fn": lambda p, t: float(((p - t) ** 2).mean())},
            TypeError,
            "loss_fn must return a torch.Tensor",
        ),
    ],
)
def test_bad_arguments_get_a_clear_message(kwargs, error, phrase):
    with pytest.raises(error, match=phrase):
        TrainingStepExplorer(**kwargs)


def test_frozen_model_and_foreign_optimizer_are_refused():
    frozen = nn.Linear(2, 1).requires_grad_(False)
    with pytest.raises(ValueError, match="no parameters that require grad"):
        TrainingStepExplorer(frozen, inputs=torch.zeros(2, 2), targets=torch.zeros(2, 1))
    model, other = nn.Linear(2, 1), nn.Linear(2, 1)
    with pytest.raises(ValueError, match="optimizer holds none of model's parameters"):
        TrainingStepExplorer(
            model,
            optimizer=torch.optim.SGD(other.parameters(), lr=0.1),
            inputs=torch.zeros(2, 2),
            targets=torch.zeros(2, 1),
        )


# -- fuzzing ----------------------------------------------------------------------------------


def _check_invariants(explorer, phase, before, start):
    after = explorer.snapshot()
    changes = diff(before, after)
    moved = changes.parameters_changed("value")
    touched_state = [c for c in changes if c.what.startswith("state[")]
    assert isinstance(explorer.message, str) and explorer.message
    assert explorer.history[-1] == Click(phase, explorer.message)
    assert "Traceback" not in explorer.message
    assert explorer.panel_html.startswith('<div class="looplab-step-panel"')
    if phase in ("zero_grad", "forward", "loss", "backward"):
        assert moved == [] and touched_state == [], (
            f"{phase} must not change weights or optimizer state"
        )
    if phase == "zero_grad":
        assert all(p.grad is None for p in explorer.model.parameters())
    if phase in ("forward", "loss", "step"):
        assert changes.parameters_changed("grad") == [], f"{phase} must not change .grad"
    if phase == "step" and all(p.grad is None for p in explorer.model.parameters()):
        assert len(changes) == 0
    if phase == "reset":
        assert len(diff(start, after)) == 0
        assert explorer.prediction is None and explorer.loss is None

    def keys(d):
        return [(c.parameter, c.what, c.kind) for c in d]

    assert keys(explorer.last_diff) == keys(changes), "the panel highlights exactly what changed"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(phases=st.lists(st.sampled_from(ALL), min_size=1, max_size=14), adam=st.booleans())
def test_random_click_sequences_never_raise_and_keep_invariants(phases, adam):
    explorer = TrainingStepExplorer(*_two_layer()) if adam else TrainingStepExplorer()
    start = explorer.snapshot()
    for n, phase in enumerate(phases, start=1):
        before = explorer.snapshot()
        explorer.click(phase)
        assert len(explorer.history) == n
        _check_invariants(explorer, phase, before, start)
        for p in explorer.model.parameters():
            assert torch.isfinite(p).all()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(repeats=st.integers(1, 4))
def test_accumulation_is_a_sum_for_any_number_of_passes(repeats):
    explorer = TrainingStepExplorer()
    single = _single_grads(explorer)
    for _ in range(repeats):
        _run(explorer, "forward", "loss", "backward")
    for p, g in zip(explorer.model.parameters(), single, strict=True):
        assert torch.allclose(p.grad, repeats * g, rtol=1e-5, atol=1e-6)
    if repeats > 1:
        assert f"sum of {repeats} backward passes" in explorer.message


# -- robustness -------------------------------------------------------------------------------


def test_zero_grad_says_which_gradients_it_cannot_clear():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    optimizer = torch.optim.SGD(model[1].parameters(), lr=0.1)
    explorer = TrainingStepExplorer(model, None, optimizer, torch.randn(4, 2), torch.randn(4, 1))
    _run(explorer, "forward", "loss", "backward", "zero_grad")
    assert model[1].weight.grad is None
    assert model[0].weight.grad is not None
    assert "0.weight, 0.bias kept their .grad" in explorer.message


def test_message_colour_follows_its_kind():
    explorer = _run(TrainingStepExplorer(), "forward")
    assert "looplab-info" in explorer._message_html.value
    explorer.click("backward")
    assert "looplab-warning" in explorer._message_html.value


def test_a_button_never_raises_even_when_the_explorer_breaks(monkeypatch):
    explorer = TrainingStepExplorer()

    def broken():
        raise RuntimeError("snapshot exploded")

    monkeypatch.setattr(explorer, "snapshot", broken)
    explorer.buttons["forward"].click()
    assert explorer.message == "forward did not work: RuntimeError: snapshot exploded"
    assert "looplab-error" in explorer._message_html.value


def test_changes_made_outside_the_explorer_are_not_blamed_on_the_next_click():
    explorer = TrainingStepExplorer()
    with torch.no_grad():
        explorer.model.weight.add_(1.0)
    explorer.click("forward")
    assert len(explorer.last_diff) == 0
    assert explorer.panel_html.count("fff3b0") == 2  # the legend and the prediction only
