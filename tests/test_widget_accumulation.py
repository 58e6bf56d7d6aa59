"""AccumulationExplorer: every control driven from Python, gradients checked against the rules."""

from __future__ import annotations

import ipywidgets as widgets
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from helpers.widgets.accumulation import MAX_MICRO_BATCHES, SCALINGS, AccumulationExplorer

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
ALL_K = range(1, MAX_MICRO_BATCHES + 1)


def descendants(widget: widgets.Widget) -> list[widgets.Widget]:
    """Every widget inside `widget`, depth first."""
    found = []
    for child in getattr(widget, "children", ()):
        found += [child, *descendants(child)]
    return found


def largest(explorer: AccumulationExplorer) -> float:
    return max(explorer.max_differences.values())


# ----- building ----------------------------------------------------------------------------------


def test_builds_with_no_arguments_on_an_equal_setting():
    explorer = AccumulationExplorer()
    assert repr(explorer) == "AccumulationExplorer()"
    assert (explorer.micro_batches, explorer.scale, explorer.uneven, explorer.batchnorm) == (
        4,
        "1/K",
        False,
        False,
    )
    assert explorer.sizes == [12, 12, 12, 12] and explorer.weights == [0.25] * 4
    assert set(explorer.max_differences) == {
        "hidden.weight",
        "hidden.bias",
        "out.weight",
        "out.bias",
    }
    assert explorer.equal and largest(explorer) < 1e-6
    assert explorer.message.startswith("The gradients are equal.")
    assert "<table" in explorer.table_html.value and "48 samples" in explorer.table_html.value


def test_controls_are_attributes_and_children_and_there_is_no_output_widget():
    explorer = AccumulationExplorer()
    inside = descendants(explorer)
    for control in (
        explorer.micro_batches_slider,
        explorer.scale_toggle,
        explorer.uneven_toggle,
        explorer.batchnorm_toggle,
        explorer.table_html,
    ):
        assert any(control is w for w in inside)
    assert (explorer.micro_batches_slider.min, explorer.micro_batches_slider.max) == (1, 16)
    assert [value for _, value in explorer.scale_toggle.options] == list(SCALINGS)
    assert not any(isinstance(w, widgets.Output) for w in inside)


def test_default_data_is_seeded_and_the_global_random_state_is_left_alone():
    before = torch.get_rng_state()
    first, second = AccumulationExplorer(), AccumulationExplorer()
    first.set(batchnorm=True, micro_batches=8)
    assert torch.equal(before, torch.get_rng_state())
    assert torch.equal(first.data[0], second.data[0]) and torch.equal(first.data[1], second.data[1])
    assert first.data[0].shape == (48, 4) and first.data[1].shape == (48, 1)


def test_the_thread_count_is_restored(two_threads):
    threads = torch.get_num_threads()
    assert threads == two_threads
    AccumulationExplorer().set(batchnorm=True, micro_batches=16)
    assert torch.get_num_threads() == threads


# ----- the rules of accumulation -----------------------------------------------------------------


@pytest.mark.parametrize("k", ALL_K)
def test_scaled_even_micro_batches_give_the_full_batch_gradient(k):
    explorer = AccumulationExplorer()
    explorer.set(micro_batches=k, scale=True, uneven=False, batchnorm=False)
    assert explorer.scale == "1/K"
    assert len(explorer.sizes) == k and len(set(explorer.sizes)) == 1
    assert sum(explorer.sizes) == 48 // k * k
    assert all(d < 1e-6 for d in explorer.max_differences.values()), explorer.max_differences
    assert explorer.equal and explorer.message.startswith("The gradients are equal.")
    for name, full in explorer.full_gradients.items():
        assert full.abs().max() > 1e-3, name  # a real gradient, not zeros compared with zeros
        assert torch.allclose(explorer.accumulated_gradients[name], full, atol=1e-6)


@pytest.mark.parametrize("k", [2, 3, 4, 5, 8, 16])
def test_without_scaling_the_gradient_is_k_times_too_big(k):
    explorer = AccumulationExplorer()
    explorer.set(micro_batches=k, scale=False)
    assert explorer.scale == "off" and explorer.weights == [1.0] * k
    for name, full in explorer.full_gradients.items():
        accumulated = explorer.accumulated_gradients[name]
        assert torch.allclose(accumulated, k * full, rtol=1e-5, atol=1e-6), name
    assert not explorer.equal
    assert f"{k} times the full-batch gradient" in explorer.message
    assert f"(here {k} times)" in explorer.message


def test_one_micro_batch_needs_no_scaling():
    explorer = AccumulationExplorer()
    for scale in SCALINGS:
        explorer.set(micro_batches=1, scale=scale)
        assert explorer.equal and largest(explorer) == 0.0
        assert "With one micro-batch" in explorer.message


@pytest.mark.parametrize("k", range(2, MAX_MICRO_BATCHES + 1))
def test_an_uneven_last_micro_batch_is_matched_by_share_weights_only(k):
    explorer = AccumulationExplorer()
    explorer.set(micro_batches=k, uneven=True, scale=True)  # True means "share" here
    assert explorer.scale == "share"
    sizes = explorer.sizes
    assert len(sizes) == k and sizes[-1] < sizes[0] and len(set(sizes[:-1])) == 1
    assert explorer.weights == pytest.approx([n / sum(sizes) for n in sizes])
    assert sum(explorer.weights) == pytest.approx(1.0)
    assert all(d < 1e-6 for d in explorer.max_differences.values())
    assert explorer.equal

    explorer.set(scale="1/K")
    assert not explorer.equal and largest(explorer) > 1e-4
    assert "share of the samples" in explorer.message
    assert f"has {sizes[-1]} samples, not {sizes[0]}" in explorer.message


def test_share_weighting_with_even_micro_batches_is_dividing_by_k():
    explorer = AccumulationExplorer()
    explorer.set(micro_batches=6, scale="share")
    assert explorer.weights == pytest.approx([1 / 6] * 6)
    assert explorer.equal


def test_uneven_toggle_says_when_it_cannot_make_the_last_batch_smaller():
    explorer = AccumulationExplorer()
    explorer.set(micro_batches=1, uneven=True)
    assert explorer.sizes == [48] and "no last one to make smaller" in explorer.message
    small = AccumulationExplorer(data=(torch.randn(16, 4), torch.randn(16, 1)))
    small.set(micro_batches=16, uneven=True, scale=True)
    assert small.sizes == [1] * 16 and "cannot be smaller" in small.message and small.equal


def test_batchnorm_breaks_accumulation_for_more_than_one_micro_batch():
    explorer = AccumulationExplorer()
    explorer.set(batchnorm=True, micro_batches=1)
    assert "norm.weight" in explorer.max_differences
    assert explorer.equal
    for k in (2, 3, 4, 8, 16):
        explorer.set(micro_batches=k, scale=True)
        assert not explorer.equal, k
        assert explorer.max_differences["norm.weight"] > 1e-4
        assert "BatchNorm in train mode" in explorer.message
    # the bias right before BatchNorm has (almost) no gradient, so it cannot differ
    assert explorer.max_differences["hidden.bias"] < 1e-6
    assert explorer.full_gradients["hidden.bias"].abs().max() < 1e-5
    explorer.set(scale=False)
    assert "The scaling is wrong too" in explorer.message


def test_batchnorm_in_eval_mode_accumulates_exactly():
    """What the BatchNorm sentence promises: with running statistics, accumulation agrees."""
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 1))
    with torch.no_grad():
        model(torch.randn(64, 4))  # some running statistics that are not the initial ones
    model.eval()
    explorer = AccumulationExplorer(model)
    assert not explorer.batchnorm  # no BatchNorm layer in *train* mode
    for k in (2, 4, 8):
        explorer.set(micro_batches=k, scale=True)
        assert explorer.equal and largest(explorer) < 1e-6


def test_dropout_breaks_accumulation_and_is_named():
    model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5), nn.Linear(16, 1))
    explorer = AccumulationExplorer(model)
    first = dict(explorer.max_differences)
    assert not explorer.equal and "Dropout" in explorer.message
    torch.manual_seed(123)  # whatever the notebook's random state, the same masks each time
    explorer.set(micro_batches=4)
    assert explorer.max_differences == first
    model.eval()
    assert AccumulationExplorer(model).equal


def test_the_explorer_never_touches_the_learners_model():
    model = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(20, 3), torch.randn(20, 2)
    explorer = AccumulationExplorer(model, (x, y))
    explorer.set(micro_batches=5, scale=False)
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert explorer.model is not model
    assert explorer.batchnorm and explorer.batchnorm_toggle.disabled


def test_gradients_left_in_the_learners_model_do_not_leak_in():
    model = nn.Linear(4, 1)
    nn.functional.mse_loss(model(torch.randn(8, 4)), torch.randn(8, 1)).backward()
    stale = model.weight.grad.clone()
    explorer = AccumulationExplorer(model)
    explorer.set(micro_batches=4, scale=True)
    assert explorer.equal
    x, y = explorer.data
    expected = torch.autograd.grad(nn.functional.mse_loss(model(x), y), model.weight)[0]
    assert torch.allclose(explorer.full_gradients["weight"], expected, atol=1e-6)
    assert torch.equal(model.weight.grad, stale)  # and the learner's own .grad is untouched


def test_a_learner_model_and_data_without_batchnorm():
    model = nn.Linear(3, 2)
    x, y = torch.randn(30, 3), torch.randn(30, 2)
    explorer = AccumulationExplorer(model, (x, y), loss_fn=nn.MSELoss())
    assert set(explorer.max_differences) == {"weight", "bias"}
    for k in (2, 3, 5, 7):
        explorer.set(micro_batches=k, scale=True, uneven=False)
        assert explorer.equal and sum(explorer.sizes) == 30 // k * k
        explorer.set(uneven=True, scale=True)
        assert explorer.equal
    with pytest.raises(ValueError, match="batchnorm=True cannot be chosen: your model has no"):
        explorer.set(batchnorm=True)
    with pytest.raises(ValueError, match="leave batchnorm out"):
        AccumulationExplorer(model, (x, y), batchnorm=True)


def test_a_summed_loss_flips_the_rule_and_the_message_says_so():
    explorer = AccumulationExplorer(loss_fn=nn.MSELoss(reduction="sum"))
    explorer.set(micro_batches=4, scale=False)
    assert explorer.equal  # summing losses need no scaling at all ...
    assert "does not predict" in explorer.message and "reduction='sum'" in explorer.message
    explorer.set(scale=True)
    assert not explorer.equal  # ... and dividing by K is now wrong
    assert "does not predict" in explorer.message


def test_learner_data_with_one_dimensional_targets_uses_the_built_in_model():
    x, y = torch.randn(24, 3), torch.randn(24)
    explorer = AccumulationExplorer(data=(x, y))
    assert explorer.data[1].shape == (24, 1) and explorer.equal


def test_moving_the_controls_is_the_same_as_set():
    clicked = AccumulationExplorer()
    clicked.micro_batches_slider.value = 6
    clicked.scale_toggle.value = "1/K"
    clicked.uneven_toggle.value = True
    clicked.batchnorm_toggle.value = True
    typed = AccumulationExplorer()
    typed.set(micro_batches=6, scale="1/K", uneven=True, batchnorm=True)
    assert clicked.max_differences == typed.max_differences
    assert clicked.message == typed.message and clicked.sizes == typed.sizes


def test_each_control_updates_the_readout():
    explorer = AccumulationExplorer()
    explorer.micro_batches_slider.value = 8
    assert explorer.sizes == [6] * 8
    explorer.scale_toggle.value = "off"
    assert not explorer.equal and explorer.weights == [1.0] * 8
    explorer.scale_toggle.value = "share"
    explorer.uneven_toggle.value = True
    assert explorer.sizes[-1] == 3 and explorer.equal
    explorer.batchnorm_toggle.value = True
    assert "norm.bias" in explorer.max_differences and not explorer.equal


def test_the_table_highlights_only_what_differs():
    explorer = AccumulationExplorer()
    explorer.set(micro_batches=4, scale=True)
    assert "#fde2e1" not in explorer.table_html.value
    explorer.set(batchnorm=True)
    table = explorer.table_html.value
    assert table.count("#fde2e1") == sum(
        d > 1e-6 * max(1.0, float(explorer.full_gradients[n].abs().max()))
        for n, d in explorer.max_differences.items()
    )
    assert table.count("differs") == 5 and table.count(">equal<") == 1


# ----- problems shown as messages ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss_fn", "expected"),
    [
        (lambda p, t: 1.0, "torch tensor"),
        (lambda p, t: (p - t) ** 2, "single number"),
        (lambda p, t: ((p - t) ** 2).mean().item(), "torch tensor"),
        (lambda p, t: ((p - t) ** 2).mean().detach(), "without a gradient"),
        (lambda p, t: {}["missing"], "KeyError"),
    ],
)
def test_a_broken_loss_fn_gives_a_message_not_a_traceback(loss_fn, expected):
    explorer = AccumulationExplorer(nn.Linear(4, 1), loss_fn=loss_fn)
    assert explorer.message.startswith("your model or loss_fn did not work"), explorer.message
    assert AccumulationExplorer(loss_fn=loss_fn).message.startswith("your loss_fn did not work")
    assert expected in explorer.message and "Traceback" not in explorer.message
    assert explorer.max_differences == {} and explorer.table_html.value == ""
    explorer.set(micro_batches=3)  # still no raise
    assert "did not work" in explorer.message


def test_a_model_that_does_not_fit_the_data_gives_a_message():
    explorer = AccumulationExplorer(nn.Linear(3, 1))  # the default X has 4 features
    assert explorer.message.startswith("your model did not work: RuntimeError")
    assert explorer.max_differences == {}


def test_too_few_samples_for_k_micro_batches_gives_a_message():
    explorer = AccumulationExplorer(data=(torch.randn(5, 4), torch.randn(5, 1)))
    explorer.set(micro_batches=8)
    assert "need at least 8 samples" in explorer.message and explorer.max_differences == {}
    explorer.set(micro_batches=5)
    assert explorer.equal


def test_batchnorm_with_single_sample_micro_batches_gives_a_message():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    explorer = AccumulationExplorer(model, (torch.randn(8, 4), torch.randn(8, 1)))
    explorer.set(micro_batches=8)
    assert "at least 2 samples per micro-batch" in explorer.message


# ----- bad arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"model": "resnet"}, TypeError, "model must be a torch.nn.Module"),
        ({"model": nn.ReLU()}, ValueError, "no parameter with requires_grad=True"),
        ({"data": torch.randn(4, 4)}, TypeError, "data must be a pair (X, y)"),
        ({"data": ([1, 2], torch.randn(2))}, TypeError, "data's X must be a torch tensor"),
        ({"data": (torch.randn(5, 4), torch.randn(4, 1))}, ValueError, "same number of samples"),
        ({"data": (torch.randn(1, 4), torch.randn(1, 1))}, ValueError, "at least 2 samples"),
        ({"data": (torch.randn(6, 2, 2), torch.randn(6, 1))}, ValueError, "flatten it"),
        ({"loss_fn": "mse"}, TypeError, "loss_fn must be a function"),
        ({"tolerance": -1.0}, ValueError, "tolerance must be a positive number"),
        ({"tolerance": "small"}, TypeError, "tolerance"),
        ({"micro_batches": 0}, ValueError, "micro_batches must be between 1 and 16"),
        ({"micro_batches": 2.0}, TypeError, "micro_batches must be a whole number"),
        ({"scale": "half"}, ValueError, "scale must be True, False, 'off', '1/K' or 'share'"),
        ({"uneven": "yes"}, TypeError, "uneven must be True or False"),
        ({"batchnorm": 1}, TypeError, "batchnorm must be True or False"),
    ],
)
def test_bad_constructor_arguments_name_the_argument(kwargs, error, words):
    with pytest.raises(error) as caught:
        AccumulationExplorer(**kwargs)
    assert words in str(caught.value)


def test_bad_set_arguments_change_nothing():
    explorer = AccumulationExplorer()
    before = (explorer.micro_batches, explorer.scale, dict(explorer.max_differences))
    for kwargs in ({"micro_batches": 17}, {"scale": "x"}, {"uneven": 0}):
        with pytest.raises((TypeError, ValueError)):
            explorer.set(**kwargs)
    assert (explorer.micro_batches, explorer.scale, explorer.max_differences) == before
    with pytest.raises(TypeError, match="dropout"):
        explorer.set(dropout=True)


# ----- fuzzing -------------------------------------------------------------------------------------


@FUZZ
@given(
    k=st.integers(min_value=1, max_value=MAX_MICRO_BATCHES),
    scale=st.sampled_from([True, False, *SCALINGS]),
    uneven=st.booleans(),
    batchnorm=st.booleans(),
    by_widget=st.booleans(),
)
def test_any_setting_gives_a_verdict_that_follows_the_rules(k, scale, uneven, batchnorm, by_widget):
    explorer = AccumulationExplorer()
    if by_widget:
        explorer.micro_batches_slider.value = k
        explorer.uneven_toggle.value = uneven
        explorer.batchnorm_toggle.value = batchnorm
        explorer.scale_toggle.value = {True: "1/K", False: "off"}.get(scale, scale)
    else:
        explorer.set(micro_batches=k, scale=scale, uneven=uneven, batchnorm=batchnorm)
    assert explorer.max_differences and explorer.message.startswith("The gradients are ")
    assert len(explorer.sizes) == k
    share_right = explorer.scale == "share" or (explorer.scale == "1/K" and not uneven)
    expected = k == 1 or (not batchnorm and share_right)
    assert explorer.equal == expected
    assert "does not predict" not in explorer.message
    explorer.close()


JUNK = st.one_of(
    st.none(),
    st.text(max_size=5),
    st.floats(),
    st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=3).map(torch.tensor),
)


@FUZZ
@given(
    junk=JUNK,
    raises=st.sampled_from([None, ValueError, IndexError, RuntimeError]),
    text=st.text(max_size=30),
    k=st.integers(min_value=1, max_value=MAX_MICRO_BATCHES),
)
def test_junk_from_a_learner_loss_fn_always_ends_in_a_message(junk, raises, text, k):
    def junk_loss(prediction, target):
        if raises is not None:
            raise raises(text)
        return junk

    explorer = AccumulationExplorer(loss_fn=junk_loss, micro_batches=k)
    assert explorer.message.startswith("your loss_fn did not work"), explorer.message
    assert explorer.max_differences == {}
    explorer.close()
