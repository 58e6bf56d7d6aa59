"""Exercise checks for notebook 08 — borrowed models and freezing."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from helpers.checks import call, compare_number, expect_function

__all__ = ["head_params", "freeze", "optimizer", "bn_eval"]


def _small_resnet() -> nn.Module:
    """A ResNet-18 with 5 classes, seeded (check() keeps the learner's random streams)."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    return resnet18(weights=None, num_classes=5)


def _fine_tuning_resnet() -> nn.Module:
    """A small ResNet-18 frozen except for layer4 and the head, as in a fine-tuning run."""
    model = _small_resnet()
    model.requires_grad_(False)
    model.layer4.requires_grad_(True)
    model.fc.requires_grad_(True)
    return model


def head_params(answer: Any) -> str | None:
    """a Linear(512, 37) head has 512 × 37 weights and 37 biases."""
    if answer == 512 * 37:
        return "that counts the weights only: the head has one bias per class too."
    if answer == 512 * 1000 + 1000:
        return "that is the original 1000-class head; the new one has 37 outputs."
    return compare_number(answer, 512 * 37 + 37, name="the number of trainable parameters")


def freeze(answer: Any) -> str | None:
    """every parameter frozen except those of fc."""
    if hint := expect_function(answer, "freeze_all_but_head"):
        return hint
    model = _small_resnet()
    if hint := call(answer, model)[1]:
        return hint
    head = {id(p) for p in model.fc.parameters()}
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        return (
            "everything is frozen, the head too: unfreeze model.fc (model.fc.requires_grad_(True))."
        )
    if any(id(p) not in head for p in model.parameters() if p.requires_grad):
        others = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in head]
        return f"{len(others)} parameters outside fc still require grad (e.g. {others[0]}): freeze the whole model first."
    if not all(p.requires_grad for p in model.fc.parameters()):
        return "part of fc is frozen: both fc.weight and fc.bias should require grad."
    return None


def optimizer(answer: Any) -> str | None:
    """the optimizer holds exactly the trainable parameters."""
    if hint := expect_function(answer, "make_optimizer"):
        return hint
    model = _fine_tuning_resnet()
    optimizer, hint = call(answer, model)
    if hint:
        return hint
    if not isinstance(optimizer, torch.optim.Optimizer):
        return f"your function returned {type(optimizer).__name__}; return the optimizer, e.g. torch.optim.SGD(...)."
    held = [p for group in optimizer.param_groups for p in group["params"]]
    trainable = [p for p in model.parameters() if p.requires_grad]
    if any(not p.requires_grad for p in held):
        return "the optimizer also holds frozen parameters: pass only those with p.requires_grad."
    if {id(p) for p in held} != {id(p) for p in trainable}:
        return "the optimizer misses some trainable parameters: filter model.parameters() on requires_grad."
    if not isinstance(optimizer, torch.optim.SGD) or optimizer.param_groups[0]["lr"] != 0.01:
        return "use torch.optim.SGD with lr=0.01."
    return None


def _batchnorm_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (name, layer)
        for name, layer in model.named_modules()
        if isinstance(layer, nn.modules.batchnorm._BatchNorm)
    ]


def bn_eval(answer: Any) -> str | None:
    """train() mode for fine-tuning: every frozen BatchNorm layer in eval mode, the rest training."""
    if hint := expect_function(answer, "train_mode_for_fine_tuning"):
        return hint
    model = _fine_tuning_resnet()
    model.eval()  # as an evaluation in between would leave it
    wanted = {name: p.requires_grad for name, p in model.named_parameters()}
    if hint := call(answer, model)[1]:
        return hint
    if {name: p.requires_grad for name, p in model.named_parameters()} != wanted:
        return (
            "your function changed which parameters require grad; it should only switch modes "
            "(train() / eval()), and leave freezing as it was."
        )
    if not model.training or not model.fc.training:
        return (
            "the model (or its head, fc) is not in training mode: call model.train() first, then "
            "switch the frozen BatchNorm layers back to eval()."
        )
    norms = _batchnorm_layers(model)
    frozen = [(n, m) for n, m in norms if not any(p.requires_grad for p in m.parameters())]
    trainable = [(n, m) for n, m in norms if any(p.requires_grad for p in m.parameters())]
    still_training = [n for n, m in frozen if m.training]
    if len(still_training) == len(frozen):
        return (
            "every frozen BatchNorm layer is still in training mode, so it normalises with each "
            "batch's statistics and moves its running averages: after model.train(), call "
            ".eval() on each BatchNorm layer whose parameters do not require grad."
        )
    if still_training:
        return (
            f"{len(still_training)} frozen BatchNorm layers are still in training mode (e.g. "
            f"{still_training[0]}): visit every module with model.modules(), not only the "
            "model's direct children."
        )
    in_eval = [n for n, m in trainable if not m.training]
    if in_eval:
        return (
            f"{in_eval[0]} has trainable parameters (layer4 is not frozen), but you put it in "
            "eval mode: only BatchNorm layers whose parameters are all frozen go to eval()."
        )
    if not model.layer4.training:
        return (
            "layer4 trains, so it should be in training mode: put only the frozen BatchNorm "
            "layers in eval mode."
        )
    return None
