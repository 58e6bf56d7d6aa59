"""Exercise checks of 11 — Autograd beyond deep learning: the right answers pass, each usual
mistake gets its own hint, and nothing a learner hands in makes a check raise."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, grad, vmap

from tests.test_checks import grade_keeping_random_state as grade

# --- 11.fit_line ---------------------------------------------------------------------------


def _fit(
    x,
    y,
    *,
    model,
    optimizer="adam",
    lr=0.1,
    steps=500,
    train=("w", "b"),
    b0=0.0,
    clear=True,
    step=True,
):
    """A line fit with the five steps; the keyword arguments plant the usual mistakes."""
    w = torch.tensor(0.0, requires_grad=True)
    b = torch.tensor(b0, requires_grad=True)
    chosen = [{"w": w, "b": b}[name] for name in train]
    make = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    opt = make(chosen, lr=lr)
    for _ in range(steps):
        if clear:
            opt.zero_grad()
        loss = ((model(w, b, x) - y) ** 2).mean()
        loss.backward()
        if step:
            opt.step()
    return w, b


def line(w, b, x):
    return w * x + b


def fit_line(x, y):
    return _fit(x, y, model=line)


def fit_line_sgd(x, y):
    return _fit(x, y, model=line, optimizer="sgd", lr=0.05, steps=1500)


def fit_line_items(x, y):
    w, b = fit_line(x, y)
    return w.item(), b.item()


def fit_line_shape_one(x, y):
    w, b = fit_line(x, y)
    return w.reshape(1), b.reshape(1)


def fit_line_swapped(x, y):
    w, b = fit_line(x, y)
    return b, w


def fit_line_minus(x, y):
    return _fit(x, y, model=lambda w, b, x: b - w * x)


def fit_line_origin(x, y):
    return _fit(x, y, model=lambda w, b, x: w * x)


def fit_line_frozen_intercept(x, y):
    return _fit(x, y, model=line, train=("w",), b0=1.0)


def fit_line_few_steps(x, y):
    return _fit(x, y, model=line, steps=15)


def fit_line_no_zero_grad(x, y):
    return _fit(x, y, model=line, clear=False)


def fit_line_no_zero_grad_sgd(x, y):
    return _fit(x, y, model=line, optimizer="sgd", lr=0.05, steps=1500, clear=False)


def fit_line_no_step(x, y):
    return _fit(x, y, model=line, step=False)


def fit_line_diverges(x, y):
    return _fit(x, y, model=line, optimizer="sgd", lr=1.0, steps=300)


def fit_line_hard_coded(x, y):
    return torch.tensor(2.463), torch.tensor(-1.011)


def fit_line_raises(x, y):
    return x @ y.unsqueeze(0)


def fit_line_none(x, y):
    return None


def fit_line_three(x, y):
    w, b = fit_line(x, y)
    return w, b, 0.0


def fit_line_vector(x, y):
    return torch.zeros(2), torch.tensor(0.0)


@pytest.mark.parametrize("answer", [fit_line, fit_line_sgd, fit_line_items, fit_line_shape_one])
def test_fit_line_right(answer):
    feedback = grade("11.fit_line", answer)
    assert feedback.ok, feedback.message


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (fit_line_swapped, "the two are swapped"),
        (fit_line_minus, "the wrong sign"),
        (fit_line_origin, "best line through the origin"),
        (fit_line_frozen_intercept, "the intercept is off"),
        (fit_line_few_steps, "has not converged"),
        (fit_line_no_zero_grad, "never cleared the gradients"),
        (fit_line_no_zero_grad_sgd, "never cleared the gradients"),
        (fit_line_no_step, "never called optimizer.step()"),
        (fit_line_diverges, "the fit blew up"),
        (fit_line_raises, "raised RuntimeError"),
        (fit_line_none, "returned None"),
        (fit_line_three, "returned 3 things"),
        (fit_line_vector, "a tensor of shape (2,)"),
        ((torch.tensor(2.5), torch.tensor(-1.0)), "itself, not the result of calling it"),
    ],
)
def test_fit_line_mistakes_get_their_hints(answer, phrase):
    feedback = grade("11.fit_line", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


def test_fit_line_hard_coded_numbers_are_caught_by_the_second_line():
    # The hard-coded numbers are the first line's least-squares fit; the second line differs.
    message = grade("11.fit_line", fit_line_hard_coded).message
    assert "the same line as for the first data set" in message, message


def test_fit_line_leaves_the_global_random_state_alone():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    grade("11.fit_line", fit_line_hard_coded)
    assert torch.equal(torch.rand(3), expected)


# --- 11.closure ----------------------------------------------------------------------------


def make_closure(optimizer, loss_fn):
    def closure():
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    return closure


def make_closure_item(optimizer, loss_fn):
    def closure():
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss.item()

    return closure


def make_closure_no_zero_grad(optimizer, loss_fn):
    def closure():
        loss = loss_fn()
        loss.backward()
        return loss

    return closure


def make_closure_no_backward(optimizer, loss_fn):
    def closure():
        optimizer.zero_grad()
        return loss_fn()

    return closure


def make_closure_no_return(optimizer, loss_fn):
    def closure():
        optimizer.zero_grad()
        loss_fn().backward()

    return closure


def make_closure_step_inside(optimizer, loss_fn):
    def closure():
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        optimizer.step()
        return loss

    return closure


def make_closure_loss_outside(optimizer, loss_fn):
    loss = loss_fn()

    def closure():
        optimizer.zero_grad()
        loss.backward()
        return loss

    return closure


def make_closure_called(optimizer, loss_fn):
    def closure():
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    return closure()


def make_closure_forgets_return(optimizer, loss_fn):
    def closure():
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss


def make_closure_zero_grad_last(optimizer, loss_fn):
    def closure():
        loss = loss_fn()
        loss.backward()
        optimizer.zero_grad()
        return loss

    return closure


def make_closure_wrong_value(optimizer, loss_fn):
    def closure():
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss * 2

    return closure


def make_closure_manual_update(optimizer, loss_fn):
    def closure():
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        with torch.no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p -= 0.01 * p.grad
        return loss

    return closure


def make_closure_raises(optimizer, loss_fn):
    return loss_fn.missing_attribute


@pytest.mark.parametrize("answer", [make_closure, make_closure_item])
def test_closure_right(answer):
    feedback = grade("11.closure", answer)
    assert feedback.ok, feedback.message


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (make_closure_no_zero_grad, "Start the closure with optimizer.zero_grad()"),
        (make_closure_no_backward, "Call loss.backward() inside it"),
        (make_closure_no_return, "returned None. End it with `return loss`"),
        (make_closure_step_inside, "Do not call optimizer.step() inside the closure"),
        (make_closure_loss_outside, "did not call loss_fn()"),
        (make_closure_called, "not a function"),
        (make_closure_forgets_return, "make_closure returned None"),
        (make_closure_zero_grad_last, ".grad is None after your closure ran"),
        (make_closure_wrong_value, "return the loss this call computed"),
        (make_closure_manual_update, "changed the parameters"),
        (make_closure_raises, "raised AttributeError"),
        (make_closure(None, None), "looks like a closure itself"),
    ],
)
def test_closure_mistakes_get_their_hints(answer, phrase):
    feedback = grade("11.closure", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


# --- 11.per_sample -------------------------------------------------------------------------


def per_sample_grads(model, loss_fn, X, y):
    params = {name: p.detach() for name, p in model.named_parameters()}

    def sample_loss(params, x, target):
        prediction = functional_call(model, params, (x.unsqueeze(0),))
        return loss_fn(prediction, target.unsqueeze(0))

    return vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, X, y)


def per_sample_grads_attached(model, loss_fn, X, y):
    params = dict(model.named_parameters())

    def sample_loss(params, x, target):
        return loss_fn(functional_call(model, params, (x.unsqueeze(0),)), target.unsqueeze(0))

    return vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, X, y)


def per_sample_grads_loop(model, loss_fn, X, y):
    rows = {name: [] for name, _ in model.named_parameters()}
    for i in range(len(X)):
        model.zero_grad()
        loss_fn(model(X[i : i + 1]), y[i : i + 1]).backward()
        for name, p in model.named_parameters():
            rows[name].append(p.grad.clone())
    return {name: torch.stack(g) for name, g in rows.items()}


def per_sample_grads_divided(model, loss_fn, X, y):
    grads = per_sample_grads(model, loss_fn, X, y)
    return {name: g / len(X) for name, g in grads.items()}


def per_sample_grads_full_batch(model, loss_fn, X, y):
    params = {name: p.detach() for name, p in model.named_parameters()}
    full = grad(lambda p: loss_fn(functional_call(model, p, (X,)), y))(params)
    return {name: g.expand(len(X), *g.shape) for name, g in full.items()}


def per_sample_grads_batch_shape(model, loss_fn, X, y):
    params = {name: p.detach() for name, p in model.named_parameters()}
    return grad(lambda p: loss_fn(functional_call(model, p, (X,)), y))(params)


def per_sample_grads_no_functional_call(model, loss_fn, X, y):
    params = {name: p.detach() for name, p in model.named_parameters()}

    def sample_loss(params, x, target):
        return loss_fn(model(x.unsqueeze(0)), target.unsqueeze(0))

    return vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, X, y)


def per_sample_grads_in_dims(model, loss_fn, X, y):
    params = {name: p.detach() for name, p in model.named_parameters()}

    def sample_loss(params, x, target):
        return loss_fn(functional_call(model, params, (x.unsqueeze(0),)), target.unsqueeze(0))

    return vmap(grad(sample_loss), in_dims=(0, 0))(params, X, y)


def per_sample_grads_item(model, loss_fn, X, y):
    params = {name: p.detach() for name, p in model.named_parameters()}

    def sample_loss(params, x, target):
        loss = loss_fn(functional_call(model, params, (x.unsqueeze(0),)), target.unsqueeze(0))
        return loss if loss.item() >= 0 else -loss

    return vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, X, y)


def per_sample_grads_list(model, loss_fn, X, y):
    return list(per_sample_grads(model, loss_fn, X, y).values())


def per_sample_grads_renamed(model, loss_fn, X, y):
    return {f"p{i}": g for i, g in enumerate(per_sample_grads(model, loss_fn, X, y).values())}


def per_sample_grads_mse_only(model, loss_fn, X, y):
    return per_sample_grads(model, torch.nn.MSELoss(), X, y)


def per_sample_grads_steps(model, loss_fn, X, y):
    grads = per_sample_grads(model, loss_fn, X, y)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    return grads


@pytest.mark.parametrize("answer", [per_sample_grads, per_sample_grads_attached])
def test_per_sample_right(answer):
    feedback = grade("11.per_sample", answer)
    assert feedback.ok, feedback.message


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (per_sample_grads_loop, "your function filled .grad"),
        (per_sample_grads_divided, "10 times too small"),
        (per_sample_grads_full_batch, "the full-batch gradient, repeated"),
        (per_sample_grads_batch_shape, "one gradient for the whole batch"),
        (per_sample_grads_no_functional_call, "functional_call(model, params"),
        (per_sample_grads_in_dims, "in_dims=(None, 0, 0)"),
        (per_sample_grads_item, "no .item()"),
        (per_sample_grads_list, "return a dict"),
        (per_sample_grads_renamed, "the dict's keys are"),
        (per_sample_grads_mse_only, "values differ"),
        (per_sample_grads_steps, "changed the model's weights"),
        (lambda model, loss_fn, X, y: None, "returned None"),
        (3, "itself, not the result of calling it"),
    ],
)
@pytest.mark.filterwarnings("ignore:Using a target size")  # the MSE-only answer's own warning
def test_per_sample_mistakes_get_their_hints(answer, phrase):
    feedback = grade("11.per_sample", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message
