"""Bias neurons from IG2 scores: selection, the Union_IG baseline and the BNS intervention spec.

Selection follows Liu et al. (DESIGN §1): per prompt, neurons scoring ≥ 0.2 × the prompt's
maximum; per bag (one modifier × all templates), neurons present in ≥ p of its prompts, p starting
at 70 % and moved in 5 % steps for at most 6 rounds toward 2–5 neurons, never fewer than 3 prompts;
per JUT, neurons present in ≥ 10 % of its bags.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch

from ..errors import BiasLabError
from ..interventions import InterventionSpec, NeuronEdit
from .prompts import jut_key

NEURON_COLUMNS = ["jut", "layer", "neuron", "frequency", "bags", "mean_score"]


@dataclass(frozen=True)
class SelectionSettings:
    prompt_ratio: float = 0.2
    bag_start: float = 0.7
    bag_step: float = 0.05
    bag_rounds: int = 6
    bag_min_neurons: int = 2
    bag_max_neurons: int = 5
    bag_min_prompts: int = 3
    jut_ratio: float = 0.1

    def validate(self) -> None:
        for name in ("prompt_ratio", "bag_start", "jut_ratio"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise BiasLabError(f"{name.replace('_', '-')} {value} must be in (0, 1]")
        if not 0 < self.bag_step < 1:
            raise BiasLabError(f"bag-step {self.bag_step} must be in (0, 1)")
        if self.bag_rounds < 1 or self.bag_min_prompts < 1:
            raise BiasLabError("bag-rounds and bag-min-prompts must be at least 1")
        if not 0 <= self.bag_min_neurons <= self.bag_max_neurons:
            raise BiasLabError(f"bag neuron range {self.bag_min_neurons}–{self.bag_max_neurons} is empty")

    def to_dict(self) -> dict:
        return asdict(self)


def jut_keys(prompts: pd.DataFrame) -> pd.Series:
    """The JUT of every row of a prompt table (see :func:`jut_key`)."""
    kinds = prompts["modifier_type"].fillna("") if "modifier_type" in prompts else pd.Series("", index=prompts.index)
    return pd.Series([jut_key(kind, d1, d2) for kind, d1, d2 in zip(kinds, prompts["d1"], prompts["d2"])],
                     index=prompts.index, dtype=object)


def bag_keys(prompts: pd.DataFrame) -> pd.Series:
    return prompts["modifier"].fillna("") if "modifier" in prompts else pd.Series([""] * len(prompts))


def prompt_neurons(scores: torch.Tensor, ratio: float) -> list[np.ndarray]:
    """Per prompt, flat indices (layer × neurons + neuron) scoring ≥ ratio × that prompt's max."""
    flat = scores.reshape(scores.shape[0], -1)
    peaks = flat.max(dim=1, keepdim=True).values
    keep = (flat >= ratio * peaks) & (peaks > 0)
    return [np.flatnonzero(row.numpy()) for row in keep]


def _frequent(prompt_sets: list[np.ndarray], settings: SelectionSettings) -> np.ndarray:
    """Neurons of one bag: present in ≥ p of its prompts, p adapted toward the target count."""
    n = len(prompt_sets)
    if n == 0:
        return np.array([], dtype=np.int64)
    values, counts = np.unique(np.concatenate(prompt_sets), return_counts=True) if any(len(s) for s in prompt_sets) \
        else (np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    floor = min(settings.bag_min_prompts, n)
    share = settings.bag_start
    kept = values[:0]
    for _ in range(settings.bag_rounds):
        needed = max(floor, math.ceil(share * n - 1e-9))
        kept = values[counts >= needed]
        if len(kept) < settings.bag_min_neurons and share - settings.bag_step > 0:
            share -= settings.bag_step
        elif len(kept) > settings.bag_max_neurons and share + settings.bag_step <= 1:
            share += settings.bag_step
        else:
            break
    return kept


def select_bias_neurons(scores: torch.Tensor, prompts: pd.DataFrame, settings: SelectionSettings | None = None,
                        *, group: str = "bag") -> pd.DataFrame:
    """Bias neurons per JUT: columns jut, layer, neuron, frequency (share of bags), bags, mean_score.

    ``group="template"`` groups prompts by template instead of by bag (for the intra-JUT
    intersection statistics)."""
    settings = settings or SelectionSettings()
    settings.validate()
    if scores.dim() != 3 or scores.shape[0] != len(prompts):
        raise BiasLabError(f"scores of shape {tuple(scores.shape)} do not match {len(prompts)} prompts")
    neurons = scores.shape[2]
    per_prompt = prompt_neurons(scores.float(), settings.prompt_ratio)
    juts = jut_keys(prompts).to_numpy()
    groups = (prompts["template"] if group == "template" else bag_keys(prompts)).to_numpy()
    rows = []
    for jut in dict.fromkeys(juts):
        in_jut = np.flatnonzero(juts == jut)
        bag_sets = []
        for bag in dict.fromkeys(groups[in_jut]):
            members = in_jut[groups[in_jut] == bag]
            bag_sets.append(_frequent([per_prompt[i] for i in members], settings))
        if not bag_sets:
            continue
        values, counts = np.unique(np.concatenate(bag_sets), return_counts=True) if any(len(b) for b in bag_sets) \
            else (np.array([], dtype=np.int64), np.array([], dtype=np.int64))
        needed = max(1, math.ceil(settings.jut_ratio * len(bag_sets) - 1e-9))
        jut_scores = scores[torch.as_tensor(in_jut)].float().mean(dim=0).reshape(-1)
        for flat, count in zip(values, counts):
            if count >= needed:
                rows.append({"jut": jut, "layer": int(flat // neurons), "neuron": int(flat % neurons),
                             "frequency": count / len(bag_sets), "bags": int(count),
                             "mean_score": float(jut_scores[flat])})
    table = pd.DataFrame(rows, columns=NEURON_COLUMNS)
    return table.sort_values(["jut", "mean_score"], ascending=[True, False], ignore_index=True)


def union_ig(scores_d1: torch.Tensor, scores_d2: torch.Tensor, prompts: pd.DataFrame,
             settings: SelectionSettings | None = None) -> pd.DataFrame:
    """The Union_IG baseline: neurons of plain IG of P(d1) ∪ neurons of plain IG of P(d2)."""
    first = select_bias_neurons(scores_d1, prompts, settings).assign(source="d1")
    second = select_bias_neurons(scores_d2, prompts, settings).assign(source="d2")
    both = pd.concat([first, second], ignore_index=True)
    merged = both.groupby(["jut", "layer", "neuron"], as_index=False).agg(
        frequency=("frequency", "max"), bags=("bags", "max"), mean_score=("mean_score", "max"),
        source=("source", lambda s: "+".join(sorted(set(s)))))
    return merged.sort_values(["jut", "layer", "neuron"], ignore_index=True)


def neuron_spec(table: pd.DataFrame, scale: float = 0.0, position: str = "mask") -> InterventionSpec:
    """BNS: the selected neurons scaled (×0 suppresses, ×2 amplifies) as an intervention spec."""
    unique = table[["layer", "neuron"]].drop_duplicates().sort_values(["layer", "neuron"])
    return InterventionSpec(tuple(NeuronEdit(int(l), int(n), float(scale)) for l, n in unique.itertuples(index=False)),
                            position=position)
