"""Where bias neurons sit: per layer, shallow vs deep (the migration view across models), per
demographic dimension, and how much JUTs and templates share them (the IG2 paper's Table 6); the
top neurons and completeness deltas of an IG2 run, and the overlap of two selections."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..errors import BiasLabError
from .selection import SelectionSettings, _frequent, jut_keys, prompt_neurons, select_bias_neurons


def neurons_per_layer(table: pd.DataFrame, num_layers: int) -> pd.DataFrame:
    """Distinct bias neurons per layer (all JUTs of the table together)."""
    distinct = table[["layer", "neuron"]].drop_duplicates()
    counts = distinct["layer"].value_counts().reindex(range(num_layers), fill_value=0)
    return pd.DataFrame({"layer": range(num_layers), "count": counts.to_numpy()})


def shallow_deep_edge(num_layers: int, edge: int | None = None) -> int:
    """Layers counted as shallowest and as deepest: a quarter of the model by default (3 of BERT-base's
    12, as in the IG2 paper), so the two ends never overlap, not even on a tiny model."""
    if num_layers < 2:
        raise BiasLabError(f"telling shallow from deep layers needs at least 2 layers, the model has {num_layers}")
    edge = edge if edge is not None else max(1, num_layers // 4)
    if not 1 <= edge <= num_layers // 2:
        raise BiasLabError(f"edge {edge} on a {num_layers}-layer model: shallowest and deepest layers must not overlap, "
                           f"use 1–{num_layers // 2}")
    return edge


def compare_layer_distributions(tables: dict[str, pd.DataFrame], num_layers: int, *,
                                edge: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-layer counts of several models or runs (the migration histogram) and, per model, the
    share of its bias neurons in the shallowest and the deepest ``edge`` layers (default: a quarter)."""
    edge = shallow_deep_edge(num_layers, edge)
    frames, summary = [], []
    for name, table in tables.items():
        per_layer = neurons_per_layer(table, num_layers).assign(model=name)
        total = per_layer["count"].sum()
        per_layer["share"] = per_layer["count"] / total if total else 0.0
        frames.append(per_layer)
        summary.append({"model": name, "neurons": int(total),
                        "shallow_share": float(per_layer["share"].iloc[:edge].sum()),
                        "deep_share": float(per_layer["share"].iloc[-edge:].sum())})
    return pd.concat(frames, ignore_index=True), pd.DataFrame(summary)


def _pairwise(sets: list[set]) -> tuple[float, float]:
    pairs = list(itertools.combinations(sets, 2))
    if not pairs:
        return float("nan"), float("nan")
    sizes = [len(a & b) for a, b in pairs]
    jaccards = [len(a & b) / len(a | b) if a | b else 0.0 for a, b in pairs]
    return float(np.mean(sizes)), float(np.mean(jaccards))


def intersection_statistics(scores: torch.Tensor, prompts: pd.DataFrame,
                            settings: SelectionSettings | None = None) -> pd.DataFrame:
    """Paper Table 6: Avg. Intra = mean pairwise intersection of the neuron sets that one JUT's
    templates select (each template's prompts across modifiers, under the bag rule); Avg. Inter =
    mean pairwise intersection of different JUTs' bias neurons. Jaccard indices alongside."""
    settings = settings or SelectionSettings()
    per_prompt = prompt_neurons(scores.float(), settings.prompt_ratio)
    juts = jut_keys(prompts).to_numpy()
    templates = prompts["template"].to_numpy()
    intra_sizes, intra_jaccards = [], []
    for jut in dict.fromkeys(juts):
        in_jut = np.flatnonzero(juts == jut)
        sets = [set(_frequent([per_prompt[i] for i in in_jut[templates[in_jut] == t]], settings).tolist())
                for t in dict.fromkeys(templates[in_jut])]
        size, jaccard = _pairwise(sets)
        intra_sizes.append(size)
        intra_jaccards.append(jaccard)
    per_jut = select_bias_neurons(scores, prompts, settings)
    jut_sets = [{(r.layer, r.neuron) for r in group.itertuples()} for _, group in per_jut.groupby("jut")]
    inter_size, inter_jaccard = _pairwise(jut_sets)

    def mean(values):
        finite = [v for v in values if not math.isnan(v)]
        return float(np.mean(finite)) if finite else float("nan")

    return pd.DataFrame([
        {"statistic": "avg_intra", "mean_intersection": mean(intra_sizes), "mean_jaccard": mean(intra_jaccards)},
        {"statistic": "avg_inter", "mean_intersection": inter_size, "mean_jaccard": inter_jaccard},
    ])


def neurons_per_dimension(table: pd.DataFrame, prompts: pd.DataFrame) -> pd.DataFrame:
    """Average number of bias neurons of a JUT, per demographic dimension."""
    dimension_of = dict(zip(jut_keys(prompts), prompts["dimension"].fillna("").replace("", "custom")))
    counts = table.groupby("jut").size()
    frame = pd.DataFrame({"jut": counts.index, "neurons": counts.to_numpy()})
    frame["dimension"] = frame["jut"].map(dimension_of)
    return frame.groupby("dimension", as_index=False).agg(juts=("jut", "count"), mean_neurons=("neurons", "mean"))


def mean_scores(scores: torch.Tensor | np.ndarray) -> np.ndarray:
    """Mean attribution per neuron over the prompts: [prompts, layers, neurons] → [layers, neurons]."""
    values = scores.detach().float().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
    if values.ndim != 3:
        raise BiasLabError(f"attribution scores must be [prompts, layers, neurons], got shape {tuple(values.shape)}")
    return values.mean(axis=0)


def top_neurons(scores: torch.Tensor | np.ndarray, count: int = 20) -> pd.DataFrame:
    """The ``count`` neurons with the highest mean score over the prompts, highest first (ties: the
    lower layer and neuron first): layer, neuron, mean_score."""
    mean = mean_scores(scores)
    flat = mean.reshape(-1)
    order = np.argsort(-flat, kind="stable")[:max(0, count)]
    return pd.DataFrame({"layer": order // mean.shape[1], "neuron": order % mean.shape[1], "mean_score": flat[order]})


def convergence_deltas(prompts: pd.DataFrame) -> pd.DataFrame:
    """Per layer, the mean |completeness delta| over the prompts of an IG2 run (its ``delta_l<layer>``
    columns: Σ scores − (gap − gap with the layer zeroed)): layer, mean_abs_delta."""
    columns = sorted(((int(match.group(1)), column) for column in prompts.columns
                      if (match := re.fullmatch(r"delta_l(\d+)", str(column)))), key=lambda pair: pair[0])
    return pd.DataFrame({"layer": [layer for layer, _ in columns],
                         "mean_abs_delta": [float(prompts[column].abs().mean()) for _, column in columns]})


@dataclass(frozen=True)
class NeuronOverlap:
    """How many bias neurons two selections share."""

    shared: int
    union: int
    first: int
    second: int

    @property
    def jaccard(self) -> float | None:
        """|A ∩ B| / |A ∪ B|; None when neither selection has a neuron."""
        return self.shared / self.union if self.union else None


def neuron_overlap(first: pd.DataFrame, second: pd.DataFrame) -> NeuronOverlap:
    """The overlap of two bias-neuron tables as sets of (layer, neuron) (all JUTs together)."""
    sets = [set(zip(table["layer"].astype(int), table["neuron"].astype(int))) for table in (first, second)]
    return NeuronOverlap(len(sets[0] & sets[1]), len(sets[0] | sets[1]), len(sets[0]), len(sets[1]))
