"""Bayesian model selection: a Laplace approximation of a trained network's log evidence (marginal
likelihood), last-layer (MacKay 1992; Daxberger et al. 2021, "Laplace Redux", whose laplace-torch
library does the same with more Hessian structures; it is a test's cross-check, not a dependency:
its torchvision requirement does not load with the CPU torch, docs/search.md).

The network's last layer is treated as a generalised linear model on the features feeding it, with a
Gaussian prior N(0, 1/lambda) on its weights and the generalised Gauss-Newton (GGN) Hessian of the
softmax cross-entropy: exact (P x P) up to `FULL_LIMIT` parameters, Kronecker-factored above (KFAC,
Martens & Grosse 2015). The prior precision is the one that maximises the evidence on a log grid (as
laplace-torch's `optimize_prior_precision(method="marglik")`).

    log Z = log p(D | w) - lambda/2 |w|^2 + P/2 log lambda - 1/2 log det(H_ggn + lambda I)

The recorded metric `evidence` is log Z per training sample plus log(n_classes): nats per sample above
a uniform guess, so an untrained design counts as chance level (0), as it counts as 0% accurate.
"""
from __future__ import annotations

import math

import numpy as np

FULL_LIMIT = 1500  # last-layer parameters up to which the exact GGN is used
PRIOR_GRID = np.logspace(-4, 4, 81)


def log_evidence(log_lik: float, weights: np.ndarray, hessian_eigs: np.ndarray,
                 prior_precision: float | np.ndarray) -> np.ndarray:
    """Laplace log evidence of a GLM at `weights` (MacKay 1992, eq. 4.8 of Bishop's PRML ch. 3 for the
    linear-Gaussian case, where it is exact) from the eigenvalues of its likelihood Hessian."""
    lam = np.atleast_1d(np.asarray(prior_precision, dtype=float))
    p = weights.size
    sq = float(np.sum(weights.astype(float) ** 2))
    logdet = np.log(hessian_eigs[None, :] + lam[:, None]).sum(1)
    return log_lik - 0.5 * lam * sq + 0.5 * p * np.log(lam) - 0.5 * logdet


def softmax_ggn_eigs(features: np.ndarray, probs: np.ndarray, structure: str = "auto") -> tuple[np.ndarray, str]:
    """Eigenvalues of the GGN sum_n (diag p_n - p_n p_n^T) (x) phi_n phi_n^T of a softmax last layer
    (weights C x H, no bias): exact, or KFAC (N E[Lambda] (x) E[phi phi^T])."""
    n, h = features.shape
    c = probs.shape[1]
    if structure == "auto":
        structure = "full" if c * h <= FULL_LIMIT else "kfac"
    lam = probs[:, :, None] * (np.eye(c)[None] - probs[:, None, :])  # N x C x C, diag p - p p^T
    if structure == "full":
        # row-major (class, feature) index: H[(i,a),(j,b)] = sum_n lam[n,i,j] phi[n,a] phi[n,b]
        hess = np.einsum("nij,na,nb->iajb", lam, features, features, optimize=True).reshape(c * h, c * h)
        return np.clip(np.linalg.eigvalsh(hess), 0.0, None), "full"
    g = np.linalg.eigvalsh(lam.mean(0))
    a = np.linalg.eigvalsh(features.T @ features / n)
    return np.clip(n * np.outer(g, a).ravel(), 0.0, None), "kfac"


def classifier_evidence(features: np.ndarray, weights: np.ndarray, logits: np.ndarray, labels: np.ndarray,
                        structure: str = "auto") -> dict:
    """Last-layer Laplace evidence of a classifier: log Z at the best prior precision of `PRIOR_GRID`,
    per sample, and as the `evidence` metric (per sample + log C)."""
    features = features.astype(np.float64)
    z = logits.astype(np.float64) - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    n, c = logp.shape
    log_lik = float(logp[np.arange(n), labels].sum())
    eigs, used = softmax_ggn_eigs(features, np.exp(logp), structure)
    values = log_evidence(log_lik, weights, eigs, PRIOR_GRID)
    best = int(np.argmax(values))
    log_z = float(values[best])
    return {"log_evidence": log_z, "per_sample": log_z / n, "evidence": log_z / n + math.log(c),
            "prior_precision": float(PRIOR_GRID[best]), "structure": used, "n_params": int(weights.size)}


def network_evidence(model, x: np.ndarray, y: np.ndarray, batch_size: int = 1024) -> dict:
    """`classifier_evidence` of a trained `codesign.model.QuantNet` (or any module whose last
    Linear / QuantLinear produces the class scores) on data (x, y), in eval mode."""
    import torch
    from torch import nn
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    feats, logits = [], []

    def keep(module, inputs, output):
        t = inputs[0].value if hasattr(inputs[0], "value") else inputs[0]  # a Brevitas QuantTensor
        feats.append(t.detach().reshape(len(t), -1))

    handle = last.register_forward_hook(keep)
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                logits.append(model(torch.from_numpy(x[i:i + batch_size])))
    finally:
        handle.remove()
    with torch.no_grad():
        w = last.quant_weight().value if hasattr(last, "quant_weight") else last.weight
    phi = torch.cat(feats).double().numpy()
    out = torch.cat([o.value if hasattr(o, "value") else o for o in logits]).double().numpy()
    return classifier_evidence(phi, w.detach().double().numpy(), out, np.asarray(y))
