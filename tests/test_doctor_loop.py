"""The loop doctor's second half: a zoo of training epochs written the way real projects write
them, right and wrong; for each, the exact set of codes `diagnose_loop` names."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.nn.utils import clip_grad_norm_

from helpers.doctor import LOOP_CODES, Diagnosis, diagnose_loop
from helpers.doctor.loop import LOOP_PARAMETERS, cpu_grad_scaler_supported

CPU_SCALER = cpu_grad_scaler_supported()
needs_scaler = pytest.mark.skipif(not CPU_SCALER, reason="no GradScaler for the CPU here")
K = 2  # accumulation steps in the accumulation loops
CLIP = 0.05  # binds on the probe: its gradient norms are well above it

# --- right loops ------------------------------------------------------------------------------


def plain(model, optimizer, loss_fn, loader):
    model.train()
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()


def plain_with_scheduler_and_device(model, optimizer, loss_fn, loader, scheduler, device):
    total = 0.0
    for inputs, targets in loader:
        inputs, targets = inputs.to(device), targets.to(device)
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item()
    return total / len(loader)


def accumulate_plus_one(model, optimizer, loss_fn, loader, accumulation_steps, scheduler):
    optimizer.zero_grad()
    for i, (inputs, targets) in enumerate(loader):
        loss = loss_fn(model(inputs), targets) / accumulation_steps
        loss.backward()
        if (i + 1) % accumulation_steps == 0:
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()


def accumulate_counter(model, optimizer, loss_fn, loader, accumulation_steps):
    seen = 0
    for inputs, targets in loader:
        loss = loss_fn(model(inputs), targets)
        loss = loss / accumulation_steps
        loss.backward()
        seen += 1
        if seen == accumulation_steps:
            optimizer.step()
            model.zero_grad()
            seen = 0


def accumulate_zero_at_window_start(model, optimizer, loss_fn, loader, accumulation_steps):
    for i, (inputs, targets) in enumerate(loader):
        if i % accumulation_steps == 0:
            optimizer.zero_grad(set_to_none=False)
        (loss_fn(model(inputs), targets) / accumulation_steps).backward()
        if i % accumulation_steps == accumulation_steps - 1:
            optimizer.step()


def clip_binding(model, optimizer, loss_fn, loader, max_grad_norm, scheduler):
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss_fn(model(inputs), targets).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        scheduler.step()


def clip_imported_name(model, optimizer, loss_fn, loader, max_grad_norm):
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss_fn(model(inputs), targets).backward()
        clip_grad_norm_(model.parameters(), max_norm=max_grad_norm)
        optimizer.step()


def bf16_autocast(model, optimizer, loss_fn, loader, scheduler, device):
    for inputs, targets in loader:
        optimizer.zero_grad()
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            prediction = model(inputs)
        loss = loss_fn(prediction.float(), targets)
        loss.backward()
        optimizer.step()
        scheduler.step()


def amp_canonical(
    model, optimizer, loss_fn, loader, scheduler, scaler, accumulation_steps, max_grad_norm, device
):
    optimizer.zero_grad(set_to_none=True)
    for step, (inputs, targets) in enumerate(loader):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            loss = loss_fn(model(inputs).float(), targets)
        scaler.scale(loss / accumulation_steps).backward()
        if (step + 1) % accumulation_steps == 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)


def amp_float32_with_kwargs(*, model, optimizer, loss_fn, loader, scaler, **unused):
    for inputs, targets in loader:
        optimizer.zero_grad()
        scaler.scale(loss_fn(model(inputs), targets)).backward()
        scaler.step(optimizer)
        scaler.update()


def disabled_scaler_used_as_usual(model, optimizer, loss_fn, loader, scaler):
    for inputs, targets in loader:
        optimizer.zero_grad()
        scaler.scale(loss_fn(model(inputs), targets)).backward()
        scaler.step(optimizer)
        scaler.update()


# --- wrong loops --------------------------------------------------------------------------


def scheduler_first(model, optimizer, loss_fn, loader, scheduler):
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss_fn(model(inputs), targets).backward()
        scheduler.step()
        optimizer.step()


def scheduler_every_micro_batch(model, optimizer, loss_fn, loader, scheduler, accumulation_steps):
    for i, (inputs, targets) in enumerate(loader):
        (loss_fn(model(inputs), targets) / accumulation_steps).backward()
        if (i + 1) % accumulation_steps == 0:
            optimizer.step()
            optimizer.zero_grad()
        scheduler.step()


def scheduler_once_per_epoch(model, optimizer, loss_fn, loader, scheduler):
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss_fn(model(inputs), targets).backward()
        optimizer.step()
    scheduler.step()


def zero_grad_every_micro_batch(model, optimizer, loss_fn, loader, accumulation_steps):
    for i, (inputs, targets) in enumerate(loader):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets) / accumulation_steps
        loss.backward()
        if (i + 1) % accumulation_steps == 0:
            optimizer.step()


def zero_grad_between_backward_and_step(model, optimizer, loss_fn, loader):
    for inputs, targets in loader:
        loss_fn(model(inputs), targets).backward()
        optimizer.zero_grad()
        optimizer.step()


def step_every_micro_batch(model, optimizer, loss_fn, loader, accumulation_steps):
    for inputs, targets in loader:
        loss = loss_fn(model(inputs), targets) / accumulation_steps
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def loss_not_divided(model, optimizer, loss_fn, loader, accumulation_steps):
    for i, (inputs, targets) in enumerate(loader):
        loss_fn(model(inputs), targets).backward()
        if (i + 1) % accumulation_steps == 0:
            optimizer.step()
            optimizer.zero_grad()


def off_by_one_window(model, optimizer, loss_fn, loader, accumulation_steps):
    for i, (inputs, targets) in enumerate(loader):
        (loss_fn(model(inputs), targets) / accumulation_steps).backward()
        if i % accumulation_steps == 0:
            optimizer.step()
            optimizer.zero_grad()


def clip_before_unscale(model, optimizer, loss_fn, loader, scaler, max_grad_norm):
    for inputs, targets in loader:
        optimizer.zero_grad()
        scaler.scale(loss_fn(model(inputs), targets)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        scaler.step(optimizer)
        scaler.update()


def clip_after_step(model, optimizer, loss_fn, loader, max_grad_norm):
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss_fn(model(inputs), targets).backward()
        optimizer.step()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)


def clip_every_micro_batch(model, optimizer, loss_fn, loader, accumulation_steps, max_grad_norm):
    for i, (inputs, targets) in enumerate(loader):
        (loss_fn(model(inputs), targets) / accumulation_steps).backward()
        clip_grad_norm_(model.parameters(), max_grad_norm)
        if (i + 1) % accumulation_steps == 0:
            optimizer.step()
            optimizer.zero_grad()


def clip_by_value_instead(model, optimizer, loss_fn, loader, max_grad_norm):
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss_fn(model(inputs), targets).backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), max_grad_norm)
        optimizer.step()


def clip_by_value_own_limit(model, optimizer, loss_fn, loader, accumulation_steps):
    for i, (inputs, targets) in enumerate(loader):
        (loss_fn(model(inputs), targets) / accumulation_steps).backward()
        if (i + 1) % accumulation_steps != 0:
            continue
        torch.nn.utils.clip_grad_value_(model.parameters(), clip_value=0.01)
        optimizer.step()
        optimizer.zero_grad()


def clip_own_norm_for_else(model, optimizer, loss_fn, loader, accumulation_steps):
    batches = iter(loader)
    for _ in range(len(loader) // accumulation_steps):
        for _ in range(accumulation_steps):
            inputs, targets = next(batches)
            (loss_fn(model(inputs), targets) / accumulation_steps).backward()
        else:
            clip_grad_norm_(model.parameters(), 0.02)
            optimizer.step()
            optimizer.zero_grad()


def clip_own_norm_after_step(model, optimizer, loss_fn, loader):
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss_fn(model(inputs), targets).backward()
        optimizer.step()
        clip_grad_norm_(model.parameters(), 0.02)


def forgets_to_clip(model, optimizer, loss_fn, loader, max_grad_norm):
    plain(model, optimizer, loss_fn, loader)


def no_scaler_update(model, optimizer, loss_fn, loader, scaler):
    for inputs, targets in loader:
        optimizer.zero_grad()
        scaler.scale(loss_fn(model(inputs), targets)).backward()
        scaler.step(optimizer)


def step_bypasses_scaler(model, optimizer, loss_fn, loader, scaler):
    for inputs, targets in loader:
        optimizer.zero_grad()
        scaler.scale(loss_fn(model(inputs), targets)).backward()
        optimizer.step()
        scaler.update()


def loss_not_scaled(model, optimizer, loss_fn, loader, scaler):
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss_fn(model(inputs), targets).backward()
        scaler.step(optimizer)
        scaler.update()


def amp_accumulation_all_wrong(model, optimizer, loss_fn, loader, scaler, scheduler, max_grad_norm):
    # the order of a widely copied script: clip on scaled gradients, scheduler first
    for inputs, targets in loader:
        optimizer.zero_grad()
        scaler.scale(loss_fn(model(inputs), targets)).backward()
        clip_grad_norm_(model.parameters(), max_grad_norm)
        scheduler.step()
        scaler.step(optimizer)
        scaler.update()


def amp_loss_not_divided(model, optimizer, loss_fn, loader, scaler, accumulation_steps):
    for i, (inputs, targets) in enumerate(loader):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = loss_fn(model(inputs).float(), targets)
        scaler.scale(loss).backward()
        if (i + 1) % accumulation_steps == 0:
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad()


def amp_zero_grad_and_clip_per_micro_batch(
    model, optimizer, loss_fn, loader, scaler, accumulation_steps, max_grad_norm
):
    for i, (inputs, targets) in enumerate(loader):
        optimizer.zero_grad()
        scaler.scale(loss_fn(model(inputs), targets) / accumulation_steps).backward()
        scaler.unscale_(optimizer)
        clip_grad_norm_(model.parameters(), max_grad_norm)
        if (i + 1) % accumulation_steps == 0:
            scaler.step(optimizer)
            scaler.update()


def two_passes(model, optimizer, loss_fn, loader):
    for _ in range(2):
        plain(model, optimizer, loss_fn, loader)


def step_twice(model, optimizer, loss_fn, loader):
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss_fn(model(inputs), targets).backward()
        optimizer.step()
        optimizer.step()


def no_backward(model, optimizer, loss_fn, loader):
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss_fn(model(inputs), targets)
        optimizer.step()


def never_steps(model, optimizer, loss_fn, loader):
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss_fn(model(inputs), targets).backward()


def own_learning_rate(model, optimizer, loss_fn, loader):
    for inputs, targets in loader:
        model.zero_grad()
        loss_fn(model(inputs), targets).backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.05 * p.grad
        optimizer.step()  # ... and the optimizer too: two updates per batch


RIGHT = [
    (plain, {}),
    (plain_with_scheduler_and_device, {}),
    (accumulate_plus_one, {"accumulation_steps": K}),
    (accumulate_counter, {"accumulation_steps": 3}),
    (accumulate_zero_at_window_start, {"accumulation_steps": K}),
    (clip_binding, {"max_grad_norm": CLIP}),
    (clip_imported_name, {"max_grad_norm": CLIP}),
    (bf16_autocast, {}),
    (clip_by_value_own_limit, {"accumulation_steps": K}),
    (clip_own_norm_for_else, {"accumulation_steps": 3}),
    (disabled_scaler_used_as_usual, {}),
    pytest.param(
        amp_canonical,
        {"accumulation_steps": K, "max_grad_norm": CLIP, "amp": True},
        marks=needs_scaler,
    ),
    pytest.param(amp_float32_with_kwargs, {"amp": True}, marks=needs_scaler),
]

WRONG = [
    (scheduler_first, {}, {"scheduler-before-step"}),
    (scheduler_every_micro_batch, {"accumulation_steps": K}, {"scheduler-per-micro-batch"}),
    (scheduler_once_per_epoch, {}, {"scheduler-not-per-update"}),
    (zero_grad_every_micro_batch, {"accumulation_steps": K}, {"zero-grad-in-window"}),
    (zero_grad_between_backward_and_step, {}, {"zero-grad-in-window"}),
    (step_every_micro_batch, {"accumulation_steps": K}, {"step-per-micro-batch"}),
    (loss_not_divided, {"accumulation_steps": K}, {"unscaled-accumulation"}),
    (loss_not_divided, {"accumulation_steps": 4}, {"unscaled-accumulation"}),
    (off_by_one_window, {"accumulation_steps": K}, {"uneven-windows"}),
    (clip_after_step, {"max_grad_norm": CLIP}, {"clip-after-step"}),
    (
        clip_every_micro_batch,
        {"accumulation_steps": K, "max_grad_norm": CLIP},
        {"clip-per-micro-batch"},
    ),
    (clip_by_value_instead, {"max_grad_norm": CLIP}, {"wrong-update"}),
    (clip_own_norm_after_step, {}, {"clip-after-step"}),
    (forgets_to_clip, {"max_grad_norm": CLIP}, {"no-clip"}),
    (no_backward, {}, {"no-backward"}),
    (two_passes, {}, {"uneven-windows"}),
    (step_twice, {}, {"uneven-windows"}),
    (never_steps, {}, {"no-step"}),
    (own_learning_rate, {}, {"wrong-update"}),
    pytest.param(
        clip_before_unscale,
        {"max_grad_norm": CLIP, "amp": True},
        {"clip-before-unscale"},
        marks=needs_scaler,
    ),
    pytest.param(
        no_scaler_update, {"amp": True}, {"epoch-raised", "no-scaler-update"}, marks=needs_scaler
    ),
    pytest.param(
        step_bypasses_scaler,
        {"amp": True},
        {"epoch-raised", "scaler-bypassed"},
        marks=needs_scaler,
    ),
    pytest.param(
        loss_not_scaled, {"amp": True}, {"epoch-raised", "loss-not-scaled"}, marks=needs_scaler
    ),
    pytest.param(
        amp_loss_not_divided,
        {"accumulation_steps": K, "amp": True},
        {"unscaled-accumulation"},
        marks=needs_scaler,
    ),
    pytest.param(
        amp_zero_grad_and_clip_per_micro_batch,
        {"accumulation_steps": K, "max_grad_norm": CLIP, "amp": True},
        {"epoch-raised", "zero-grad-in-window", "clip-per-micro-batch", "unscale-per-micro-batch"},
        marks=needs_scaler,
    ),
    pytest.param(
        amp_accumulation_all_wrong,
        {"max_grad_norm": CLIP, "amp": True},
        {"clip-before-unscale", "scheduler-before-step"},
        marks=needs_scaler,
    ),
]


def _id(value):
    return value.__name__ if callable(value) else None


@pytest.mark.parametrize(("loop", "options"), RIGHT, ids=_id)
def test_a_right_loop_has_no_findings(loop, options):
    findings = diagnose_loop(loop, **options)
    assert findings == [], str(findings)
    assert isinstance(findings, Diagnosis)
    assert str(findings).startswith("✅ No problems found")


@pytest.mark.parametrize(("loop", "options", "codes"), WRONG, ids=_id)
def test_a_wrong_loop_gets_exactly_its_codes(loop, options, codes):
    findings = diagnose_loop(loop, **options)
    assert set(findings.codes) == codes, str(findings)
    for finding in findings:
        assert finding.code in LOOP_CODES
        assert len(finding.message) > 60


def test_each_required_code_exists():
    required = {
        "scheduler-before-step",
        "scheduler-per-micro-batch",
        "zero-grad-in-window",
        "step-per-micro-batch",
        "unscaled-accumulation",
        "clip-before-unscale",
        "clip-after-step",
        "no-scaler-update",
    }
    assert required <= set(LOOP_CODES)


def test_messages_name_the_line_to_move():
    def message(loop, **options):
        return diagnose_loop(loop, **options)[0].message

    assert "just after `optimizer.step()`" in message(scheduler_first)
    assert "(i + 1) % 2 == 0" in message(step_every_micro_batch, accumulation_steps=K)
    assert "/ 2" in message(loss_not_divided, accumulation_steps=K)
    assert "above `optimizer.step()`" in message(clip_after_step, max_grad_norm=CLIP)


@needs_scaler
def test_clip_before_unscale_says_the_scale():
    text = diagnose_loop(clip_before_unscale, max_grad_norm=CLIP, amp=True)[0].message
    assert "scale of 65536" in text and "scaler.unscale_(optimizer)" in text


def test_an_unknown_parameter_is_a_finding_listing_the_known_names():
    def loop(model, optimizer, criterion, loader):
        plain(model, optimizer, criterion, loader)

    findings = diagnose_loop(loop)
    assert findings.codes == ["bad-signature"]
    assert "`criterion`" in findings[0].message
    assert all(name in findings[0].message for name in LOOP_PARAMETERS)


def test_a_parameter_with_a_default_is_left_alone():
    def loop(model, optimizer, loss_fn, loader, log_every=10):
        plain(model, optimizer, loss_fn, loader)

    assert diagnose_loop(loop) == []


@needs_scaler
def test_amp_without_a_scaler_parameter_is_a_bad_signature():
    findings = diagnose_loop(plain, amp=True)
    assert findings.codes == ["bad-signature"]
    assert "`scaler`" in findings[0].message


def test_a_crash_is_reported_not_raised():
    def loop(model, optimizer, loss_fn, loader):
        raise ValueError("broken\nsecond line")

    findings = diagnose_loop(loop)
    assert findings.codes == ["epoch-raised"]
    assert findings[0].message == "train_epoch raised ValueError: broken"


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"accumulation_steps": 0}, ValueError),
        ({"accumulation_steps": 2.0}, TypeError),
        ({"max_grad_norm": -1.0}, ValueError),
        ({"amp": "yes"}, TypeError),
    ],
)
def test_its_own_arguments_are_checked(options, error):
    with pytest.raises(error):
        diagnose_loop(plain, **options)


def test_not_callable_is_a_type_error():
    with pytest.raises(TypeError, match="without calling it"):
        diagnose_loop(None)


def test_everything_patched_is_put_back_even_after_a_crash(two_threads):
    originals = (
        torch.autograd.backward,
        torch.autograd.grad,
        torch.nn.utils.clip_grad_norm_,
        torch.nn.utils.clip_grad_value_,
        clip_grad_norm_,
    )
    threads = torch.get_num_threads()
    assert threads == two_threads

    def loop(model, optimizer, loss_fn, loader, max_grad_norm):
        for inputs, targets in loader:
            loss_fn(model(inputs), targets).backward()
            clip_grad_norm_(model.parameters(), max_grad_norm)
            raise RuntimeError("stop")

    assert diagnose_loop(loop, max_grad_norm=CLIP).codes[0] == "epoch-raised"
    assert globals()["clip_grad_norm_"] is originals[4]
    assert (
        torch.autograd.backward,
        torch.autograd.grad,
        torch.nn.utils.clip_grad_norm_,
        torch.nn.utils.clip_grad_value_,
    ) == originals[:4]
    assert torch.get_num_threads() == threads
    assert torch.is_grad_enabled()


def test_random_state_and_warnings_are_left_alone(recwarn):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    diagnose_loop(scheduler_first)  # PyTorch warns about this order; the doctor keeps it inside
    assert torch.equal(torch.rand(3), expected)
    assert len(recwarn) == 0


def test_other_warnings_are_findings():
    def loop(model, optimizer, loss_fn, loader):
        warnings.warn("careful", UserWarning, stacklevel=1)
        plain(model, optimizer, loss_fn, loader)

    assert diagnose_loop(loop).codes == ["epoch-warned"]


def test_amp_where_unsupported_is_a_clear_finding(monkeypatch):
    from helpers.doctor import loop as module

    monkeypatch.setattr(module, "cpu_grad_scaler_supported", lambda: False)
    findings = diagnose_loop(amp_canonical, amp=True)
    assert findings.codes == ["amp-unsupported"]
    assert 'GradScaler("cpu")' in findings[0].message


def test_the_diagnosis_reads_well():
    findings = diagnose_loop(scheduler_first)
    assert str(findings).startswith("❌ scheduler-before-step: ")
    assert findings._repr_html_().startswith("<ul><li>❌ <code>scheduler-before-step</code>")
    assert "every update matched the canonical loop" in str(diagnose_loop(plain))
