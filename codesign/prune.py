"""Unstructured weight pruning during training: magnitude or Optimal Brain Damage, on a schedule.

Each conv/dense layer keeps its own mask; the weights it removes are set to zero after every optimizer
step, so the trained state dict holds real zeros (no reparametrisation): a zero weight quantizes to the
integer 0, which the constant-weight hardware (hls4ml at reuse factor 1, da4ml) does not build.

Scores: `magnitude` |w|; `obd` the saliency 0.5 * H_ii * w_i^2 of Optimal Brain Damage (LeCun, Denker,
Solla 1990), with the Hessian diagonal approximated by the empirical Fisher diagonal (mean squared
mini-batch gradient, as in Theis et al. 2018, "Faster gaze prediction with dense networks and Fisher
pruning"). The lowest-scoring fraction of each layer goes, through torch.nn.utils.prune's L1Unstructured
mask rule applied to the scores.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from codesign.config import PruneConfig, TrainingConfig


def prunable_layers(model: nn.Module) -> list[nn.Module]:
    """The conv/dense layers whose weights are pruned (Brevitas' quantized layers subclass these)."""
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def weight_sparsity(model: nn.Module) -> float:
    """Fraction of exactly-zero weights over all conv/dense layers."""
    weights = [m.weight.detach() for m in prunable_layers(model)]
    total = sum(w.numel() for w in weights)
    return sum(int((w == 0).sum()) for w in weights) / max(1, total)


def obd_saliency(weight: torch.Tensor, hessian_diag: torch.Tensor) -> torch.Tensor:
    """Optimal Brain Damage saliency of each weight: 0.5 * H_ii * w_i^2 (LeCun et al. 1990, eq. 7)."""
    return 0.5 * hessian_diag * weight.detach() ** 2


def fisher_diagonal(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                    loss_fn: Callable = nn.functional.cross_entropy) -> list[torch.Tensor]:
    """Per prunable layer, the mean over `batches` of the squared gradient of the loss w.r.t. its
    weights: the empirical Fisher diagonal, OBD's stand-in for the Hessian diagonal."""
    layers = prunable_layers(model)
    acc = [torch.zeros_like(m.weight) for m in layers]
    was_training, n = model.training, 0
    model.eval()  # batch-norm statistics stay as they are
    for x, y in batches:
        model.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        for a, m in zip(acc, layers):
            if m.weight.grad is not None:
                a += m.weight.grad.detach() ** 2
        n += 1
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    if n == 0:
        raise ValueError("the Fisher diagonal needs at least one batch")
    return [a / n for a in acc]


def layer_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Mask (1 keep, 0 prune) removing the `sparsity` fraction of entries with the lowest score."""
    rule = torch_prune.L1Unstructured(amount=float(sparsity))
    return rule.compute_mask(scores.detach(), default_mask=torch.ones_like(scores))


def scheduled_sparsity(prune: PruneConfig, target: float, epochs: int, epoch: int) -> float:
    """The sparsity in force during 0-based `epoch`: 0 before `start`; `oneshot` the target from then;
    `gradual` Zhu & Gupta's (2017) cubic ramp s_t = s_f (1 - (1 - p)^3), p reaching 1 at `end`. The last epoch is
    always at the full target, so a short training still ends at the asked sparsity."""
    first, last = pruning_window(prune, epochs)
    if epoch < first:
        return 0.0
    if epoch >= last:
        return target
    p = (epoch - first + 1) / (last - first + 1)
    return target * (1.0 - (1.0 - p) ** 3)


def pruning_window(prune: PruneConfig, epochs: int) -> tuple[int, int]:
    """(first epoch pruned, first epoch at the full sparsity), 0-based, both <= epochs - 1."""
    first = min(int(round(prune.start * epochs)), epochs - 1)
    if prune.schedule == "oneshot":
        return first, first
    return first, min(max(int(round(prune.end * epochs)), first + 1), epochs - 1)


class Pruner:
    """Keeps the masks of one training run: `before_epoch` recomputes them as the schedule asks,
    `apply` zeroes the pruned weights (after every optimizer step)."""

    def __init__(self, prune: PruneConfig, sparsity: float, epochs: int):
        self.prune, self.sparsity, self.epochs = prune, float(sparsity), epochs
        self.masks: list[torch.Tensor] | None = None
        self.current = 0.0

    def full(self, epoch: int) -> bool:
        """Whether 0-based `epoch` trains at the target sparsity."""
        return epoch >= pruning_window(self.prune, self.epochs)[1]

    def before_epoch(self, model: nn.Module, epoch: int, batches: Callable[[], Iterable]) -> None:
        s = scheduled_sparsity(self.prune, self.sparsity, self.epochs, epoch)
        if s <= 0 or (self.masks is not None and s == self.current):
            return
        layers = prunable_layers(model)
        if self.prune.method == "obd":
            scores = [obd_saliency(m.weight, h) for m, h in zip(layers, fisher_diagonal(model, batches()))]
        else:
            scores = [m.weight.detach().abs() for m in layers]
        if self.masks is not None:  # a pruned weight stays pruned
            scores = [torch.where(mask > 0, sc, torch.zeros_like(sc)) for sc, mask in zip(scores, self.masks)]
        self.masks = [layer_mask(sc, s) for sc in scores]
        self.current = s
        self.apply(model)

    @torch.no_grad()
    def apply(self, model: nn.Module) -> None:
        if self.masks is None:
            return
        for m, mask in zip(prunable_layers(model), self.masks):
            m.weight.mul_(mask)


def make_pruner(cfg: TrainingConfig, sparsity: float | None) -> Pruner | None:
    """The pruner of a training run, or None without pruning. `sparsity` is the trial's sampled value
    (parameter `prune_sparsity`); None takes the config's single value."""
    if cfg.prune is None:
        return None
    if sparsity is None:
        if isinstance(cfg.prune.sparsity, list):
            raise ValueError("training.prune.sparsity is a list: the trial must give its sampled prune_sparsity")
        sparsity = cfg.prune.sparsity
    if not 0 <= sparsity < 1 or math.isnan(sparsity):
        raise ValueError(f"sparsity {sparsity} not in [0, 1)")
    return Pruner(cfg.prune, sparsity, cfg.epochs) if sparsity > 0 else None


def trial_sparsity(cfg: TrainingConfig, params: dict) -> float | None:
    """The sparsity a trial trains at: its sampled `prune_sparsity`, the config's value, or None."""
    if cfg.prune is None:
        return None
    if isinstance(cfg.prune.sparsity, list):
        if "prune_sparsity" not in params:
            raise ValueError("training.prune.sparsity is searched but the trial has no prune_sparsity")
        return float(params["prune_sparsity"])
    return float(cfg.prune.sparsity)
