"""The loop doctor: every correct way of writing a step gets no finding, every usual bug gets its
code (several ways of writing each bug), and nothing a learner hands in makes it raise."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from helpers.doctor import CODES, PROBE_LR, Diagnosis, Finding, diagnose_step, report

# --- correct steps ---------------------------------------------------------------------------


def step_textbook(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_zero_grad_at_the_end(model, optimizer, loss_fn, inputs, targets):
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def step_zeros_at_the_start(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad(set_to_none=False)
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_zeros_at_the_end(model, optimizer, loss_fn, inputs, targets):
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=False)
    return loss.item()


def step_returns_the_tensor(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss


def step_returns_a_detached_tensor(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.detach()


def step_model_zero_grad(model, optimizer, loss_fn, inputs, targets):
    model.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_functional_loss(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    loss = F.mse_loss(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_loss_by_hand(model, optimizer, loss_fn, inputs, targets):
    prediction = model(inputs)
    loss = ((prediction - targets) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss)


def step_arguments_in_another_order(model, optimizer, loss_fn, inputs, targets):
    prediction = model(inputs)
    loss = loss_fn(targets, prediction)  # MSE is symmetric
    optimizer.zero_grad()  # between forward and backward is fine too
    loss.backward()
    optimizer.step()
    return loss.item()


def step_calls_train(model, optimizer, loss_fn, inputs, targets):
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_by_hand(model, optimizer, loss_fn, inputs, targets):
    lr = optimizer.param_groups[0]["lr"]
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
            p.grad = None
    return loss.item()


def step_by_hand_with_autograd_grad(model, optimizer, loss_fn, inputs, targets):
    params = list(model.parameters())
    loss = loss_fn(model(inputs), targets)
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            p.sub_(optimizer.param_groups[0]["lr"] * g)
    return loss.item()


def step_with_validation(model, optimizer, loss_fn, inputs, targets):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        loss_fn(model(inputs), targets)  # a quick evaluation, done right
    model.train()
    return loss.item()


def step_logs_a_second_forward_under_no_grad(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    with torch.no_grad():
        model(inputs)  # e.g. to look at the predictions
    optimizer.step()
    return loss.item()


def step_under_enable_grad(model, optimizer, loss_fn, inputs, targets):
    with torch.enable_grad():
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
    return loss.item()


def step_with_a_new_plain_sgd(model, optimizer, loss_fn, inputs, targets):
    own = torch.optim.SGD(model.parameters(), lr=optimizer.param_groups[0]["lr"])
    own.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    own.step()
    return loss.item()


def step_loss_as_sum_over_n(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    loss = F.mse_loss(model(inputs), targets, reduction="sum") / len(inputs)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_uses_keywords(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    loss = loss_fn(input=model(inputs), target=targets)
    loss.backward()
    optimizer.step()
    return loss.item()


class CallableStep:
    """A step written as an object with __call__."""

    def __call__(self, model, optimizer, loss_fn, inputs, targets):
        return step_textbook(model, optimizer, loss_fn, inputs, targets)


CORRECT = [
    step_textbook,
    step_zero_grad_at_the_end,
    step_zeros_at_the_start,
    step_zeros_at_the_end,
    step_returns_the_tensor,
    step_returns_a_detached_tensor,
    step_model_zero_grad,
    step_functional_loss,
    step_loss_by_hand,
    step_arguments_in_another_order,
    step_calls_train,
    step_by_hand,
    step_by_hand_with_autograd_grad,
    step_with_validation,
    step_logs_a_second_forward_under_no_grad,
    step_under_enable_grad,
    step_with_a_new_plain_sgd,
    step_loss_as_sum_over_n,
    step_uses_keywords,
    CallableStep(),
    lambda *args: step_textbook(*args),
    lambda m, o, f, x, y: step_zero_grad_at_the_end(m, o, f, x, y),
]


def _name(step):
    return getattr(step, "__name__", type(step).__name__)


@pytest.mark.parametrize("step", CORRECT, ids=[f"{i}-{_name(s)}" for i, s in enumerate(CORRECT)])
def test_a_correct_step_has_no_findings(step):
    findings = diagnose_step(step)
    assert findings == [], str(findings)
    assert isinstance(findings, Diagnosis)
    assert str(findings).startswith("✅ No problems found")


# --- buggy steps: gradients never cleared ----------------------------------------------------


def bug_no_zero_grad(model, optimizer, loss_fn, inputs, targets):
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def bug_zero_grad_on_the_loss_fn(model, optimizer, loss_fn, inputs, targets):
    loss_fn.zero_grad()  # the loss module has no parameters: this clears nothing
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def bug_manual_update_never_clears(model, optimizer, loss_fn, inputs, targets):
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= PROBE_LR * p.grad
    return loss.item()


def bug_clears_only_the_first_layer(model, optimizer, loss_fn, inputs, targets):
    model[0].zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


# --- the weights do not change -----------------------------------------------------------


def bug_no_step(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    return loss.item()


def bug_zero_grad_between_backward_and_step(model, optimizer, loss_fn, inputs, targets):
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


def bug_zeros_between_backward_and_step(model, optimizer, loss_fn, inputs, targets):
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.zero_grad(set_to_none=False)
    optimizer.step()
    return loss.item()


def bug_rebinds_the_name(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    for p in model.parameters():
        p = p - PROBE_LR * p.grad  # noqa: PLW2901 - the bug under test
    return loss.item()


def bug_rebinds_under_no_grad(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p = p - PROBE_LR * p.grad  # noqa: PLW2901 - the bug under test
    return loss.item()


# --- the forward pass ran without autograd ---------------------------------------------------


def bug_forward_under_no_grad(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    with torch.no_grad():
        loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def bug_forward_under_inference_mode(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    with torch.inference_mode():
        prediction = model(inputs)
    loss = loss_fn(prediction, targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def bug_detached_prediction(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs).detach(), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def bug_loss_rebuilt_from_item(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    value = loss_fn(model(inputs), targets).item()
    loss = torch.tensor(value)
    loss.backward()
    optimizer.step()
    return value


# --- eval mode ---------------------------------------------------------------------------


def bug_eval_at_the_start(model, optimizer, loss_fn, inputs, targets):
    model.eval()
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def bug_train_false(model, optimizer, loss_fn, inputs, targets):
    model.train(False)
    return step_textbook(model, optimizer, loss_fn, inputs, targets)


def bug_validation_leaves_eval_on(model, optimizer, loss_fn, inputs, targets):
    loss = step_textbook(model, optimizer, loss_fn, inputs, targets)
    model.eval()
    with torch.no_grad():
        loss_fn(model(inputs), targets)  # validation, and model.train() is never called again
    return loss


def bug_only_the_norm_layer_in_eval(model, optimizer, loss_fn, inputs, targets):
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d):
            module.eval()
    return step_textbook(model, optimizer, loss_fn, inputs, targets)


BUGS = {
    "grads-accumulate": [
        bug_no_zero_grad,
        bug_zero_grad_on_the_loss_fn,
        bug_manual_update_never_clears,
        bug_clears_only_the_first_layer,
    ],
    "no-update": [
        bug_no_step,
        bug_zero_grad_between_backward_and_step,
        bug_zeros_between_backward_and_step,
        bug_rebinds_the_name,
        bug_rebinds_under_no_grad,
    ],
    "no-graph": [
        bug_forward_under_no_grad,
        bug_forward_under_inference_mode,
        bug_detached_prediction,
        bug_loss_rebuilt_from_item,
    ],
    "eval-mode": [
        bug_eval_at_the_start,
        bug_train_false,
        bug_validation_leaves_eval_on,
        bug_only_the_norm_layer_in_eval,
    ],
}
CASES = [(code, step) for code, steps in BUGS.items() for step in steps]


@pytest.mark.parametrize(("code", "step"), CASES, ids=[s.__name__ for _, s in CASES])
def test_each_bug_is_named(code, step):
    findings = diagnose_step(step)
    assert code in findings.codes, str(findings)
    for finding in findings:
        assert isinstance(finding, Finding)
        assert finding.code in CODES
        assert len(finding.message) > 40


@pytest.mark.parametrize(
    ("step", "codes"),
    [
        (bug_no_zero_grad, ["grads-accumulate"]),
        (bug_no_step, ["no-update"]),
        (bug_zero_grad_between_backward_and_step, ["no-update"]),
        (bug_eval_at_the_start, ["eval-mode"]),
        (bug_validation_leaves_eval_on, ["eval-mode"]),
        (bug_forward_under_no_grad, ["step-raised", "no-graph"]),
        (bug_detached_prediction, ["step-raised", "no-graph"]),
        (bug_rebinds_the_name, ["no-update"]),
    ],
    ids=lambda v: v.__name__ if callable(v) else "-".join(v),
)
def test_a_single_bug_gives_no_other_finding(step, codes):
    assert diagnose_step(step).codes == codes


def test_no_update_messages_tell_the_causes_apart():
    no_step = diagnose_step(bug_no_step)[0].message
    between = diagnose_step(bug_zero_grad_between_backward_and_step)[0].message
    zeros = diagnose_step(bug_zeros_between_backward_and_step)[0].message
    assert "never called" in no_step and "p = p - lr * p.grad" in no_step
    assert "None when `optimizer.step()` ran" in between
    assert "between `backward()` and `step()`" in between
    assert "all zeros" in zeros and "set_to_none=False" in zeros
    assert len({no_step, between, zeros}) == 3


def test_no_graph_messages_name_no_grad_or_detach():
    under_no_grad = {f.code: f.message for f in diagnose_step(bug_forward_under_no_grad)}
    detached = {f.code: f.message for f in diagnose_step(bug_detached_prediction)}
    assert "torch.no_grad()" in under_no_grad["no-graph"]
    assert ".detach()" in detached["no-graph"]


def test_an_exception_is_quoted_with_its_first_line():
    def step(model, optimizer, loss_fn, inputs, targets):
        raise ValueError("something broke\nsecond line that is not quoted")

    findings = diagnose_step(step)
    assert findings.codes == ["step-raised"]
    assert findings[0].message == "train_step raised ValueError: something broke"


def test_the_no_grad_crash_quotes_pytorchs_message():
    raised = {f.code: f.message for f in diagnose_step(bug_forward_under_no_grad)}["step-raised"]
    assert "RuntimeError: element 0 of tensors does not require grad" in raised


def test_a_typo_inside_the_step_is_reported_not_raised():
    def step(model, optimizer, loss_fn, inputs, targets):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backwards()  # typo
        optimizer.step()
        return loss.item()

    findings = diagnose_step(step)
    assert findings.codes == ["step-raised"]
    assert "AttributeError" in findings[0].message and "backwards" in findings[0].message


def test_replacing_a_weight_is_explained():
    def step(model, optimizer, loss_fn, inputs, targets):
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        model[0].weight = model[0].weight - 0.1 * model[0].weight.grad
        return loss.item()

    findings = diagnose_step(step)
    assert findings.codes == ["step-raised", "wrong-update"]
    assert "in place" in findings[1].message


def test_new_parameter_objects_are_a_wrong_update():
    def step(model, optimizer, loss_fn, inputs, targets):
        loss = step_textbook(model, optimizer, loss_fn, inputs, targets)
        model[3].bias = nn.Parameter(model[3].bias.detach().clone())
        return loss

    findings = diagnose_step(step)
    assert findings.codes == ["wrong-update"]
    assert "replaced the model's parameters" in findings[0].message


# --- further codes ---------------------------------------------------------------------------


def test_no_backward():
    def step(model, optimizer, loss_fn, inputs, targets):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        optimizer.step()
        return loss.item()

    assert diagnose_step(step).codes == ["no-backward"]


def test_no_backward_and_no_step_are_both_named():
    def step(model, optimizer, loss_fn, inputs, targets):
        return loss_fn(model(inputs), targets).item()

    assert diagnose_step(step).codes == ["no-backward", "no-update"]


def test_no_step_and_no_zero_grad_are_both_named():
    def step(model, optimizer, loss_fn, inputs, targets):
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        return loss.item()

    assert diagnose_step(step).codes == ["grads-accumulate", "no-update"]


def test_a_global_model_is_no_forward():
    outside = nn.Linear(3, 1)

    def step(model, optimizer, loss_fn, inputs, targets):
        optimizer.zero_grad()
        loss = loss_fn(outside(inputs), targets)
        loss.backward()
        optimizer.step()
        return loss.item()

    findings = diagnose_step(step)
    assert findings.codes == ["no-forward"]
    assert "not a model defined outside the function" in findings[0].message


def test_model_forward_instead_of_calling_the_model():
    def step(model, optimizer, loss_fn, inputs, targets):
        optimizer.zero_grad()
        loss = loss_fn(model.forward(inputs), targets)
        loss.backward()
        optimizer.step()
        return loss.item()

    assert diagnose_step(step).codes == ["calls-forward"]


@pytest.mark.parametrize(
    "squeeze",
    [
        lambda prediction, targets: (prediction.squeeze(), targets),
        lambda prediction, targets: (prediction, targets.squeeze(1)),
        lambda prediction, targets: (prediction.flatten(), targets),
    ],
)
def test_broadcasting_targets_is_a_shape_mismatch(squeeze):
    def step(model, optimizer, loss_fn, inputs, targets):
        optimizer.zero_grad()
        loss = loss_fn(*squeeze(model(inputs), targets))
        loss.backward()
        optimizer.step()
        return loss.item()

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the doctor must record the warning, not let it out
        findings = diagnose_step(step)
    assert findings.codes == ["shape-mismatch"]
    assert "Using a target size" in findings[0].message


def test_another_warning_is_reported():
    def step(model, optimizer, loss_fn, inputs, targets):
        warnings.warn("careful now", RuntimeWarning, stacklevel=1)
        return step_textbook(model, optimizer, loss_fn, inputs, targets)

    findings = diagnose_step(step)
    assert findings.codes == ["step-warned"]
    assert "RuntimeWarning: careful now" in findings[0].message


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ("uphill", "uphill"),
        ("step twice", "ran 2 times"),
        ("backward twice", "`backward()` ran 2 times"),
        ("sum", "16 times too large"),
        ("own lr", "0.1 times as far"),
        ("l1", "different direction"),
        ("adam", "different direction"),
    ],
)
def test_wrong_updates_are_described(change, phrase):
    def step(model, optimizer, loss_fn, inputs, targets):
        optimizer.zero_grad()
        prediction = model(inputs)
        if change == "sum":
            loss = F.mse_loss(prediction, targets, reduction="sum")
        elif change == "l1":
            loss = F.l1_loss(prediction, targets)
        else:
            loss = loss_fn(prediction, targets)
        if change == "backward twice":
            loss.backward(retain_graph=True)
        loss.backward()
        if change == "uphill":
            with torch.no_grad():
                for p in model.parameters():
                    p += PROBE_LR * p.grad
        elif change == "own lr":
            torch.optim.SGD(model.parameters(), lr=PROBE_LR / 10).step()
        elif change == "adam":
            torch.optim.Adam(model.parameters(), lr=0.01).step()
        else:
            optimizer.step()
        if change == "step twice":
            optimizer.step()
        return loss_fn(prediction, targets).item()

    findings = diagnose_step(step)
    assert findings.codes == ["wrong-update"], str(findings)
    assert phrase in findings[0].message


def test_no_return():
    def step(model, optimizer, loss_fn, inputs, targets):
        step_textbook(model, optimizer, loss_fn, inputs, targets)

    findings = diagnose_step(step)
    assert findings.codes == ["no-return"]
    assert "return loss.item()" in findings[0].message


@pytest.mark.parametrize(
    ("give_back", "phrase"),
    [
        (lambda loss, prediction: (loss, prediction), "returned a tuple"),
        (lambda loss, prediction: "done", "returned a str"),
        (lambda loss, prediction: prediction, "returned a Tensor"),
        (lambda loss, prediction: True, "returned a bool"),
        (lambda loss, prediction: loss.item() * 2, "but the loss of this batch"),
    ],
)
def test_wrong_returns(give_back, phrase):
    def step(model, optimizer, loss_fn, inputs, targets):
        optimizer.zero_grad()
        prediction = model(inputs)
        loss = loss_fn(prediction, targets)
        loss.backward()
        optimizer.step()
        return give_back(loss, prediction)

    findings = diagnose_step(step)
    assert findings.codes == ["wrong-return"]
    assert phrase in findings[0].message


def test_returning_the_loss_after_the_update_is_named():
    def step(model, optimizer, loss_fn, inputs, targets):
        step_textbook(model, optimizer, loss_fn, inputs, targets)
        return loss_fn(model(inputs), targets).item()

    findings = diagnose_step(step)
    assert findings.codes == ["wrong-return"]
    assert "after the update" in findings[0].message


def test_several_bugs_at_once_are_all_named():
    def step(model, optimizer, loss_fn, inputs, targets):
        model.eval()
        loss = loss_fn(model(inputs), targets)
        loss.backward()

    assert diagnose_step(step).codes == ["eval-mode", "grads-accumulate", "no-update", "no-return"]


# --- its own argument, and good manners --------------------------------------------------


@pytest.mark.parametrize("not_a_function", [None, 3, "train_step", [step_textbook]])
def test_not_callable_is_a_type_error(not_a_function):
    with pytest.raises(TypeError, match="train_step must be a function"):
        diagnose_step(not_a_function)


def test_the_result_of_calling_the_step_is_a_type_error_that_says_so():
    with pytest.raises(TypeError, match="without calling it"):
        diagnose_step(1.25)


@pytest.mark.parametrize("calls", [0, 1, 11, 2.5, True, "3"])
def test_calls_is_checked(calls):
    with pytest.raises(ValueError, match="calls must be a whole number from 2 to 10"):
        diagnose_step(step_textbook, calls=calls)


@pytest.mark.parametrize("calls", [2, 5])
def test_more_or_fewer_calls(calls):
    assert diagnose_step(step_textbook, calls=calls) == []
    assert diagnose_step(bug_no_zero_grad, calls=calls).codes == ["grads-accumulate"]


@pytest.mark.parametrize(
    "step",
    [
        lambda model, optimizer, inputs, targets: None,
        lambda model, optimizer, loss_fn, inputs, targets, extra: None,
        lambda: None,
    ],
)
def test_a_wrong_signature_is_a_finding(step):
    findings = diagnose_step(step)
    assert findings.codes == ["bad-signature"]
    assert "(model, optimizer, loss_fn, inputs, targets)" in findings[0].message


def test_a_class_instead_of_a_function_is_reported_not_raised():
    findings = diagnose_step(nn.Linear)
    assert findings.codes[0] in {"bad-signature", "step-raised"}


def test_the_doctor_leaves_the_random_state_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    diagnose_step(step_textbook)
    assert torch.equal(torch.rand(3), expected)


def test_the_diagnosis_is_the_same_every_time():
    first = diagnose_step(bug_clears_only_the_first_layer)
    assert diagnose_step(bug_clears_only_the_first_layer) == first


def test_it_works_inside_no_grad():
    with torch.no_grad():
        assert diagnose_step(step_textbook) == []
    assert torch.is_grad_enabled()


def test_grad_mode_is_restored_after_a_step_that_switches_it_off():
    def step(model, optimizer, loss_fn, inputs, targets):
        torch.set_grad_enabled(False)
        raise RuntimeError("gave up")

    diagnose_step(step)
    assert torch.is_grad_enabled()


def test_the_number_of_threads_is_restored(two_threads):
    threads = torch.get_num_threads()
    assert threads == two_threads
    diagnose_step(step_textbook)
    assert torch.get_num_threads() == threads


def test_no_warning_escapes(recwarn):
    def step(model, optimizer, loss_fn, inputs, targets):
        warnings.warn("inside the step", UserWarning, stacklevel=1)
        return step_textbook(model, optimizer, loss_fn, inputs, targets)

    diagnose_step(step)
    assert len(recwarn) == 0


# --- the findings as objects and as text --------------------------------------------------


def test_finding_is_a_frozen_dataclass():
    finding = Finding("no-update", "the weights never change.")
    with pytest.raises(AttributeError):
        finding.code = "other"  # type: ignore[misc]
    assert str(finding) == "❌ no-update: the weights never change."
    assert finding == Finding("no-update", "the weights never change.")


def test_report_reads_well():
    findings = diagnose_step(bug_forward_under_no_grad)
    text = report(findings)
    lines = text.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("❌ step-raised: ")
    assert lines[1].startswith("❌ no-graph: ")
    assert str(findings) == text == repr(findings)
    assert report([]) == str(Diagnosis())
    assert report([]).startswith("✅ No problems found")


def test_html_and_pretty_forms():
    findings = diagnose_step(bug_no_step)
    page = findings._repr_html_()
    assert page.startswith("<ul><li>❌ <code>no-update</code>")
    assert "<code>optimizer.step()</code>" in page
    assert "p = p - lr * p.grad" in page
    assert Diagnosis()._repr_html_().startswith("<p>✅ No problems found")

    from IPython.lib.pretty import pretty

    assert pretty(findings) == str(findings)


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ("no-update", TypeError),
        (42, TypeError),
        ([("no-update", "text")], TypeError),
    ],
)
def test_report_checks_its_argument(bad, error):
    with pytest.raises(error, match="findings must"):
        report(bad)


def test_every_code_has_a_description_and_codes_are_listed_in_that_order():
    assert all(isinstance(v, str) and v for v in CODES.values())
    findings = diagnose_step(bug_forward_under_no_grad)
    order = list(CODES)
    assert [order.index(c) for c in findings.codes] == sorted(
        order.index(c) for c in findings.codes
    )


# --- issue 17: no misfires on clipping, autocast, step-before-backward, a detached output ----


def step_clips_by_norm(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.1)  # binds on the probe
    optimizer.step()
    return loss.item()


def step_clips_by_value(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    torch.nn.utils.clip_grad_value_(model.parameters(), clip_value=0.05)
    optimizer.step()
    return loss.item()


def step_bf16_autocast(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        prediction = model(inputs)
    loss = loss_fn(prediction.float(), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_bf16_autocast_loss_inside(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


@pytest.mark.parametrize(
    "step",
    [step_clips_by_norm, step_clips_by_value, step_bf16_autocast, step_bf16_autocast_loss_inside],
)
def test_clipping_and_autocast_are_right_steps(step):
    findings = diagnose_step(step)
    assert findings == [], str(findings)


def bug_step_before_backward(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    optimizer.step()
    loss.backward()
    return loss.item()


def bug_step_before_backward_no_zero_grad(model, optimizer, loss_fn, inputs, targets):
    loss = loss_fn(model(inputs), targets)
    optimizer.step()  # uses the previous call's gradient
    loss.backward()
    return loss.item()


def bug_detached_output_made_to_require_grad(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    prediction = model(inputs).detach().requires_grad_()  # "fixes" the error, cuts the graph
    loss = loss_fn(prediction, targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def bug_output_rebuilt_as_a_new_tensor(model, optimizer, loss_fn, inputs, targets):
    optimizer.zero_grad()
    prediction = torch.tensor(model(inputs).tolist(), requires_grad=True)
    loss = loss_fn(prediction, targets)
    loss.backward()
    optimizer.step()
    return loss.item()


@pytest.mark.parametrize(
    ("step", "codes"),
    [
        (bug_step_before_backward, ["step-before-backward"]),
        (bug_step_before_backward_no_zero_grad, ["step-raised", "step-before-backward"]),
        (bug_detached_output_made_to_require_grad, ["no-graph"]),
        (bug_output_rebuilt_as_a_new_tensor, ["no-graph"]),
    ],
    ids=lambda v: v.__name__ if callable(v) else "-".join(v),
)
def test_each_cause_gets_its_own_code(step, codes):
    findings = diagnose_step(step)
    assert findings.codes == codes, str(findings)


def test_step_before_backward_says_what_happened():
    message = diagnose_step(bug_step_before_backward)[0].message
    assert "ran before `loss.backward()`" in message
    assert "zero_grad() sits between" not in message


def test_a_detached_output_names_detach():
    message = diagnose_step(bug_detached_output_made_to_require_grad)[0].message
    assert ".detach()" in message and "`backward()` ran" in message


def test_clipping_does_not_hide_a_wrong_learning_rate():
    def step(model, optimizer, loss_fn, inputs, targets):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.1)
        torch.optim.SGD(model.parameters(), lr=PROBE_LR / 10).step()
        return loss.item()

    assert diagnose_step(step).codes == ["wrong-update"]


def test_every_description_names_the_causes_the_doctor_tells_apart():
    assert ".detach()" in CODES["no-graph"] and "no_grad" in CODES["no-graph"]
    assert "backward()" in CODES["no-backward"]
    assert "before loss.backward()" in CODES["step-before-backward"]
