"""Bias Neuron Suppression verified: the demographic gap under suppression (×0) / amplification
(×2) of the IG2 neurons, against the same number of random neurons (the IG2 paper's Fig. 2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd
import torch

from ..errors import BiasLabError
from ..forward import mask_probabilities
from ..interventions import InterventionSpec, intervene
from ..progress import CancelToken, report
from .prompts import PreparedPrompt
from .selection import neuron_spec

if TYPE_CHECKING:
    from ..models import LoadedModel


def random_neurons(loaded: LoadedModel, count: int, generator: torch.Generator) -> pd.DataFrame:
    flat = torch.randperm(loaded.num_layers * loaded.ffn_width, generator=generator)[:count]
    return pd.DataFrame({"layer": (flat // loaded.ffn_width).tolist(), "neuron": (flat % loaded.ffn_width).tolist()})


def pair_probabilities(loaded: LoadedModel, prompts: list[PreparedPrompt], spec: InterventionSpec | None = None, *,
                       batch_size: int = 64) -> torch.Tensor:
    """P(d1), P(d2) at the mask of every prompt, under ``spec``: float64 [prompts, 2]."""
    token_ids = torch.tensor([[p.d1_id, p.d2_id] for p in prompts])
    with loaded.lock, intervene(loaded, spec):
        return mask_probabilities(loaded, [p.text for p in prompts], token_ids, batch_size=batch_size)


def gap_of(probabilities: torch.Tensor) -> torch.Tensor:
    """|P(d1) − P(d2)| from :func:`pair_probabilities`."""
    return (probabilities[:, 0] - probabilities[:, 1]).abs()


def gaps(loaded: LoadedModel, prompts: list[PreparedPrompt], spec: InterventionSpec | None = None, *,
         batch_size: int = 64) -> torch.Tensor:
    """|P(d1) − P(d2)| at the mask of every prompt, under ``spec``: float64 [prompts]."""
    return gap_of(pair_probabilities(loaded, prompts, spec, batch_size=batch_size))


def relative_change(before: torch.Tensor, after: torch.Tensor) -> float:
    """Change of the total gap in percent: 100·(Σ after − Σ before)/Σ before."""
    total = float(before.double().sum())
    return 100.0 * (float(after.double().sum()) - total) / total if total > 0 else float("nan")


def verify_neurons(loaded: LoadedModel, prompts: list[PreparedPrompt], neurons: pd.DataFrame, *, draws: int = 5, seed: int = 0,
                   scales: dict[str, float] | None = None, batch_size: int = 64, progress: Callable | None = None,
                   cancel: CancelToken | None = None) -> pd.DataFrame:
    """The paper's Fig. 2 experiment, per JUT: relative gap change when the IG2 neurons are
    suppressed / amplified, against the same number of random neurons (``draws`` draws, mean ± sd)."""
    scales = scales or {"suppress": 0.0, "amplify": 2.0}
    if draws < 1:
        raise BiasLabError(f"draws {draws} must be at least 1")
    generator = torch.Generator().manual_seed(seed)
    juts = [prepared.prompt.jut for prepared in prompts]
    rows, tasks = [], list(dict.fromkeys(juts))
    for step, jut in enumerate(tasks):
        chosen = neurons[neurons["jut"] == jut]
        members = [p for p, key in zip(prompts, juts) if key == jut]
        if chosen.empty or not members:
            continue
        before = gaps(loaded, members, batch_size=batch_size)
        for mode, scale in scales.items():
            if cancel is not None:
                cancel.check()
            after = gaps(loaded, members, neuron_spec(chosen, scale), batch_size=batch_size)
            rows.append({"jut": jut, "mode": mode, "method": "ig2", "neurons": len(chosen), "prompts": len(members),
                         "change_pct_mean": relative_change(before, after), "change_pct_sd": 0.0, "draws": 1})
            changes = []
            for _ in range(draws):
                drawn = random_neurons(loaded, len(chosen), generator)
                changes.append(relative_change(before, gaps(loaded, members, neuron_spec(drawn, scale), batch_size=batch_size)))
            rows.append({"jut": jut, "mode": mode, "method": "random", "neurons": len(chosen), "prompts": len(members),
                         "change_pct_mean": float(np.mean(changes)),
                         "change_pct_sd": float(np.std(changes, ddof=1)) if draws > 1 else 0.0, "draws": draws})
        report(progress, step + 1, len(tasks), jut)
    return pd.DataFrame(rows, columns=["jut", "mode", "method", "neurons", "prompts", "change_pct_mean",
                                       "change_pct_sd", "draws"])
