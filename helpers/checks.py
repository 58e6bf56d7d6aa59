"""Exercise checks: `check("03.mse", answer)` prints "Correct" or a hint, and never raises.

Each notebook's exercises live in `helpers/exercises/nbNN.py`, registered with `@exercise(...)`.
A checker takes the learner's answer and returns None when it is right, or a hint (a string)
saying what is wrong and what to try. `compare_tensor` gives the usual hints for a tensor answer.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "Feedback",
    "check",
    "grade",
    "exercise",
    "exercise_ids",
    "compare_tensor",
    "compare_number",
    "missing",
    "expect_function",
    "first_line",
]

Checker = Callable[[Any], "str | None"]
_REGISTRY: dict[str, tuple[str, Checker]] = {}
_LOADED = False


@dataclass(frozen=True)
class Feedback:
    """The verdict on one answer: `ok`, and the sentence shown to the learner."""

    exercise_id: str
    ok: bool
    message: str

    def __str__(self) -> str:
        mark = "✅ Correct" if self.ok else "❌ Not yet"
        return f"{mark} [{self.exercise_id}]: {self.message}"

    def __bool__(self) -> bool:
        return self.ok


def exercise(exercise_id: str, title: str) -> Callable[[Checker], Checker]:
    """Register a checker function under `exercise_id` (decorator)."""
    if not isinstance(exercise_id, str) or not exercise_id:
        raise ValueError("exercise_id must be a non-empty string such as '03.mse'.")

    def register(checker: Checker) -> Checker:
        if exercise_id in _REGISTRY and _REGISTRY[exercise_id][1] is not checker:
            raise ValueError(f"exercise {exercise_id!r} is registered twice.")
        _REGISTRY[exercise_id] = (title, checker)
        return checker

    return register


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    import helpers.exercises as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    _LOADED = True


def exercise_ids() -> list[str]:
    """Return the ids of every registered exercise, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def grade(exercise_id: str, answer: Any) -> Feedback:
    """Check `answer` for `exercise_id` and return the Feedback; never raises."""
    try:
        _load_all()
    except Exception as error:  # a broken exercise module must not break a learner's cell
        return Feedback(str(exercise_id), False, f"the exercise checks failed to load ({error}).")
    if not isinstance(exercise_id, str) or exercise_id not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        return Feedback(
            str(exercise_id)[:40],
            False,
            f"there is no exercise called {str(exercise_id)[:40]!r}. "
            f"Copy the id from the exercise's cell; known ids: {known}.",
        )
    title, checker = _REGISTRY[exercise_id]
    hint = missing(answer)
    if hint is None:
        try:
            hint = checker(answer)
        except Exception as error:  # the learner's object misbehaved inside the checker
            hint = (
                f"checking your answer raised {type(error).__name__}: {first_line(error)}. "
                "Look at what your cell returns and compare it with what the exercise asks for."
            )
    if hint is None:
        return Feedback(exercise_id, True, f"{title}.")
    return Feedback(exercise_id, False, str(hint))


def check(exercise_id: str, answer: Any) -> None:
    """Print "Correct" or a hint for the learner's `answer` to exercise `exercise_id`."""
    try:
        print(grade(exercise_id, answer))
    except Exception as error:  # printing itself failed (a broken __str__ somewhere)
        print(
            f"❌ Not yet [{exercise_id!s:.40}]: could not show the result ({type(error).__name__})."
        )


def missing(answer: Any) -> str | None:
    """Return a hint when the answer is a placeholder (None or ...), else None."""
    if answer is None:
        return "the answer is still None. Replace `None` with your code, then run the cell again."
    if answer is Ellipsis:
        return "the answer is still `...`. Replace it with your code, then run the cell again."
    return None


def expect_function(answer: Any, name: str) -> str | None:
    """Return a hint when an answer that should be a function is not callable, else None."""
    if callable(answer):
        return None
    return (
        f"the answer should be your function `{name}` itself, not the result of calling it: "
        f"pass `{name}` with no parentheses. Got a {type(answer).__name__}."
    )


def first_line(error: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message, cut to `limit` characters."""
    try:
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    except Exception:
        text = ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


_FACTORS = {
    2.0: "2",
    0.5: "1/2",
    -1.0: "-1",
}


def compare_number(
    answer: Any,
    expected: float,
    *,
    name: str = "the answer",
    rel_tol: float = 1e-4,
    abs_tol: float = 1e-6,
) -> str | None:
    """Return None if `answer` is a number close to `expected`, else a hint."""
    hint = missing(answer)
    if hint is not None:
        return hint
    if isinstance(answer, torch.Tensor):
        if answer.numel() != 1:
            return (
                f"{name} should be a single number, but it is a tensor of shape "
                f"{tuple(answer.shape)}. Reduce it (e.g. .mean() or .sum()) or use .item()."
            )
        answer = answer.detach().cpu().item()
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        return f"{name} should be a number, but it is a {type(answer).__name__}."
    value = float(answer)
    if math.isnan(value):
        return f"{name} is NaN (not a number): something divided 0 by 0 or overflowed."
    if math.isclose(value, expected, rel_tol=rel_tol, abs_tol=abs_tol):
        return None
    return _factor_hint(name, value, expected) or (
        f"{name} is {value:.4g}, but it should be about {expected:.4g}."
    )


def _factor_hint(name: str, value: float, expected: float) -> str | None:
    if expected == 0 or value == 0:
        return None
    ratio = value / expected
    for factor, label in _FACTORS.items():
        if math.isclose(ratio, factor, rel_tol=1e-3):
            if factor == -1.0:
                return f"{name} has the right size but the wrong sign: check the order of a subtraction."
            return f"{name} is off by a factor of {label}: check where you multiply or divide."
    if ratio > 0 and math.isclose(ratio, round(ratio), rel_tol=1e-3) and round(ratio) > 2:
        return (
            f"{name} is {round(ratio)} times too large: did you sum where a mean was needed "
            f"(or forget to divide by the number of items)?"
        )
    if (
        ratio > 0
        and math.isclose(1 / ratio, round(1 / ratio), rel_tol=1e-3)
        and round(1 / ratio) > 2
    ):
        return (
            f"{name} is {round(1 / ratio)} times too small: did you divide once too often "
            f"(or take a mean where a sum was needed)?"
        )
    return None


def compare_tensor(
    answer: Any,
    expected: torch.Tensor,
    *,
    name: str = "the answer",
    atol: float = 1e-5,
    rtol: float = 1e-4,
    check_dtype: bool = True,
    requires_grad: bool | None = None,
) -> str | None:
    """Return None if `answer` is a tensor equal to `expected` (within tolerance), else a hint."""
    hint = missing(answer)
    if hint is not None:
        return hint
    if not isinstance(answer, torch.Tensor):
        kind = type(answer).__name__
        if isinstance(answer, (int, float, list, tuple)) or kind == "ndarray":
            return (
                f"{name} should be a torch.Tensor, but it is a {kind}. "
                "Build it with torch operations (or wrap it with torch.tensor(...))."
            )
        return f"{name} should be a torch.Tensor, but it is a {kind}."
    if requires_grad is not None and answer.requires_grad != requires_grad:
        if requires_grad:
            return f"{name} does not require grad: create it with requires_grad=True."
        return (
            f"{name} still requires grad: compute it under torch.no_grad(), "
            "or call .detach() on it."
        )
    if tuple(answer.shape) != tuple(expected.shape):
        extra = ""
        if (
            answer.dim() == expected.dim() + 1
            and 1 in answer.shape
            and answer.numel() == expected.numel()
        ):
            extra = " It has an extra dimension of size 1: .squeeze() it, or index it."
        elif answer.numel() == expected.numel():
            extra = " It has the right number of elements: reshape it, or check for a transpose."
        return (
            f"{name} has shape {tuple(answer.shape)}, but it should have shape "
            f"{tuple(expected.shape)}.{extra}"
        )
    if check_dtype and answer.dtype != expected.dtype:
        return (
            f"{name} has dtype {answer.dtype}, but it should be {expected.dtype}. "
            f"Use .to({expected.dtype}) or create it with dtype={expected.dtype}."
        )
    got = answer.detach().cpu().to(torch.float64)
    want = expected.detach().cpu().to(torch.float64)
    if torch.isnan(got).any() and not torch.isnan(want).any():
        return f"{name} contains NaN (not a number): something divided 0 by 0 or overflowed."
    if torch.allclose(got, want, atol=atol, rtol=rtol, equal_nan=True):
        return None
    if want.abs().max() > 0 and got.abs().max() > 0:
        scale = (got * want).sum() / (want * want).sum()
        if torch.allclose(got, scale * want, atol=atol, rtol=rtol):
            factor_hint = _factor_hint(name, float(scale), 1.0)
            if factor_hint:
                return factor_hint
            return f"{name} points the right way but is {float(scale):.3g} times the expected size."
    worst = (got - want).abs().max().item()
    return f"{name} has the right shape and dtype, but its values differ (by up to {worst:.3g})."
