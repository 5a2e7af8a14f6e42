"""Quantization-aware training: Adam, early stopping on validation accuracy, seeded and single-threaded."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from codesign.config import TrainingConfig
from codesign.data import Dataset


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainResult:
    val_accuracy: float  # best validation accuracy (the weights kept)
    test_accuracy: float
    epochs_run: int
    best_epoch: int
    train_s: float
    history: tuple[tuple[float, float], ...]  # (train loss, val accuracy) per epoch
    stopped_early: bool
    weight_sparsity: float | None = None  # fraction of zero conv/dense weights, when pruned


def set_determinism(seed: int, threads: int = 1) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


@torch.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        logits = model(torch.from_numpy(x[i:i + batch_size]))
        correct += int((logits.argmax(1).numpy() == y[i:i + batch_size]).sum())
    return correct / max(1, len(x))


def train(model: nn.Module, data: Dataset, cfg: TrainingConfig, *, seed: int = 0,
          on_epoch: Callable[[int, float, float], None] | None = None, sparsity: float | None = None) -> TrainResult:
    """Train in place; `on_epoch(epoch, loss, val_accuracy)` is called after every epoch
    (the search reports it to Ray Tune, whose ASHA scheduler may stop the trial there). With
    `cfg.prune`, weights are pruned to `sparsity` (or the config's value; `codesign.prune`), and the
    weights kept are the best-validation ones among the epochs at the full sparsity."""
    from codesign.prune import make_pruner, weight_sparsity
    pruner = make_pruner(cfg, sparsity)
    set_determinism(seed)
    start = time.perf_counter()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    loss_fn = nn.CrossEntropyLoss()
    x_train, y_train = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    gen = torch.Generator().manual_seed(seed)
    best_acc, best_epoch, best_state, history = -1.0, 0, None, []
    epoch = 0
    full_from = 1 if pruner is None else None  # first epoch trained at the full sparsity
    for epoch in range(1, cfg.epochs + 1):
        if pruner is not None:
            pruner.before_epoch(model, epoch - 1, lambda: _fisher_batches(x_train, y_train, cfg.batch_size, seed))
            if full_from is None and pruner.full(epoch - 1):
                full_from = epoch
        model.train()
        perm = torch.randperm(len(x_train), generator=gen)
        total, n = 0.0, 0
        for i in range(0, len(perm), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            if len(idx) < 2:  # batch norm needs two samples
                continue
            opt.zero_grad()
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            if not math.isfinite(loss.item()):
                raise TrainingDiverged(f"loss became {loss.item()} at epoch {epoch}")
            loss.backward()
            opt.step()
            if pruner is not None:
                pruner.apply(model)
            total += loss.item() * len(idx)
            n += len(idx)
        sched.step()
        val_acc = accuracy(model, data.x_val, data.y_val)
        history.append((total / max(1, n), val_acc))
        if full_from is not None and val_acc > best_acc:
            best_acc, best_epoch = val_acc, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if on_epoch is not None:
            on_epoch(epoch, total / max(1, n), val_acc)
        if full_from is not None and epoch - max(best_epoch, full_from - 1) >= cfg.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    test_acc = accuracy(model, data.x_test, data.y_test)
    return TrainResult(best_acc, test_acc, epoch, best_epoch, time.perf_counter() - start, tuple(history),
                       epoch < cfg.epochs, None if pruner is None else weight_sparsity(model))


def _fisher_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int, n_batches: int = 8):
    """A fixed sample of training mini-batches for OBD's Fisher diagonal."""
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed + 1))[:batch_size * n_batches]
    return [(x[idx[i:i + batch_size]], y[idx[i:i + batch_size]]) for i in range(0, len(idx), batch_size)]
