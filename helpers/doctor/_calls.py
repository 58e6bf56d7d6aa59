"""Watching calls the doctors cannot hook: `torch.autograd.backward`/`grad` and the clipping
functions. Each is replaced for the duration of a `with` block and put back afterwards, even
when the block raises."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.utils
import torch.nn.utils.clip_grad

from helpers._util import one_thread

__all__ = ["watching", "probe_conditions"]


@contextlib.contextmanager
def watching(
    record: Callable[[str, tuple[Any, ...], dict[str, Any]], None],
    namespaces: tuple[dict[str, Any], ...] = (),
) -> Iterator[None]:
    """Within the block, call `record(name, args, kwargs)` before every backward, grad and clip.

    `namespaces` are extra module dictionaries (the learner's globals) in which a name bound to
    one of the watched functions is replaced too, so `from torch.nn.utils import clip_grad_norm_`
    is seen as well.
    """
    originals = {
        "backward": (torch.autograd, torch.autograd.backward),
        "grad": (torch.autograd, torch.autograd.grad),
        "clip_grad_norm_": (torch.nn.utils, torch.nn.utils.clip_grad_norm_),
        "clip_grad_value_": (torch.nn.utils, torch.nn.utils.clip_grad_value_),
    }
    replaced: list[tuple[Any, str, Any]] = []  # (owner, attribute, original)

    def wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def watched(*args: Any, **kwargs: Any) -> Any:
            record(name, args, kwargs)
            return original(*args, **kwargs)

        watched.__wrapped__ = original  # type: ignore[attr-defined]
        watched.__name__ = getattr(original, "__name__", name)
        return watched

    try:
        for name, (owner, original) in originals.items():
            wrapper = wrap(name, original)
            owners = [owner]
            if name.startswith("clip_"):
                owners.append(torch.nn.utils.clip_grad)
            for place in owners:
                if getattr(place, name, None) is original:
                    replaced.append((place, name, original))
                    setattr(place, name, wrapper)
            for space in namespaces:
                for key, value in list(space.items()):
                    if value is original:
                        replaced.append((space, key, original))
                        space[key] = wrapper
        yield
    finally:
        for place, key, original in reversed(replaced):
            if isinstance(place, dict):
                place[key] = original
            else:
                setattr(place, key, original)


@contextlib.contextmanager
def probe_conditions() -> Iterator[list[warnings.WarningMessage]]:
    """One thread, the caller's random state untouched, autograd on; yields the warnings caught."""
    # One thread: the probe is tiny, and threads fighting over busy cores slow BatchNorm down.
    with (
        one_thread(),
        torch.random.fork_rng(devices=[]),
        warnings.catch_warnings(record=True) as caught,
        torch.enable_grad(),
    ):
        warnings.simplefilter("always")
        yield caught
