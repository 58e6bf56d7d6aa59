"""Loop Lab's helper package: the small, tested pieces the notebooks import.

One module per job:
  environment  seeds, device choice, versions, where the notebook runs
  checks       exercise checks that give a hint instead of a traceback
  errors       expect_error: show a deliberate error and carry on
  state        snapshots of model, gradients and optimizer state, and their differences
  figures      show_figure: a matplotlib figure shown with its alt text
  plots        the autograd graph, loss curves and loss surfaces, drawn with matplotlib
  widgets      explorers a learner clicks through, one phase of the loop at a time
"""

from typing import Any

from helpers.checks import check
from helpers.environment import pick_device, seed_everything
from helpers.errors import expect_error

__all__ = ["check", "expect_error", "pick_device", "seed_everything", "show_figure"]


def __getattr__(name: str) -> Any:
    """Import show_figure (matplotlib, ipywidgets) only when a notebook asks for it."""
    if name == "show_figure":
        from helpers.figures import show_figure

        return show_figure
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")
