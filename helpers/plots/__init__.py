"""Pictures of training, one job per module, each drawn with matplotlib (no Graphviz, no network).

  graph   draw_graph: the autograd graph behind a tensor
  curves  plot_losses, plot_loss_surface, and the colour-blind-safe PALETTE and MARKERS
  live    LiveLossPlot: a loss plot that redraws while training runs

Show a figure in a notebook with `helpers.show_figure(fig, alt="what it shows")`.
"""

from helpers.plots.curves import MARKERS, PALETTE, plot_loss_surface, plot_losses
from helpers.plots.graph import draw_graph
from helpers.plots.live import LiveLossPlot

__all__ = ["MARKERS", "PALETTE", "LiveLossPlot", "draw_graph", "plot_loss_surface", "plot_losses"]
