"""Show a deliberate error without stopping the notebook: `with expect_error(RuntimeError, "..."):`.

A notebook that wants to show PyTorch refusing something runs the code inside `expect_error`.
The error is caught and printed (its type and PyTorch's own message); the block fails loudly if
nothing was raised, or something else. So Run All reaches the end in every front end, and the
notebook still proves that the error happens.
"""

from __future__ import annotations

import re
import textwrap
from types import TracebackType

from helpers._util import first_line

__all__ = ["expect_error"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_WIDTH = 92
_MAX_LINES = 12


class expect_error:  # noqa: N801 - used like a function: `with expect_error(...):`
    """Expect the block to raise `kind` with `phrase` in its message; print it and carry on."""

    def __init__(
        self,
        kind: type[BaseException] | tuple[type[BaseException], ...],
        phrase: str | tuple[str, ...] = (),
        *,
        show: bool = True,
    ) -> None:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not kinds or not all(
            isinstance(k, type) and issubclass(k, BaseException) for k in kinds
        ):
            raise TypeError(
                f"expect_error needs an exception class first, such as RuntimeError, not {kind!r}."
            )
        phrases = (phrase,) if isinstance(phrase, str) else phrase
        if not isinstance(phrases, tuple) or not all(isinstance(p, str) for p in phrases):
            raise TypeError(f"phrase must be text (or a tuple of texts), not {phrase!r}.")
        self.kinds = kinds
        self.phrases = tuple(p for p in phrases if p)
        self.show = show
        self.error: BaseException | None = None

    @property
    def message(self) -> str:
        """The caught exception's message, without terminal colour codes ('' before the block)."""
        return _ANSI.sub("", str(self.error)) if self.error is not None else ""

    def __enter__(self) -> expect_error:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        expected = " or ".join(k.__name__ for k in self.kinds)
        if exc is None:
            raise AssertionError(f"expected a {expected}, but the code ran without an error.")
        if not isinstance(exc, self.kinds):
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                return False
            raise AssertionError(
                f"expected a {expected}, but got {type(exc).__name__}: {_first_line(exc)}"
            ) from exc
        self.error = exc
        text = self.message.lower()
        if self.phrases and not any(p.lower() in text for p in self.phrases):
            wanted = " or ".join(repr(p) for p in self.phrases)
            raise AssertionError(
                f"{type(exc).__name__} was raised, but its message does not mention {wanted}: "
                f"{_first_line(exc)}"
            ) from exc
        if self.show:
            print(self.report())
        return True

    def report(self) -> str:
        """The caught error as a learner reads it: its type, then its message, wrapped."""
        if self.error is None:
            return ""
        lines: list[str] = []
        for paragraph in self.message.strip().splitlines():
            lines.extend(textwrap.wrap(paragraph.strip(), _WIDTH - 4) or [""])
        if len(lines) > _MAX_LINES:
            lines = lines[:_MAX_LINES] + [f"... ({len(lines) - _MAX_LINES} more lines)"]
        body = "\n".join("    " + line if line else "" for line in lines)
        return f"{type(self.error).__name__} (expected, caught):\n{body}"


def _first_line(error: BaseException) -> str:
    return _ANSI.sub("", first_line(error, limit=10_000)).strip() or "(no message)"
