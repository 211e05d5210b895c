"""Quadrature rules for path integrals, with the step sizes and α points Captum defines."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import BiasLabError

METHODS = ("riemann_right", "riemann_left", "riemann_middle", "riemann_trapezoid", "gausslegendre")


def integration_points(method: str, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(alphas, weights), float64, for ∫₀¹ f(α) dα ≈ Σ_k weights[k]·f(alphas[k]).

    Riemann rules use weights 1/m (the trapezoid halves both ends) and α = k/m for the right
    rule (k = 1..m), (k−1)/m for the left, (k−½)/m for the middle and linspace(0, 1, m) for the
    trapezoid; Gauss–Legendre uses numpy's nodes and weights rescaled from [−1, 1] to [0, 1].
    """
    if method not in METHODS:
        raise BiasLabError(f"unknown integration method {method!r}: use one of {', '.join(METHODS)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise BiasLabError(f"number of steps m = {steps!r} must be an integer ≥ 1")
    m = steps
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(m)
        return torch.tensor(0.5 * (1 + nodes), dtype=torch.float64), torch.tensor(0.5 * weights, dtype=torch.float64)
    if method == "riemann_trapezoid" and m < 2:
        raise BiasLabError(f"riemann_trapezoid needs m ≥ 2 steps, got {m}")
    weights = torch.full((m,), 1.0 / m, dtype=torch.float64)
    if method == "riemann_right":
        alphas = torch.linspace(1.0 / m, 1.0, m, dtype=torch.float64)
    elif method == "riemann_left":
        alphas = torch.linspace(0.0, 1.0 - 1.0 / m, m, dtype=torch.float64)
    elif method == "riemann_middle":
        alphas = torch.linspace(1.0 / (2 * m), 1.0 - 1.0 / (2 * m), m, dtype=torch.float64)
    else:
        alphas = torch.linspace(0.0, 1.0, m, dtype=torch.float64)
        weights[0] /= 2
        weights[-1] /= 2
    return alphas, weights
