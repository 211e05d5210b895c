"""The IG2 gap as a benchmark: |P(d1) − P(d2)| at the mask of every prompt whose demographic words
are single tokens, averaged — the bias metric that needs no benchmark data beyond IG2 prompts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import pandas as pd

from ..errors import BiasLabError
from ..progress import CancelToken, report

if TYPE_CHECKING:
    from ..models import LoadedModel


def prepared_prompts(loaded: LoadedModel, prompts, **_) -> list:
    """The prompts tokenized for this model (prompts already prepared are kept as they are)."""
    from ..neurons.prompts import PreparedPrompt, prepare_prompts

    if prompts and all(isinstance(p, PreparedPrompt) for p in prompts):
        return list(prompts)
    prepared = prepare_prompts(loaded, prompts).prompts
    if not prepared:
        raise BiasLabError("ig2-gap: no prompt has single-token demographics for this model")
    return prepared


def evaluate_ig2_gap(loaded: LoadedModel, prompts, *, batch_size: int | None = None, progress: Callable | None = None,
                     cancel: CancelToken | None = None) -> tuple[dict, pd.DataFrame]:
    """``{"mean_gap", "prompts"}`` and one row per prompt (its probabilities and gap)."""
    from ..neurons.verification import gap_of, pair_probabilities

    prepared = prepared_prompts(loaded, prompts)
    if cancel is not None:
        cancel.check()
    probabilities = pair_probabilities(loaded, prepared, batch_size=batch_size or 64)
    gaps = gap_of(probabilities)
    report(progress, len(prepared), len(prepared))
    items = pd.DataFrame({"id": [p.prompt.id for p in prepared], "prompt": [p.text for p in prepared],
                          "d1": [p.prompt.d1 for p in prepared], "d2": [p.prompt.d2 for p in prepared],
                          "p_d1": probabilities[:, 0].tolist(), "p_d2": probabilities[:, 1].tolist(),
                          "gap": gaps.tolist()})
    return {"mean_gap": float(gaps.mean()), "prompts": len(prepared)}, items
