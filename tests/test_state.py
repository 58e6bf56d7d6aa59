"""helpers.state: snapshots copy the right things, diff finds every change, tables render."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from helpers.state import (
    Change,
    Ownership,
    StateDiff,
    TrainingState,
    diff,
    format_value,
    ownership,
    snapshot,
)


def _problem():
    model = nn.Linear(2, 1)
    x = torch.randn(8, 2)
    y = torch.randn(8, 1)
    return model, x, y


def _backward(model, x, y):
    nn.functional.mse_loss(model(x), y).backward()


# -- snapshot ---------------------------------------------------------------------------------


def test_snapshot_copies_values_and_grads_by_name():
    model, x, y = _problem()
    before = snapshot(model)
    assert isinstance(before, TrainingState)
    assert before.names == ["weight", "bias"]
    assert torch.equal(before["weight"].value, model.weight.detach())
    assert before["weight"].grad is None and before["bias"].grad is None
    assert before.optimizer_name is None and before.hyperparameters == ()
    _backward(model, x, y)
    after = snapshot(model)
    assert torch.equal(after["bias"].grad, model.bias.grad)
    # copies, not views: changing the model later does not change the snapshot
    with torch.no_grad():
        model.weight.add_(1.0)
        model.bias.grad.mul_(3.0)
    assert not torch.equal(after["weight"].value, model.weight.detach())
    assert not torch.equal(after["bias"].grad, model.bias.grad)
    assert after["weight"].value.data_ptr() != model.weight.data_ptr()


def test_snapshot_reads_sgd_momentum_and_hyperparameters():
    model, x, y = _problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    empty = snapshot(model, optimizer)
    assert empty["weight"].optimizer_state == {}
    assert empty["weight"].group == 0
    assert empty.optimizer_name == "SGD"
    assert "params" not in empty.hyperparameters[0]
    assert empty.hyperparameters[0]["lr"] == 0.1
    assert empty.hyperparameters[0]["momentum"] == 0.9
    _backward(model, x, y)
    optimizer.step()
    state = snapshot(model, optimizer)
    buffer = state["weight"].optimizer_state["momentum_buffer"]
    assert torch.equal(buffer, optimizer.state[model.weight]["momentum_buffer"])
    # after the first step the buffer is the gradient itself
    assert torch.equal(buffer, model.weight.grad)
    optimizer.state[model.weight]["momentum_buffer"].mul_(2)
    assert torch.equal(buffer, model.weight.grad), "the snapshot must hold a copy of the buffer"


def test_snapshot_reads_adam_moments_and_step():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = torch.randn(5, 3), torch.randn(5, 1)
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    state = snapshot(model, optimizer)
    assert state.names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    keys = set(state["0.weight"].optimizer_state)
    assert {"step", "exp_avg", "exp_avg_sq"} <= keys
    assert float(state["2.bias"].optimizer_state["step"]) == 3.0
    assert state.hyperparameters[0]["betas"] == (0.9, 0.999)


def test_snapshot_names_parameters_the_model_does_not_own_and_marks_left_out_ones():
    model, x, y = _problem()
    stranger = nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([model.weight, stranger], lr=0.1)
    state = snapshot(model, optimizer)
    assert state.names == ["weight", "bias", "param_groups[0]['params'][1]"]
    assert state["bias"].group is None
    assert state["param_groups[0]['params'][1]"].group == 0
    assert "(not in the optimizer)" in str(state)


def test_snapshot_of_param_groups_lists_each_group():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    optimizer = torch.optim.SGD(
        [{"params": model[0].parameters(), "lr": 0.5}, {"params": model[1].parameters()}], lr=0.1
    )
    state = snapshot(model, optimizer)
    assert [g["lr"] for g in state.hyperparameters] == [0.5, 0.1]
    assert state["1.bias"].group == 1
    assert "param_groups[1]: lr=0.1" in str(state)


def test_snapshot_rejects_wrong_arguments_with_a_message():
    model, _, _ = _problem()
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        snapshot("model")
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer"):
        snapshot(model, optimizer={"lr": 0.1})


def test_unknown_parameter_name_says_which_exist():
    model, _, _ = _problem()
    with pytest.raises(KeyError, match="its parameters: weight, bias"):
        snapshot(model)["weights"]


# -- diff -------------------------------------------------------------------------------------


def test_diff_of_the_same_state_is_empty():
    model, _, _ = _problem()
    state = snapshot(model, torch.optim.SGD(model.parameters(), lr=0.1))
    nothing = diff(state, state)
    assert isinstance(nothing, StateDiff)
    assert len(nothing) == 0 and not nothing
    assert str(nothing).startswith("No changes")
    assert repr(nothing) == "StateDiff(0 changes)"


def test_diff_follows_a_whole_training_step():
    model, x, y = _problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    s0 = snapshot(model, optimizer)
    _backward(model, x, y)
    s1 = snapshot(model, optimizer)
    backward = diff(s0, s1)
    assert [(c.parameter, c.what, c.kind) for c in backward] == [
        ("weight", "grad", "appeared"),
        ("bias", "grad", "appeared"),
    ]
    assert backward.parameters_changed() == []
    optimizer.step()
    s2 = snapshot(model, optimizer)
    step = diff(s1, s2)
    assert step.parameters_changed("value") == ["weight", "bias"]
    assert step.parameters_changed("grad") == []
    change = step.get("weight", "value")
    expected = float((s2["weight"].value - s1["weight"].value).abs().max())
    assert change.kind == "changed"
    assert math.isclose(change.max_abs_change, expected, rel_tol=1e-6)
    # plain SGD's first step moves each weight by lr * grad
    assert math.isclose(expected, float((0.1 * s1["weight"].grad).abs().max()), rel_tol=1e-5)
    assert step.get("bias", "state['momentum_buffer']").kind == "appeared"
    optimizer.zero_grad()
    s3 = snapshot(model, optimizer)
    cleared = diff(s2, s3)
    assert {(c.what, c.kind) for c in cleared} == {("grad", "disappeared")}
    assert cleared.get("weight", "grad").after is None


def test_diff_sees_buffers_and_hyperparameters_change():
    model, x, y = _problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _backward(model, x, y)
    optimizer.step()
    before = snapshot(model, optimizer)
    optimizer.step()
    optimizer.param_groups[0]["lr"] = 0.05
    after = snapshot(model, optimizer)
    changes = diff(before, after)
    buffer = changes.get("weight", "state['momentum_buffer']")
    assert buffer.kind == "changed"
    # same gradient twice: buf = 0.9 * grad + grad
    assert torch.allclose(buffer.after, 1.9 * model.weight.grad)
    lr = changes.get("param_groups[0]", "lr")
    assert lr.kind == "changed" and lr.before == 0.1 and lr.after == 0.05
    assert math.isclose(lr.max_abs_change, 0.05)
    assert changes.get("weight", "grad") is None


def test_diff_reports_added_removed_and_reshaped():
    a = snapshot(nn.Linear(2, 1))
    b = snapshot(nn.Linear(3, 1, bias=False))
    changes = diff(a, b)
    weight = changes.get("weight", "value")
    assert weight.kind == "reshaped" and weight.max_abs_change is None
    assert "shape (1, 2) → (1, 3)" in weight.describe()
    assert changes.get("bias", "parameter").kind == "removed"
    assert diff(b, a).get("bias", "parameter").kind == "added"


def test_diff_treats_nan_in_the_same_place_as_unchanged():
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    before = snapshot(model)
    after = snapshot(model)
    assert len(diff(before, after)) == 0
    with torch.no_grad():
        model.weight[0, 1] += 1.0
    assert diff(before, snapshot(model)).get("weight", "value").kind == "changed"


def test_diff_rejects_other_objects_with_a_message():
    state = snapshot(nn.Linear(1, 1))
    with pytest.raises(TypeError, match="before must be a TrainingState"):
        diff({"weight": 1}, state)
    with pytest.raises(TypeError, match="after must be a TrainingState"):
        diff(state, None)


def test_change_describes_small_and_large_tensors():
    small = Change("w", "value", "changed", torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]), 0.5)
    assert small.describe() == "[1, 2] → [1, 2.5] (largest change 0.5)"
    assert str(small) == "w value: changed, [1, 2] → [1, 2.5] (largest change 0.5)"
    assert repr(small) == "Change('w', 'value', 'changed')"
    big = Change("w", "value", "changed", torch.zeros(20), torch.ones(20), 1.0)
    assert big.describe() == "largest change 1"
    appeared = Change("w", "grad", "appeared", None, torch.tensor([0.123456]))
    assert appeared.describe() == "None → [0.1235]"


# -- formatting and rendering -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "None"),
        (torch.tensor(3.14159265), "3.142"),
        (torch.tensor([[1.0, -0.000123456], [2.5, 1e6]]), "[[1, -0.0001235], [2.5, 1e+06]]"),
        (torch.tensor([-0.0]), "[0]"),
        (torch.tensor([1, 2, 3]), "[1, 2, 3]"),
        (torch.tensor([True, False]), "[True, False]"),
        (torch.tensor([float("nan"), float("inf")]), "[nan, inf]"),
        (0.1, "0.1"),
        (7, "7"),
        (False, "False"),
        ((0.9, 0.999), "(0.9, 0.999)"),
        (torch.zeros(0), "[]"),
    ],
)
def test_format_value(value, text):
    assert format_value(value) == text


def test_format_value_summarises_large_tensors():
    t = torch.arange(20.0).reshape(4, 5)
    text = format_value(t)
    norm = float(torch.linalg.vector_norm(t))
    assert text == f"shape (4, 5), norm {norm:.4g}, first 0, 1, 2, …"
    assert format_value(torch.arange(3.0), max_elements=2).startswith("shape (3,)")


def test_format_value_hides_memory_addresses_and_checks_its_argument():
    class Thing:
        pass

    assert "0x" not in format_value(Thing())
    with pytest.raises(TypeError, match="max_elements must be a whole number"):
        format_value(1.0, max_elements=2.5)
    with pytest.raises(ValueError, match="max_elements must be 0 or more"):
        format_value(1.0, max_elements=-1)


def test_training_state_renders_as_text_and_html():
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.123456, -2.0]]))
        model.bias.fill_(0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.weight.grad = torch.tensor([[1.0, 2.0]])
    optimizer.step()
    state = snapshot(model, optimizer)
    assert repr(state) == "TrainingState(2 parameters, optimizer=SGD)"
    text = str(state)
    lines = text.splitlines()
    assert lines[0] == "Training state: 2 parameters, optimizer SGD"
    assert lines[1].split() == ["parameter", "shape", "value", ".grad", "optimizer", "state"]
    assert "weight     (1, 2)  [[0.02346, -2.2]]  [[1, 2]]  momentum_buffer: [[1, 2]]" in text
    assert "bias       (1,)    [0.5]" in text
    assert lines[-1].startswith("param_groups[0]: lr=0.1, momentum=0.9")
    page = state._repr_html_()
    assert page.startswith("<div><table") and "[[0.02346, -2.2]]" in page
    assert "momentum_buffer: [[1, 2]]" in page


def test_diff_renders_as_text_and_html():
    model = nn.Linear(2, 1)
    before = snapshot(model)
    model.bias.grad = torch.tensor([0.25])
    changes = diff(before, snapshot(model))
    assert repr(changes) == "StateDiff(1 change)"
    assert str(changes).splitlines() == [
        "1 change:",
        "parameter  what  kind      detail",
        "---------  ----  --------  -------------",
        "bias       grad  appeared  None → [0.25]",
    ]
    page = changes._repr_html_()
    assert "<caption" in page and "None → [0.25]" in page


def test_html_is_escaped():
    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.param_groups[0]["note"] = "<script>"
    page = snapshot(model, optimizer)._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "note='&lt;script&gt;'" in page.replace("&#x27;", "'")


# -- ownership --------------------------------------------------------------------------------


def test_ownership_table_from_live_objects():
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    table = ownership(model, optimizer)
    assert isinstance(table, Ownership)
    assert repr(table) == "Ownership(model=Linear, optimizer=SGD)"
    assert table.same_objects == {"weight": True, "bias": True}
    assert all(
        q is p for q, p in zip(optimizer.param_groups[0]["params"], model.parameters(), strict=True)
    )
    assert table.state_keys == {}
    rows = {(owner, holds): details for owner, holds, details in table.rows}
    assert rows[("model (Linear)", "parameters (named_parameters())")] == "weight (1, 2), bias (1,)"
    assert rows[("parameter weight", ".grad")] == "None"
    assert rows[("optimizer (SGD)", "references to parameters")] == (
        "weight, bias — each `is` the model's own Parameter object"
    )
    assert rows[("optimizer (SGD)", "hyper-parameters (param_groups[0])")].startswith(
        "lr=0.1, momentum=0.9"
    )
    assert rows[("optimizer (SGD)", "per-parameter state (state_dict()['state'])")] == (
        "empty (the first step() creates it)"
    )
    nn.functional.mse_loss(model(torch.randn(4, 2)), torch.randn(4, 1)).backward()
    optimizer.step()
    after = ownership(model, optimizer)
    assert after.state_keys == {"weight": ("momentum_buffer",), "bias": ("momentum_buffer",)}
    assert set(optimizer.state_dict()["state"][0]) == {"momentum_buffer"}
    rows = {(owner, holds): details for owner, holds, details in after.rows}
    assert rows[("parameter bias", ".grad")] == "tensor of shape (1,)"
    assert rows[("optimizer (SGD)", "per-parameter state (state_dict()['state'])")] == (
        "weight: momentum_buffer; bias: momentum_buffer"
    )
    text = str(after)
    assert text.splitlines()[0].split() == ["owner", "holds", "details"]
    assert "weight: momentum_buffer; bias: momentum_buffer" in text
    assert "<caption" in after._repr_html_() and "Who holds which state" in after._repr_html_()


def test_ownership_of_adam_lists_its_moments():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    optimizer = torch.optim.Adam(model.parameters())
    nn.functional.mse_loss(model(torch.randn(4, 2)), torch.randn(4, 1)).backward()
    optimizer.step()
    table = ownership(model, optimizer)
    assert set(table.state_keys) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert set(table.state_keys["2.bias"]) == {"step", "exp_avg", "exp_avg_sq"}


def test_ownership_says_when_the_optimizer_holds_other_objects():
    model = nn.Linear(2, 1)
    copy = nn.Linear(2, 1)
    copy.load_state_dict(model.state_dict())  # equal values, different objects
    table = ownership(model, torch.optim.SGD([copy.weight, model.bias], lr=0.1))
    assert table.same_objects == {"weight": False, "bias": True}
    details = dict(((o, h), d) for o, h, d in table.rows)[
        ("optimizer (SGD)", "references to parameters")
    ]
    assert "not parameters of this model: param_groups[0]['params'][0]" in details
    assert "not given to the optimizer, so step() never changes: weight" in details
    assert "each `is`" not in details


def test_ownership_without_optimizer_and_bad_arguments():
    table = ownership(nn.Linear(1, 1))
    assert table.optimizer_name is None and table.same_objects == {}
    assert len(table.rows) == 3
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        ownership(None)
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer"):
        ownership(nn.Linear(1, 1), "SGD")


# -- fuzzing ----------------------------------------------------------------------------------

_OPTIMIZERS = {
    "SGD": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "SGD-momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
    "Adam": lambda ps: torch.optim.Adam(ps, lr=0.01),
    "RMSprop": lambda ps: torch.optim.RMSprop(ps, lr=0.01),
    "Adagrad": lambda ps: torch.optim.Adagrad(ps, lr=0.1),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    widths=st.lists(st.integers(1, 5), min_size=2, max_size=4),
    bias=st.booleans(),
    name=st.sampled_from(sorted(_OPTIMIZERS)),
    actions=st.lists(st.sampled_from(["backward", "step", "zero_grad", "lr"]), max_size=6),
    seed=st.integers(0, 1000),
)
def test_snapshot_and_diff_on_random_models(widths, bias, name, actions, seed):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(widths, widths[1:], strict=False):
        layers += [nn.Linear(a, b, bias=bias), nn.Tanh()]
    model = nn.Sequential(*layers)
    optimizer = _OPTIMIZERS[name](model.parameters())
    x, y = torch.randn(3, widths[0]), torch.randn(3, widths[-1])
    for action in actions:
        before = snapshot(model, optimizer)
        if action == "backward":
            nn.functional.mse_loss(model(x), y).backward()
        elif action == "step":
            optimizer.step()
        elif action == "zero_grad":
            optimizer.zero_grad()
        else:
            optimizer.param_groups[0]["lr"] *= 0.5
        after = snapshot(model, optimizer)
        assert len(after) == len(list(model.parameters()))
        assert len(diff(after, after)) == 0
        changes = diff(before, after)
        for (n, p), old in zip(model.named_parameters(), before.parameters.values(), strict=True):
            moved = changes.get(n, "value")
            assert (moved is None) == torch.equal(old.value, p.detach())
            if moved is not None:
                assert math.isclose(
                    moved.max_abs_change,
                    float((p.detach() - old.value).abs().max()),
                    rel_tol=1e-6,
                    abs_tol=1e-12,
                )
            grad = changes.get(n, "grad")
            if old.grad is None and p.grad is None:
                assert grad is None
            elif old.grad is None:
                assert grad.kind == "appeared"
            elif p.grad is None:
                assert grad.kind == "disappeared"
            else:
                assert (grad is None) == torch.equal(old.grad, p.grad)
        if action == "backward":
            assert changes.parameters_changed("value") == []
        if action in ("zero_grad", "lr"):
            assert changes.parameters_changed("value") == []
            assert not [c for c in changes if c.what.startswith("state[")]
        for text in (
            str(after),
            repr(after),
            after._repr_html_(),
            str(changes),
            changes._repr_html_(),
        ):
            assert isinstance(text, str) and "0x" not in text
        assert "0x" not in str(ownership(model, optimizer))


def test_diff_sees_hyperparameters_and_groups_come_and_go():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    optimizer = torch.optim.SGD(model[0].parameters(), lr=0.1)
    before = snapshot(model, optimizer)
    optimizer.param_groups[0]["note"] = "warm-up"
    optimizer.add_param_group({"params": model[1].parameters(), "lr": 0.5})
    after = snapshot(model, optimizer)
    changes = diff(before, after)
    note = changes.get("param_groups[0]", "note")
    assert note.kind == "added" and note.after == "warm-up"
    assert changes.get("param_groups[1]", "lr").kind == "added"
    assert after["1.weight"].group == 1 and before["1.weight"].group is None
    assert diff(after, before).get("param_groups[1]", "lr").kind == "removed"
