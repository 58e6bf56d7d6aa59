"""LearningRateExplorer: every control driven from Python, results checked against the maths."""

from __future__ import annotations

import io
import math

import ipywidgets as widgets
import PIL.Image
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.plots import PALETTE
from helpers.widgets.learning_rate import (
    LR_MAX_EXPONENT,
    LR_MIN_EXPONENT,
    MAX_STEPS,
    OPTIMIZERS,
    LearningRateExplorer,
)

FUZZ = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def descendants(widget: widgets.Widget) -> list[widgets.Widget]:
    """Every widget inside `widget`, depth first."""
    found = []
    for child in getattr(widget, "children", ()):
        found += [child, *descendants(child)]
    return found


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "the figure must be PNG bytes"
    return PIL.Image.open(io.BytesIO(data)).size


def hessian_largest_eigenvalue(x: torch.Tensor) -> float:
    """The mean squared error of w * x + b has the constant Hessian 2 [[E x^2, E x], [E x, 1]]."""
    x = x.double()
    hessian = 2 * torch.tensor([[(x * x).mean(), x.mean()], [x.mean(), 1.0]], dtype=torch.float64)
    return float(torch.linalg.eigvalsh(hessian).max())


# ----- building and the default problem --------------------------------------------------------


def test_builds_with_no_arguments_and_shows_a_first_run():
    explorer = LearningRateExplorer()
    assert repr(explorer) == "LearningRateExplorer()"
    assert explorer.lr == pytest.approx(0.1) and explorer.steps == 30
    assert explorer.optimizer == "SGD"
    assert len(explorer.losses) == len(explorer.path) == 31
    assert explorer.path[0] == pytest.approx(explorer.start)
    assert not explorer.diverged and explorer.diverged_after is None
    assert explorer.losses[-1] < explorer.losses[0]
    assert "after 30 steps" in explorer.message
    width, height = png_size(explorer.figure_image.value)
    assert width > 400 and height > 150


def test_controls_are_attributes_and_children_and_there_is_no_output_widget():
    explorer = LearningRateExplorer()
    inside = descendants(explorer)
    for control in (
        explorer.lr_slider,
        explorer.steps_slider,
        explorer.optimizer_choice,
        explorer.figure_image,
    ):
        assert any(control is w for w in inside)
    assert isinstance(explorer.lr_slider, widgets.FloatLogSlider)
    assert isinstance(explorer.steps_slider, widgets.IntSlider)
    assert list(explorer.optimizer_choice.options) == list(OPTIMIZERS)
    assert not any(isinstance(w, widgets.Output) for w in inside)
    assert explorer.lr_slider.min == LR_MIN_EXPONENT and explorer.lr_slider.max == LR_MAX_EXPONENT
    assert explorer.steps_slider.max == MAX_STEPS


def test_the_default_data_and_least_squares_solution_are_the_closed_form():
    explorer = LearningRateExplorer()
    x, y = explorer.data
    design = torch.stack([x, torch.ones_like(x)], dim=1).double()
    solution = torch.linalg.lstsq(design, y.double().unsqueeze(1)).solution.squeeze(1)
    assert explorer.least_squares == pytest.approx(solution.tolist(), abs=1e-9)
    again = LearningRateExplorer()
    assert torch.equal(again.data[0], x) and torch.equal(again.data[1], y)  # seeded


def test_a_good_learning_rate_converges_to_the_least_squares_line():
    explorer = LearningRateExplorer()
    explorer.set(lr=0.3, steps=100, optimizer="SGD")
    assert not explorer.diverged
    assert explorer.path[-1] == pytest.approx(explorer.least_squares, abs=1e-3)
    # Gradient descent on a quadratic with lr < 2 / largest eigenvalue never increases the loss.
    assert all(b <= a + 1e-7 for a, b in zip(explorer.losses, explorer.losses[1:], strict=False))
    w_star, b_star = explorer.least_squares
    best = float(explorer.loss_fn(torch.tensor(w_star), torch.tensor(b_star)))
    assert explorer.losses[-1] == pytest.approx(best, rel=1e-4)


def test_a_tiny_learning_rate_hardly_moves():
    explorer = LearningRateExplorer()
    explorer.set(lr=1e-3, steps=100)
    assert not explorer.diverged
    assert explorer.losses[-1] > 0.7 * explorer.losses[0]
    distance = math.dist(explorer.path[0], explorer.path[-1])
    assert distance < 0.3


def test_sgd_first_step_is_start_minus_lr_times_gradient():
    explorer = LearningRateExplorer()
    explorer.set(lr=0.05, steps=1, optimizer="SGD")
    w = torch.tensor(explorer.start[0], requires_grad=True)
    b = torch.tensor(explorer.start[1], requires_grad=True)
    explorer.loss_fn(w, b).backward()
    expected = (explorer.start[0] - 0.05 * float(w.grad), explorer.start[1] - 0.05 * float(b.grad))
    assert explorer.path[1] == pytest.approx(expected, abs=1e-6)


def test_the_divergence_threshold_is_two_over_the_largest_eigenvalue():
    explorer = LearningRateExplorer()
    limit = 2 / hessian_largest_eigenvalue(explorer.data[0])
    explorer.set(lr=0.9 * limit, steps=100, optimizer="SGD")
    assert not explorer.diverged
    explorer.set(lr=1.2 * limit, steps=100, optimizer="SGD")
    assert explorer.diverged


def test_a_large_learning_rate_diverges_with_a_message_and_a_picture():
    explorer = LearningRateExplorer()
    explorer.set(lr=1.0, steps=40)
    assert explorer.diverged
    k = explorer.diverged_after
    assert 0 < k < 40
    assert len(explorer.losses) == len(explorer.path) == k
    assert all(math.isfinite(v) for v in explorer.losses)
    assert f"diverged after {k} steps" in explorer.message
    assert "learning rate is too large" in explorer.message and "smaller" in explorer.message
    assert "error" in explorer._message_html.value
    assert png_size(explorer.figure_image.value)[0] > 400  # the real figure, not a placeholder
    # Back to a safe value: the explorer recovers.
    explorer.set(lr=0.1)
    assert not explorer.diverged and len(explorer.losses) == 41


def test_a_path_that_ends_at_the_lowest_point_leaves_the_star_visible():
    explorer = LearningRateExplorer()
    explorer.set(lr=0.3, steps=100, optimizer="SGD")  # ends on the least-squares point
    contour_ax = explorer._artists["contour_ax"]
    star = explorer._artists["star"]
    end = explorer._artists["end"]
    assert star.get_label() == "lowest on grid"
    assert math.dist(explorer.path[-1], (star.get_xdata()[0], star.get_ydata()[0])) < 0.1
    # the end marker is an open ring, larger than the star, in the palette's colours
    assert end.get_marker() == "o" and end.get_markerfacecolor() == "none"
    assert end.get_markersize() > star.get_markersize()
    assert explorer._artists["path"].get_color() in PALETTE
    assert end.get_markeredgecolor() in PALETTE
    # and in the picture the star's white centre shows, not the end marker or the path
    image = PIL.Image.open(io.BytesIO(explorer.figure_image.value)).convert("RGB")
    x, y = contour_ax.transData.transform((star.get_xdata()[0], star.get_ydata()[0]))
    r, g, b = image.getpixel((round(x), image.height - round(y)))
    assert min(r, g, b) > 200, (r, g, b)


def test_the_legend_stays_on_top_of_a_path_that_crosses_it():
    explorer = LearningRateExplorer()
    explorer.set(lr=0.3, steps=30, optimizer="SGD")
    legend_box = explorer._artists["contour_ax"].get_legend().get_window_extent()
    path_line = explorer._artists["path"]

    def crosses_legend() -> bool:
        drawn = path_line.get_path().transformed(path_line.get_transform())
        return drawn.intersects_bbox(legend_box)

    def legend_pixels() -> bytes:
        image = PIL.Image.open(io.BytesIO(explorer.figure_image.value)).convert("RGB")
        x0, y0, x1, y1 = legend_box.extents
        return image.crop((x0, image.height - y1, x1, image.height - y0)).tobytes()

    assert not crosses_legend()
    clear = legend_pixels()
    explorer.set(lr=0.9)  # diverges: the path flies off through the upper right corner
    assert explorer.diverged and crosses_legend()
    assert legend_pixels() == clear, "the path is drawn over the legend"


def test_divergence_is_told_by_marker_and_title_not_colour_alone():
    explorer = LearningRateExplorer()
    explorer.set(lr=1.0, steps=40)
    assert explorer.diverged
    assert explorer._artists["end"].get_marker() == "X"
    assert "(diverged)" in explorer._artists["contour_ax"].get_title()
    assert "diverged after" in explorer._artists["loss_ax"].get_title()
    explorer.set(lr=0.1)
    assert explorer._artists["end"].get_marker() == "o"
    assert "diverged" not in explorer._artists["contour_ax"].get_title()


def test_the_largest_learning_rate_diverges_at_once_not_with_a_crash():
    explorer = LearningRateExplorer()
    explorer.set(lr=10.0, steps=MAX_STEPS)
    assert explorer.diverged and explorer.diverged_after <= 3


def test_momentum_and_adam_take_different_paths_from_sgd():
    explorer = LearningRateExplorer()
    paths = {}
    for name in OPTIMIZERS:
        explorer.set(lr=0.05, steps=20, optimizer=name)
        paths[name] = list(explorer.path)
    assert paths["SGD"][1] == pytest.approx(paths["SGD with momentum"][1])  # buffer starts at g
    for other in ("SGD with momentum", "Adam"):
        gap = max(math.dist(p, q) for p, q in zip(paths["SGD"], paths[other], strict=True))
        assert gap > 0.05, other


def test_momentum_matches_the_heavy_ball_rule_by_hand():
    explorer = LearningRateExplorer()
    explorer.set(lr=0.05, steps=10, optimizer="SGD with momentum")
    w = torch.tensor(explorer.start[0], requires_grad=True)
    b = torch.tensor(explorer.start[1], requires_grad=True)
    velocity = [torch.tensor(0.0), torch.tensor(0.0)]
    for step in range(10):
        grads = torch.autograd.grad(explorer.loss_fn(w, b), [w, b])
        with torch.no_grad():
            for i, (p, g) in enumerate(zip((w, b), grads, strict=True)):
                velocity[i] = g.clone() if step == 0 else 0.9 * velocity[i] + g
                p -= 0.05 * velocity[i]
    assert explorer.path[-1] == pytest.approx((w.item(), b.item()), abs=1e-5)


def test_adam_first_step_moves_each_parameter_by_about_the_learning_rate():
    explorer = LearningRateExplorer()
    explorer.set(lr=0.2, steps=1, optimizer="Adam")
    (w0, b0), (w1, b1) = explorer.path
    assert abs(w1 - w0) == pytest.approx(0.2, rel=1e-3)
    assert abs(b1 - b0) == pytest.approx(0.2, rel=1e-3)


def test_moving_a_slider_is_the_same_as_set():
    clicked = LearningRateExplorer()
    clicked.lr_slider.value = 0.3
    clicked.steps_slider.value = 50
    clicked.optimizer_choice.value = "Adam"
    typed = LearningRateExplorer()
    typed.set(lr=0.3, steps=50, optimizer="adam")  # the name is matched without case
    assert typed.optimizer == "Adam"
    assert clicked.losses == typed.losses and clicked.path == typed.path
    assert clicked.message == typed.message


def test_fewer_and_more_steps_reuse_the_same_run():
    explorer = LearningRateExplorer()
    explorer.set(lr=0.2, steps=80, optimizer="SGD with momentum")
    long_losses, long_path = list(explorer.losses), list(explorer.path)
    explorer.set(steps=10)
    assert explorer.losses == long_losses[:11] and explorer.path == long_path[:11]
    explorer.set(steps=100)
    assert explorer.losses[:81] == long_losses
    fresh = LearningRateExplorer(lr=0.2, steps=100, optimizer="SGD with momentum")
    assert fresh.losses == explorer.losses


def test_the_global_random_state_is_left_alone():
    before = torch.get_rng_state()
    explorer = LearningRateExplorer()
    explorer.set(lr=0.5, steps=20, optimizer="Adam")
    assert torch.equal(before, torch.get_rng_state())


# ----- the learner's own loss --------------------------------------------------------------------


def test_a_learner_loss_function_converges_to_its_minimum():
    def bowl(w, b):
        return (w - 1) ** 2 + 4 * (b + 0.5) ** 2

    explorer = LearningRateExplorer(bowl, w_range=(-3, 3), b_range=(-2, 2), start=(-2.5, 1.5))
    assert explorer.data is None and explorer.least_squares is None
    explorer.set(lr=0.1, steps=100, optimizer="SGD")
    assert explorer.path[-1] == pytest.approx((1.0, -0.5), abs=1e-4)
    assert explorer.losses[-1] == pytest.approx(0.0, abs=1e-6)
    # The bowl is 8 times steeper along b: SGD diverges for lr > 2/8.
    explorer.set(lr=0.3)
    assert explorer.diverged


def test_a_loss_that_vmap_cannot_batch_still_draws_and_runs():
    def piecewise(w, b):  # Python control flow on a value: vmap refuses, a plain loop works
        if w.item() > 0:
            return w**2 + b**2
        return 2 * w**2 + b**2

    explorer = LearningRateExplorer(piecewise)
    assert not explorer.message.startswith("your loss_fn did not work"), explorer.message
    assert len(explorer.losses) == 31 and explorer.losses[-1] < explorer.losses[0]


def test_default_range_and_start_for_a_learner_loss():
    explorer = LearningRateExplorer(lambda w, b: w**2 + b**2)
    assert explorer.w_range == (-2.0, 2.0) and explorer.b_range == (-2.0, 2.0)
    assert explorer.start == pytest.approx((-1.4, 1.4))


def test_a_loss_unbounded_below_is_reported_as_divergence():
    explorer = LearningRateExplorer(lambda w, b: -(w**2) - b**2, start=(0.5, 0.5))
    explorer.set(lr=1.0, steps=100)
    assert explorer.diverged and "diverged after" in explorer.message


@pytest.mark.parametrize(
    ("loss_fn", "expected"),
    [
        (lambda w, b: 1 / 0, "ZeroDivisionError"),
        (lambda w, b: torch.stack([w, b]), "single number"),
        (lambda w, b: 3.0, "torch tensor"),
        (lambda w, b: None, "NoneType"),
        (lambda w, b: (w + b).detach(), "does not depend on w and b"),
        (lambda w, b: torch.tensor(1), "floating-point"),
        (lambda w, b: w * float("nan"), "not finite"),
        (lambda w, b, c: w + b + c, "TypeError"),
    ],
)
def test_a_broken_learner_loss_gives_a_message_not_a_traceback(loss_fn, expected):
    explorer = LearningRateExplorer(loss_fn)
    assert explorer.message.startswith("your loss_fn did not work"), explorer.message
    assert expected in explorer.message
    assert "Traceback" not in explorer.message and "\n" not in explorer.message
    assert explorer.losses == [] and explorer.path == []
    assert png_size(explorer.figure_image.value)[0] < 400  # the small placeholder picture
    explorer.set(lr=0.5, steps=5)  # moving a control again shows the message again, no raise
    assert "did not work" in explorer.message


def test_a_loss_that_fails_only_far_away_stops_with_a_message():
    def fussy(w, b):
        if abs(w.item()) > 5:
            raise RuntimeError("w left the region this loss knows about")
        return w**2 + b**2

    explorer = LearningRateExplorer(fussy, start=(1.0, 1.0))
    assert not explorer.diverged and explorer.losses[-1] < explorer.losses[0]
    explorer.set(lr=3.0, steps=50)
    assert "RuntimeError: w left the region" in explorer.message
    explorer.set(lr=0.1)
    assert explorer.losses and "after 50 steps" in explorer.message


def test_a_start_far_outside_the_ranges_is_named():
    explorer = LearningRateExplorer(lambda w, b: w**2 + b**2, start=(1000.0, 0.0))
    assert "at the start point (1000.0, 0.0)" in explorer.message
    assert "1000 times the largest loss" in explorer.message and explorer.losses == []


def test_a_gradient_that_is_not_finite_is_named():
    explorer = LearningRateExplorer(lambda w, b: torch.sqrt(w**2 + b**2), start=(0.0, 0.0))
    assert "gradient" in explorer.message and "not finite" in explorer.message


# ----- bad arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"loss_fn": 3}, TypeError, "loss_fn must be a function"),
        ({"w_range": (2, 1)}, ValueError, "w_range"),
        ({"b_range": "ab"}, TypeError, "b_range must be a pair"),
        ({"b_range": (0, 1, 2)}, TypeError, "b_range"),
        ({"w_range": (0, float("inf"))}, ValueError, "finite"),
        ({"start": (0, float("nan"))}, ValueError, "start"),
        ({"start": ("a", 1)}, TypeError, "start"),
        ({"lr": 0.0}, ValueError, "lr must be between"),
        ({"lr": 100.0}, ValueError, "lr must be between"),
        ({"lr": "fast"}, TypeError, "lr must be a number"),
        ({"steps": 0}, ValueError, "steps must be between 1 and"),
        ({"steps": 2.5}, TypeError, "steps must be a whole number"),
        ({"optimizer": "RMSprop"}, ValueError, "'SGD', 'SGD with momentum', 'Adam'"),
        ({"optimizer": None}, TypeError, "optimizer must be one of"),
    ],
)
def test_bad_constructor_arguments_name_the_argument(kwargs, error, words):
    with pytest.raises(error) as caught:
        LearningRateExplorer(**kwargs)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"lr": -1}, ValueError, "lr must be between 0.0001 and 10"),
        ({"lr": True}, TypeError, "lr"),
        ({"steps": MAX_STEPS + 1}, ValueError, "steps"),
        ({"optimizer": "sgd+momentum"}, ValueError, "optimizer"),
    ],
)
def test_bad_set_arguments_name_the_argument_and_change_nothing(kwargs, error, words):
    explorer = LearningRateExplorer()
    before = (explorer.lr, explorer.steps, explorer.optimizer, list(explorer.losses))
    with pytest.raises(error) as caught:
        explorer.set(**kwargs)
    assert words in str(caught.value)
    assert (explorer.lr, explorer.steps, explorer.optimizer, explorer.losses) == before


def test_set_rejects_unknown_controls():
    with pytest.raises(TypeError, match="momentum"):
        LearningRateExplorer().set(momentum=0.5)


# ----- fuzzing -------------------------------------------------------------------------------------


SETTING = st.tuples(
    st.floats(min_value=LR_MIN_EXPONENT, max_value=LR_MAX_EXPONENT),
    st.integers(min_value=1, max_value=MAX_STEPS),
    st.sampled_from(OPTIMIZERS),
    st.booleans(),
)


@FUZZ
@given(moves=st.lists(SETTING, min_size=1, max_size=3))
def test_any_sequence_of_settings_gives_a_run_or_a_divergence(moves):
    explorer = LearningRateExplorer()
    for exponent, steps, optimizer, by_slider in moves:
        lr = 10.0**exponent
        if by_slider:
            explorer.optimizer_choice.value = optimizer
            explorer.steps_slider.value = steps
            explorer.lr_slider.value = lr
        else:
            explorer.set(lr=lr, steps=steps, optimizer=optimizer)
        assert all(math.isfinite(v) for v in explorer.losses)
        assert all(math.isfinite(w) and math.isfinite(b) for w, b in explorer.path)
        if explorer.diverged:
            assert len(explorer.losses) == explorer.diverged_after <= steps
            assert explorer.message.startswith(f"diverged after {explorer.diverged_after} step")
        else:
            assert len(explorer.losses) == len(explorer.path) == steps + 1
            assert f"after {steps} steps" in explorer.message
    explorer.close()


JUNK = st.one_of(
    st.none(),
    st.text(max_size=5),
    st.floats(allow_nan=True),
    st.integers(),
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=0, max_size=4).map(
        torch.tensor
    ),
    st.sampled_from([float("nan"), float("inf"), -float("inf")]).map(torch.tensor),
)


@FUZZ
@given(
    junk=JUNK,
    raises=st.sampled_from([None, ValueError, KeyError, RuntimeError, ZeroDivisionError]),
    text=st.text(max_size=40),
    exponent=st.floats(min_value=LR_MIN_EXPONENT, max_value=LR_MAX_EXPONENT),
)
def test_junk_from_a_learner_loss_always_ends_in_a_message(junk, raises, text, exponent):
    def junk_loss(w, b):
        if raises is not None:
            raise raises(text)
        return junk

    explorer = LearningRateExplorer(junk_loss)
    explorer.set(lr=10.0**exponent)
    assert explorer.message.startswith("your loss_fn did not work"), explorer.message
    assert explorer.losses == [] and explorer.path == [] and not explorer.diverged
    explorer.close()
