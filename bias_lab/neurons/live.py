"""Live predictions for the dashboard's demos: the top-k words at the mask and the demographic
gap, before and after an intervention — one forward pass each, no attribution."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import pandas as pd
import torch

from ..errors import BiasLabError
from ..forward import head_at_positions, softmax
from ..interventions import InterventionSpec, intervene
from ..models import LoadedModel, kind_phrase
from .prompts import MASK, PreparedPrompt, Prompt, mask_count, prepare_prompts


@dataclass
class MaskPrediction:
    top: pd.DataFrame  # rank, token, probability
    p_d1: float
    p_d2: float

    @property
    def gap(self) -> float:
        return abs(self.p_d1 - self.p_d2)


def prepare_mask_prompt(loaded: LoadedModel, prompt: str, d1: str, d2: str, use: str) -> PreparedPrompt:
    """One typed prompt in the model's terms, refusing in one line what cannot work: a model without
    a mask token (``use`` names what needs one), a prompt without exactly one mask, an empty word,
    two equal words, a word that is not one token."""
    if loaded.mask_token is None:
        raise BiasLabError(f"{use} needs a masked language model; {loaded.source!r} is {kind_phrase(loaded.kind)}")
    count = mask_count(loaded, prompt)
    if count != 1:
        raise BiasLabError(f"the prompt needs exactly one {MASK} where the model fills in a word; it has "
                           f"{'none' if count == 0 else count}")
    for label, word in (("demographic 1", d1), ("demographic 2", d2)):
        if not word.strip():
            raise BiasLabError(f"{label} is empty: type a word such as 'he' or 'she'")
    if d1.strip() == d2.strip():
        raise BiasLabError(f"the two words must differ, got {d1.strip()!r} twice")
    preparation = prepare_prompts(loaded, [Prompt("typed", prompt, d1.strip(), d2.strip())])
    if not preparation.prompts:
        word = next(iter(preparation.skipped))
        raise BiasLabError(f"the word {word!r} {preparation.reasons[word]}: the gap compares two single-token words, "
                           "so choose a shorter or more common word")
    return preparation.prompts[0]


def predict_mask(loaded: LoadedModel, prompt: str, d1: str, d2: str, spec: InterventionSpec | None = None, *,
                 top_k: int = 10) -> MaskPrediction:
    """Top-k predictions at the single ``[MASK]`` of ``prompt`` and P(d1), P(d2), under ``spec``."""
    if top_k < 1:
        raise BiasLabError(f"top-k {top_k} must be at least 1")
    prepared = prepare_mask_prompt(loaded, prompt, d1, d2, "predictions at [MASK]")
    batch = loaded.tokenizer([prepared.text], return_tensors="pt").to(loaded.device)
    position = int((batch["input_ids"][0] == loaded.mask_token_id).nonzero()[0])
    mask_position = torch.tensor([position])
    # The LM head only at the mask: a fifth of a BERT-base forward saved on every slider move.
    with loaded.lock, intervene(loaded, spec), head_at_positions(loaded, lambda: mask_position), torch.inference_mode():
        probabilities = softmax(loaded.model(**batch).logits[0, 0]).double().cpu()
    values, ids = probabilities.topk(top_k)
    tokens = loaded.tokenizer.convert_ids_to_tokens(ids.tolist())
    top = pd.DataFrame({"rank": range(1, top_k + 1), "token": [t.replace("Ġ", " ").strip() for t in tokens],
                        "probability": values.numpy()})
    return MaskPrediction(top, float(probabilities[prepared.d1_id]), float(probabilities[prepared.d2_id]))


def parse_neurons(text: str, scale: float = 0.0) -> InterventionSpec:
    """'3:17, 11:2040' → neuron edits (layer:neuron) at the mask with ``scale``."""
    from ..interventions import NeuronEdit

    edits = []
    for part in [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]:
        pieces = part.split(":")
        if len(pieces) != 2 or not all(p.strip().lstrip("-").isdigit() for p in pieces):
            raise BiasLabError(f"neuron {part!r} is not layer:neuron (e.g. 11:2040)")
        edits.append(NeuronEdit(int(pieces[0]), int(pieces[1]), scale))
    return InterventionSpec(tuple(edits), position="mask")


def listed_neurons(text: str) -> int:
    """How many neurons a 'layer:neuron, …' text lists (valid or not)."""
    return len([part for part in text.replace(";", ",").split(",") if part.strip()])


def format_neurons(neurons: Iterable[tuple[int, int]]) -> str:
    """(layer, neuron) pairs → '3:17, 11:2040' (what :func:`parse_neurons` reads)."""
    return ", ".join(f"{int(layer)}:{int(neuron)}" for layer, neuron in neurons)


def random_neuron_text(loaded: LoadedModel, like: str, draw: int) -> str:
    """As many neurons as ``like`` lists (at least one), drawn at random over every FFN neuron of the
    model — the baseline a bias neuron must beat — as 'layer:neuron, …' text; ``draw`` seeds the
    draw, so draw n is the same on every run."""
    from .verification import random_neurons

    table = random_neurons(loaded, max(1, listed_neurons(like)), torch.Generator().manual_seed(int(draw)))
    return format_neurons(zip(table["layer"], table["neuron"]))


def prediction_table(before: MaskPrediction, after: MaskPrediction | None = None) -> pd.DataFrame:
    """P(d1), P(d2) and the gap before and (if given) after an intervention, at full precision:
    model, p_d1, p_d2, gap."""
    rows = [("before", before)] + ([("after", after)] if after is not None else [])
    return pd.DataFrame({"model": [name for name, _ in rows], "p_d1": [p.p_d1 for _, p in rows],
                         "p_d2": [p.p_d2 for _, p in rows], "gap": [p.gap for _, p in rows]})


__all__ = ["MASK", "MaskPrediction", "format_neurons", "listed_neurons", "parse_neurons", "predict_mask",
           "prediction_table", "random_neuron_text"]
