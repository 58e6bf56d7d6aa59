"""Notebook 08's exercise checks: right answers pass, typical mistakes get their own hint."""

from __future__ import annotations

import torch

from tests.test_checks import grade_keeping_random_state as grade


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


def _is_norm(layer):
    return isinstance(layer, torch.nn.modules.batchnorm._BatchNorm)


def _frozen(layer):
    return not any(p.requires_grad for p in layer.parameters())


def test_bn_eval():
    def right(model):
        model.train()
        for layer in model.modules():
            if _is_norm(layer) and _frozen(layer):
                layer.eval()

    assert grade("08.bn_eval", right).ok

    def frozen_modules_eval(model):  # every frozen module with parameters in eval: also right
        model.train()
        for layer in model.modules():
            if list(layer.parameters()) and _frozen(layer):
                layer.eval()

    assert grade("08.bn_eval", frozen_modules_eval).ok

    def no_eval(model):
        model.train()

    def children_only(model):
        model.train()
        for layer in model.children():
            if _is_norm(layer) and _frozen(layer):
                layer.eval()

    def all_norms(model):
        model.train()
        for layer in model.modules():
            if _is_norm(layer):
                layer.eval()

    def whole_eval_head_train(model):
        model.eval()
        model.fc.train()

    def refreezes(model):
        right(model)
        model.layer4.requires_grad_(False)

    assert "still in training mode" in grade("08.bn_eval", no_eval).message
    assert "not only the model's direct children" in grade("08.bn_eval", children_only).message
    assert "has trainable parameters" in grade("08.bn_eval", all_norms).message
    assert "not in training mode" in grade("08.bn_eval", whole_eval_head_train).message
    assert "changed which parameters require grad" in grade("08.bn_eval", refreezes).message
    assert "not in training mode" in grade("08.bn_eval", lambda m: None).message
    assert "raised AttributeError" in grade("08.bn_eval", lambda m: m.head.train()).message
    assert "itself" in grade("08.bn_eval", 3).message
