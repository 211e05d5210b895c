"""Bias neurons from IG2 scores: selection, suppression/amplification (BNS), the verification
experiment, the Union_IG baseline and the analyses of where bias neurons sit.

Selection follows Liu et al. (DESIGN §1): per prompt, neurons scoring ≥ 0.2 × the prompt's
maximum; per bag (one modifier × all templates), neurons present in ≥ p of its prompts, p starting
at 70 % and moved in 5 % steps for at most 6 rounds toward 2–5 neurons, never fewer than 3 prompts;
per JUT, neurons present in ≥ 10 % of its bags.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch

from .errors import BiasLabError
from .forward import mask_probabilities
from .interventions import InterventionSpec, NeuronEdit, intervene
from .progress import CancelToken, report
from .prompts import PreparedPrompt

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
    """A JUT is (modifier type, d1, d2); custom prompts without a type form one JUT per pair."""
    kind = prompts["modifier_type"].fillna("").replace("", "custom") if "modifier_type" in prompts else "custom"
    return kind + ":" + prompts["d1"] + "-" + prompts["d2"]


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


def random_neurons(loaded, count: int, generator: torch.Generator) -> pd.DataFrame:
    flat = torch.randperm(loaded.num_layers * loaded.ffn_width, generator=generator)[:count]
    return pd.DataFrame({"layer": (flat // loaded.ffn_width).tolist(), "neuron": (flat % loaded.ffn_width).tolist()})


def gaps(loaded, prompts: list[PreparedPrompt], spec: InterventionSpec | None = None, *,
         batch_size: int = 64) -> torch.Tensor:
    """|P(d1) − P(d2)| at the mask of every prompt, under ``spec``: float64 [prompts]."""
    token_ids = torch.tensor([[p.d1_id, p.d2_id] for p in prompts])
    with loaded.lock, intervene(loaded, spec):
        probabilities = mask_probabilities(loaded, [p.text for p in prompts], token_ids, batch_size=batch_size)
    return (probabilities[:, 0] - probabilities[:, 1]).abs()


def relative_change(before: torch.Tensor, after: torch.Tensor) -> float:
    """Change of the total gap in percent: 100·(Σ after − Σ before)/Σ before."""
    total = float(before.double().sum())
    return 100.0 * (float(after.double().sum()) - total) / total if total > 0 else float("nan")


def verify_neurons(loaded, prompts: list[PreparedPrompt], neurons: pd.DataFrame, *, draws: int = 5, seed: int = 0,
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


# --- analyses ---------------------------------------------------------------------------------

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
