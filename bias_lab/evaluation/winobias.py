"""WinoBias preference: the share of pairs whose pro-stereotyped sentence the model scores higher.

Pro and anti sentences differ only in the pronoun. Masked LMs score the differing tokens given the
rest (pseudo-log-likelihood of the tokens that differ); causal LMs score the whole sentence.
Reported per type (1, 2), split (dev, test) and overall; 50 means no preference."""

from __future__ import annotations

import pandas as pd
from typing import TYPE_CHECKING

from ..data.crows import CrowsPair
from ..data.winobias import WinoBiasPair
from .crows import score_pairs

if TYPE_CHECKING:
    from ..models import LoadedModel


def evaluate_winobias(loaded: LoadedModel, pairs: list[WinoBiasPair], **options) -> tuple[dict, pd.DataFrame]:
    as_pairs = [CrowsPair(p.id, p.pro, p.anti, "stereo", f"type{p.type}") for p in pairs]
    variant = "modified" if loaded.kind == "masked" else "shared"
    scored = score_pairs(loaded, as_pairs, variant=variant, **options)
    items = pd.DataFrame({"id": [p.id for p in pairs], "type": [p.type for p in pairs], "split": [p.split for p in pairs],
                          "pro": scored["sent_more"], "anti": scored["sent_less"], "score_pro": scored["score_more"],
                          "score_anti": scored["score_less"]})
    return winobias_metrics(items), items


def winobias_metrics(items: pd.DataFrame) -> dict:
    """% of pairs whose pro-stereotyped sentence scores higher (a tie is no preference for it)."""
    prefers = items["score_pro"] > items["score_anti"]

    def share(mask) -> dict:
        return {"preference": 100.0 * float(prefers[mask].mean()), "count": int(mask.sum())}

    summary = {"overall": share(pd.Series(True, index=items.index))}
    for (kind, split), group in items.groupby(["type", "split"]):
        summary[f"type{kind}-{split}"] = share(items.index.isin(group.index))
    for kind, group in items.groupby("type"):
        summary[f"type{kind}"] = share(items.index.isin(group.index))
    return summary
