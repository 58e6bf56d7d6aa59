"""Notebook 08's exercise checks: right answers pass, typical mistakes get their own hint."""

from __future__ import annotations

import torch

from helpers.checks import grade


def test_head_params():
    assert grade("08.head_params", 512 * 37 + 37).ok
    assert "bias" in grade("08.head_params", 512 * 37).message
    assert "1000-class" in grade("08.head_params", 513000).message
    assert not grade("08.head_params", 11_689_512).ok


def test_freeze():
    def right(model):
        model.requires_grad_(False)
        model.fc.requires_grad_(True)

    assert grade("08.freeze", right).ok
    assert "everything is frozen" in grade("08.freeze", lambda m: m.requires_grad_(False)).message
    assert "outside fc still require grad" in grade("08.freeze", lambda m: None).message

    def half(model):
        right(model)
        model.fc.bias.requires_grad_(False)

    assert "part of fc is frozen" in grade("08.freeze", half).message
    assert (
        "raised AttributeError"
        in grade("08.freeze", lambda m: m.head.requires_grad_(False)).message
    )


def test_optimizer():
    def right(model):
        return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)

    assert grade("08.optimizer", right).ok
    assert (
        "frozen parameters"
        in grade("08.optimizer", lambda m: torch.optim.SGD(m.parameters(), lr=0.01)).message
    )
    assert (
        "misses some"
        in grade("08.optimizer", lambda m: torch.optim.SGD(m.fc.parameters(), lr=0.01)).message
    )
    assert (
        "lr=0.01"
        in grade(
            "08.optimizer",
            lambda m: torch.optim.Adam([p for p in m.parameters() if p.requires_grad]),
        ).message
    )
    assert "returned NoneType" in grade("08.optimizer", lambda m: None).message
