"""Exercise checks: `check("03.masked_mse", answer)` prints "Correct" or a hint, and never raises.

"NN.name" is the function `name` in `helpers/exercises/nbNN.py` (a dash in the name reads as an
underscore). That module alone is imported, on notebook NN's first check: there is no registry,
and a checker module that fails to import breaks only its own notebook's checks.

To add an exercise, write one function in nbNN.py and list it in the module's `__all__`:

    def masked_mse(answer: Any) -> str | None:
        \"\"\"masked_mse averages the squared errors of the known targets only.\"\"\"

Its one parameter is `answer`; its docstring's first line is the exercise's title, shown when
the answer is right; it returns None for a right answer, else a hint (what is wrong, what to
try). It runs with the learner's random streams and grad mode saved and restored, so it may
seed freely. A checker calls a learner's function on inputs of its own, compares the result with
a reference it computes, and a wrong result with what the usual mistakes give, so that the hint
can name the mistake. `expect_function`, `call`, `raised`, `compare_tensor` and `compare_number`
give the usual hints (placeholder, not a function, an exception, shape, dtype, off by a factor).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import math
import pkgutil
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import torch

from helpers._util import first_line

__all__ = [
    "Feedback",
    "call",
    "check",
    "checkers",
    "close",
    "compare_number",
    "compare_tensor",
    "exercise_ids",
    "expect_function",
    "factor_hint",
    "grade",
    "missing",
    "raised",
    "title",
]

Checker = Callable[[Any], "str | None"]
_ID = re.compile(r"(\d\d)\.([A-Za-z_][\w-]*)")  # "07.train_one_epoch"; a dash reads as "_"


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


def checkers(module: ModuleType) -> dict[str, Checker]:
    """The exercises of a checker module: its `__all__` functions whose one parameter is `answer`."""
    found = {}
    for name in getattr(module, "__all__", ()):
        function = getattr(module, name, None)
        if inspect.isfunction(function) and list(inspect.signature(function).parameters) == [
            "answer"
        ]:
            found[name] = function
    return found


def title(checker: Checker) -> str:
    """An exercise's title: the first line of its checker's docstring."""
    return (checker.__doc__ or "").strip().split("\n")[0]


def exercise_ids() -> list[str]:
    """Every exercise id of every checker module, sorted (this imports them all: for tests)."""
    import helpers.exercises as package

    ids = []
    for info in pkgutil.iter_modules(package.__path__):
        if re.fullmatch(r"nb\d\d", info.name):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            ids += [f"{info.name[2:]}.{name}" for name in checkers(module)]
    return sorted(ids)


@contextlib.contextmanager
def _learner_state_kept() -> Iterator[None]:
    """Save torch's, Python's and NumPy's random states and the grad mode; restore them after."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]), torch.set_grad_enabled(torch.is_grad_enabled()):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _find(exercise_id: Any) -> Checker | str:
    """The checker for `exercise_id`, importing only its notebook's module; or why there is none."""
    label = str(exercise_id)[:40]
    match = _ID.fullmatch(exercise_id) if isinstance(exercise_id, str) else None
    if match is None:
        return (
            f"there is no exercise called {label!r}: an id is the notebook's number, a dot and "
            "the exercise's name, such as '03.masked_mse'. Copy it from the exercise's cell."
        )
    number, name = match[1], match[2].replace("-", "_")
    module_name = f"{__package__}.exercises.nb{number}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        return (
            f"there is no exercise called {label!r}: notebook {number} has no exercise checks. "
            "Copy the id from the exercise's cell."
        )
    found = checkers(module)
    if name not in found:
        known = ", ".join(f"{number}.{n}" for n in found) or "none"
        return (
            f"there is no exercise called {label!r}. Notebook {number}'s exercises are {known}: "
            "copy the id from the exercise's cell."
        )
    return found[name]


def grade(exercise_id: str, answer: Any) -> Feedback:
    """Check `answer` for `exercise_id` and return the Feedback; never raises."""
    label = str(exercise_id)[:40]
    try:
        checker = _find(exercise_id)
    except Exception as error:  # a broken checker module breaks only its own notebook's checks
        return Feedback(
            label,
            False,
            f"the checks of notebook {label[:2]} failed to load ({type(error).__name__}: "
            f"{first_line(error)}), so your answer was not checked. Restart the kernel and run "
            "the notebook from the top; if this message stays, report it with the notebook's name.",
        )
    if isinstance(checker, str):
        return Feedback(label, False, checker)
    hint = missing(answer)
    if hint is None:
        try:
            with _learner_state_kept():
                hint = checker(answer)
        except Exception as error:  # the learner's object misbehaved inside the checker
            hint = (
                f"checking your answer raised {type(error).__name__}: {first_line(error)}. "
                "Look at what your cell returns and compare it with what the exercise asks for."
            )
    if hint is None:
        return Feedback(exercise_id, True, title(checker))
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


def raised(what: str, error: BaseException) -> str:
    """The hint for a learner's function that raised: "what raised Kind: first line."."""
    return f"{what} raised {type(error).__name__}: {first_line(error)}."


def call(
    function: Callable[..., Any], *args: Any, what: str = "your function"
) -> tuple[Any, str | None]:
    """Call the learner's function: (its result, None), or (None, the hint naming what it raised)."""
    try:
        return function(*args), None
    except Exception as error:
        return None, raised(what, error)


def close(answer: Any, expected: torch.Tensor, *, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """True when `answer` is a tensor of `expected`'s shape and values (compared in float64)."""
    return (
        isinstance(answer, torch.Tensor)
        and answer.shape == expected.shape
        and torch.allclose(
            answer.detach().double(), expected.detach().double(), rtol=rtol, atol=atol
        )
    )


def factor_hint(name: str, value: float, expected: float) -> str | None:
    """The "off by a factor" hint when `value` is a simple multiple of `expected`, else None."""
    if expected == 0 or value == 0:
        return None
    ratio = value / expected
    if math.isclose(ratio, -1.0, rel_tol=1e-3):
        return f"{name} has the right size but the wrong sign: check the order of a subtraction."
    for factor, label in ((2.0, "2"), (0.5, "1/2")):
        if math.isclose(ratio, factor, rel_tol=1e-3):
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
    return factor_hint(name, value, expected) or (
        f"{name} is {value:.4g}, but it should be about {expected:.4g}."
    )


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
        scale = float((got * want).sum() / (want * want).sum())
        if torch.allclose(got, scale * want, atol=atol, rtol=rtol):
            return factor_hint(name, scale, 1.0) or (
                f"{name} points the right way but is {scale:.3g} times the expected size."
            )
    worst = (got - want).abs().max().item()
    return f"{name} has the right shape and dtype, but its values differ (by up to {worst:.3g})."
