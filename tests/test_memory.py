"""helpers.memory: what the saved-tensor meter counts, and what it leaves out."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.memory import SavedTensorMeter, storage_bytes

FLOAT32 = 4  # bytes per number


def test_a_tensor_saved_by_several_nodes_is_counted_once():
    x = torch.randn(10, 3, requires_grad=True)
    with SavedTensorMeter(x) as meter:
        r = x.relu()  # relu saves its output r
        out = r * r  # mul saves r as both of its inputs
    assert meter.saves >= 3
    assert meter.storages == 1
    assert meter.now == r.nbytes == 10 * 3 * FLOAT32
    del out


def test_a_relu_output_saved_by_relu_and_the_next_linear_is_counted_once():
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    X = torch.randn(100, 3)
    with SavedTensorMeter(model, X) as meter:
        y = model(X)
    # saved: X (left out), the ReLU output (by ReLU and by the second Linear), a view of a weight
    assert meter.now == 100 * 8 * FLOAT32
    assert meter.storages == 1
    del y


def test_the_input_counts_unless_it_is_left_out():
    w = torch.randn(3, requires_grad=True)
    X = torch.randn(10, 3)
    with SavedTensorMeter() as counted:
        out_counted = X * w  # the gradient of w needs X, so X is saved
    with SavedTensorMeter(X) as left_out:
        out_left_out = X * w
    assert counted.now == X.nbytes
    assert left_out.now == 0 and left_out.saves >= 1
    del out_counted, out_left_out


def test_a_module_leaves_out_its_parameters_and_buffers():
    layer = nn.Linear(3, 2)
    X = torch.randn(5, 3, requires_grad=True)  # then the weight is saved too
    with SavedTensorMeter() as everything:
        out_everything = layer(X)
    with SavedTensorMeter(layer) as without_layer:
        out_without_layer = layer(X)
    assert everything.now == X.nbytes + layer.weight.nbytes
    assert without_layer.now == X.nbytes

    del out_everything, out_without_layer


class Scale(nn.Module):
    """Multiplies by a fixed buffer: the gradient of the input needs the buffer, so it is saved."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale", torch.full((3,), 2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def test_a_module_leaves_out_its_buffers_too():
    scale, x = Scale(), torch.randn(4, 3, requires_grad=True)
    with SavedTensorMeter(x) as counted:
        out_counted = scale(x)
    with SavedTensorMeter(x, scale) as left_out:
        out_left_out = scale(x)
    assert counted.now == scale.scale.nbytes
    assert left_out.now == 0 and left_out.saves >= 1
    del out_counted, out_left_out


def test_views_of_one_storage_count_as_that_whole_storage_once():
    w = torch.randn(3, requires_grad=True)
    X = torch.randn(10, 3)
    with SavedTensorMeter() as meter:
        outs = [chunk * w for chunk in X.chunk(2)]  # two views of X are saved
    assert meter.storages == 1
    assert meter.now == X.nbytes  # a view keeps all of its storage alive
    del outs


def test_backward_frees_what_was_held_and_the_peak_stays():
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    X, y = torch.randn(64, 8), torch.randn(64, 1)
    with SavedTensorMeter(model, X, y) as meter:
        loss = F.mse_loss(model(X), y)
        held = meter.now
        loss.backward()
    assert held == (64 * 16 + 64) * FLOAT32  # the tanh output and the predictions
    assert meter.now == 0 and meter.storages == 0
    assert meter.peak == held


def test_dropping_the_output_frees_the_graph_without_backward():
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    X = torch.randn(50, 3)
    with SavedTensorMeter(model, X) as meter:
        y = model(X)
    assert meter.now > 0  # the count goes on after the block, while the graph lives
    del y
    assert meter.now == 0


def test_the_peak_over_micro_batches_is_one_micro_batch():
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    X, y = torch.randn(64, 8), torch.randn(64, 1)
    with SavedTensorMeter(model, X, y) as meter:
        for xb, yb in zip(X.chunk(4), y.chunk(4), strict=True):
            (F.mse_loss(model(xb), yb) / 4).backward()
    assert meter.peak == (16 * 16 + 16) * FLOAT32
    assert meter.now == 0


def test_gradients_are_the_same_with_and_without_the_meter():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 1))
    X, y = torch.randn(20, 4), torch.randn(20, 1)
    F.mse_loss(model(X), y).backward()
    plain = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    with SavedTensorMeter(model, X, y):
        F.mse_loss(model(X), y).backward()
    assert all(torch.equal(a, p.grad) for a, p in zip(plain, model.parameters(), strict=True))


def test_nothing_is_saved_under_no_grad_or_after_the_block():
    model = nn.Linear(3, 1)
    X = torch.randn(5, 3, requires_grad=True)
    with SavedTensorMeter() as meter, torch.no_grad():
        model(X)
    out = model(X)  # after the block: not watched
    assert meter.saves == 0 and meter.now == 0 and meter.peak == 0
    del out


def test_the_meter_rejects_what_it_cannot_leave_out():
    with pytest.raises(TypeError, match="tensors and modules"):
        SavedTensorMeter([torch.ones(2)])  # a list, not tensors


def test_storage_bytes_counts_each_storage_once_and_skips_none():
    a = torch.zeros(10)
    assert storage_bytes([a, a[:5], a.view(2, 5)]) == 10 * FLOAT32
    assert storage_bytes([a, None, torch.zeros(3, dtype=torch.float64)]) == 10 * 4 + 3 * 8
    assert storage_bytes([]) == 0
    layer = nn.Linear(8, 16)
    assert storage_bytes(layer.parameters()) == (8 * 16 + 16) * FLOAT32


def test_the_repr_says_what_is_held():
    meter = SavedTensorMeter()
    assert repr(meter) == "SavedTensorMeter(now=0 bytes in 0 storages, peak=0 bytes)"
