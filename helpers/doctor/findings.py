"""What both doctors hand back: a `Diagnosis`, a list of `Finding(code, message)`."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Finding", "Diagnosis", "report"]

ALL_CLEAR_STEP = "✅ No problems found: every call made exactly one correct SGD step."
ALL_CLEAR_LOOP = "✅ No problems found: every update matched the canonical loop, and every call came in its order."


@dataclass(frozen=True)
class Finding:
    """One problem the doctor found: a short `code` and a `message` that says how to fix it."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"❌ {self.code}: {self.message}"


class Diagnosis(list):
    """The findings for one function (a list of Finding); empty means no problem was found."""

    all_clear = ALL_CLEAR_STEP

    def __init__(self, findings: Iterable[Finding] = (), all_clear: str | None = None) -> None:
        super().__init__(findings)
        if all_clear is not None:
            self.all_clear = all_clear

    @property
    def codes(self) -> list[str]:
        """The code of each finding, in order."""
        return [finding.code for finding in self]

    def __str__(self) -> str:
        return report(self)

    def __repr__(self) -> str:
        return report(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(report(self))

    def _repr_html_(self) -> str:
        if not self:
            return f"<p>{html.escape(self.all_clear)}</p>"
        items = "".join(
            f"<li>❌ <code>{html.escape(f.code)}</code>: {_code_spans(f.message)}</li>"
            for f in self
        )
        return f"<ul>{items}</ul>"


def _code_spans(text: str) -> str:
    """Escape text for HTML and show `backticked` parts as code."""
    parts = re.split(r"`([^`]+)`", text)
    return "".join(
        f"<code>{html.escape(part)}</code>" if i % 2 else html.escape(part)
        for i, part in enumerate(parts)
    )


def report(findings: Iterable[Finding]) -> str:
    """Return the findings as text: one line per finding, or a line saying all is well."""
    if isinstance(findings, (str, bytes)) or not isinstance(findings, Iterable):
        raise TypeError(
            f"findings must be the list diagnose_step returned, not {type(findings).__name__}."
        )
    all_clear = getattr(findings, "all_clear", ALL_CLEAR_STEP)
    findings = list(findings)
    for item in findings:
        if not isinstance(item, Finding):
            raise TypeError(
                f"findings must hold Finding objects (from diagnose_step), "
                f"but it holds a {type(item).__name__}."
            )
    if not findings:
        return all_clear
    return "\n".join(str(finding) for finding in findings)
