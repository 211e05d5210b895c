"""What the app shows about masks: the heads a mask prunes, the steps pruning needs, whether a
mask fits a model (and why not), and the stored masks that fit one. The share of weights a mask
keeps is :func:`bias_lab.pruning.masks.overall_density`."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from ..errors import BiasLabError
from ..models import LoadedModel
from ..store import RunRecord, RunStore
from .masks import MaskSet


def pruned_head_count(heads: pd.DataFrame) -> int:
    """Heads a mask prunes whole, from :func:`surviving_heads` (its ``alive`` column)."""
    return int((~heads["alive"].astype(bool)).sum())


def head_status(heads: pd.DataFrame) -> pd.DataFrame:
    """:func:`surviving_heads` with a ``status`` column (kept / pruned) for a head grid."""
    return heads.assign(status=heads["alive"].astype(bool).map({True: "kept", False: "pruned"}))


def steps_to_prune(threshold: float, lr: float) -> int | None:
    """About how many Adam steps a score needs to fall from σ = 0.5 below ``threshold``: Adam moves a
    score by about the learning rate per step and σ(S) < τ needs S < −log((1 − τ)/τ). None for τ = 0
    (nothing is ever pruned: σ > 0 always)."""
    if not 0 < threshold < 1 or lr <= 0:
        return None
    return math.ceil(math.log((1 - threshold) / threshold) / lr)


def mask_misfit(masks: MaskSet, loaded: LoadedModel) -> str | None:
    """None when the mask fits the loaded model (:meth:`MaskSet.check`), else why not, in words: the
    layer count it was made for, or the check's own reason; both name the mask's model when known."""
    from ..run_labels import short_model

    try:
        masks.check(loaded)
    except BiasLabError as error:
        layers = {int(m.group(1)) for key in masks.masks if (m := re.match(r"layer(\d+)\.", key))}
        made_for = masks.metadata.get("model")
        origin = f" (a mask of {short_model(str(made_for))})" if made_for else ""
        if layers and max(layers) + 1 != loaded.num_layers:
            return f"made for {max(layers) + 1} layers, the loaded model has {loaded.num_layers}{origin}"
        return f"made for another model shape: {error}{origin}"
    return None


@dataclass(frozen=True)
class StoredMask:
    """A finished mask-training run's mask: its run, file, picker label and — when it cannot be used
    with the model — why not (``problem``)."""

    record: RunRecord
    path: Path
    label: str
    problem: str | None = None

    @property
    def fits(self) -> bool:
        return self.problem is None


def stored_masks(loaded: LoadedModel, store: RunStore | None = None, *,
                 read: Callable[[Path], MaskSet] | None = None) -> list[StoredMask]:
    """Every finished mask-training run's mask, newest first, with why it does not fit ``loaded``
    (another shape, an unreadable file). ``read`` reads a mask file (default :meth:`MaskSet.load`;
    the app passes a cached reader)."""
    from ..run_labels import describe_run
    from .train import MaskTrainingResult

    read = read or MaskSet.load
    found = []
    for record in MaskTrainingResult.finished_runs(store):
        path = MaskTrainingResult.mask_file(record.artifact_dir)
        density = record.summary.get("density")
        label = " · ".join([describe_run(record).removeprefix(f"{record.kind} · ")]
                           + ([f"{density:.1f} % kept"] if isinstance(density, (int, float)) else []) + [record.id])
        try:
            problem = mask_misfit(read(path), loaded)
        except (BiasLabError, OSError) as error:
            problem = f"unreadable: {error}"
        found.append(StoredMask(record, path, label, problem))
    return found
