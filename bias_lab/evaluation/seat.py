"""SEAT (May et al. 2019): WEAT's effect size and permutation test on sentence embeddings.

s(w, A, B) = mean_a cos(w, a) − mean_b cos(w, b); effect size = (mean_X s − mean_Y s) / std_{X∪Y} s
(ddof 1). p-value: the share of equal-size partitions (X_i, Y_i) of X ∪ Y with Σ_{X_i} s ≥ Σ_X s —
every partition when there are at most ``samples`` of them, otherwise ``samples − 1`` random ones
plus the observed one. Sentence embedding: mean of the hidden states over the sentence's tokens
(``mean``), the first token (``cls``) or, for causal LMs, the last token (``last``).
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from ..data.seat import SeatTest
from ..errors import BiasLabError
from ..forward import tokenize

if TYPE_CHECKING:
    from ..models import LoadedModel

POOLINGS = ("mean", "cls", "last")


def embed(loaded: LoadedModel, sentences: list[str], *, pooling: str = "mean", batch_size: int = 32,
          all_layers: bool = False) -> np.ndarray:
    """Sentence embeddings [sentences, hidden] (``all_layers``: [layers + 1, sentences, hidden])."""
    if pooling not in POOLINGS:
        raise BiasLabError(f"unknown pooling {pooling!r}: use one of {', '.join(POOLINGS)}")
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    chunks = []
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = tokenize(loaded, [sentences[i] for i in rows])
            outputs = loaded.adapter.base(**batch, output_hidden_states=True)
            states = torch.stack(outputs.hidden_states) if all_layers else outputs.last_hidden_state[None]
            states = states.float()
            mask = batch["attention_mask"].to(states.dtype)
            if pooling == "mean":
                pooled = (states * mask[None, :, :, None]).sum(dim=2) / mask.sum(dim=1)[None, :, None]
            elif pooling == "cls":
                pooled = states[:, :, 0]
            else:
                # The last attended position, whichever side the tokenizer pads on.
                attended = batch["attention_mask"].to(states.device)
                last = (attended * torch.arange(attended.shape[1], device=attended.device)).argmax(dim=1)
                pooled = states[:, torch.arange(states.shape[1]), last]
            chunks.append((rows, pooled.double().cpu().numpy()))
    result = np.empty((chunks[0][1].shape[0], len(sentences), chunks[0][1].shape[2]))
    for rows, pooled in chunks:
        result[:, rows] = pooled
    return result if all_layers else result[0]


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def association(words: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """s(w, A, B) for every row w."""
    words, a, b = _unit(words), _unit(a), _unit(b)
    return (words @ a.T).mean(axis=1) - (words @ b.T).mean(axis=1)


def effect_size(s_x: np.ndarray, s_y: np.ndarray) -> float:
    return float((s_x.mean() - s_y.mean()) / np.concatenate([s_x, s_y]).std(ddof=1))


def p_value(s_x: np.ndarray, s_y: np.ndarray, *, samples: int = 100_000, seed: int = 0) -> tuple[float, bool]:
    """One-sided permutation p-value and whether it was exact."""
    values = np.concatenate([s_x, s_y])
    size, observed = len(s_x), float(s_x.sum())
    tolerance = 1e-12 * max(1.0, abs(observed))
    partitions = math.comb(len(values), size)
    if partitions <= samples:
        at_least = total = 0
        for chosen in itertools.combinations(range(len(values)), size):
            total += 1
            at_least += values[list(chosen)].sum() >= observed - tolerance
        return at_least / total, True
    generator = np.random.default_rng(seed)
    at_least = 1  # the observed partition itself
    remaining = samples - 1
    while remaining:
        chunk = min(remaining, 10_000)
        shuffled = generator.permuted(np.tile(np.arange(len(values)), (chunk, 1)), axis=1)[:, :size]
        at_least += int((values[shuffled].sum(axis=1) >= observed - tolerance).sum())
        remaining -= chunk
    return at_least / samples, False


def seat_test(vectors: dict[str, np.ndarray], *, samples: int = 100_000, seed: int = 0) -> dict:
    s_x = association(vectors["targ1"], vectors["attr1"], vectors["attr2"])
    s_y = association(vectors["targ2"], vectors["attr1"], vectors["attr2"])
    p, exact = p_value(s_x, s_y, samples=samples, seed=seed)
    return {"effect_size": effect_size(s_x, s_y), "p_value": p, "exact": exact,
            "n_target": int(len(s_x) + len(s_y)), "n_attribute": int(len(vectors["attr1"]) + len(vectors["attr2"]))}


def evaluate_seat(loaded: LoadedModel, tests: list[SeatTest], *, pooling: str | None = None, samples: int = 100_000,
                  seed: int = 0, per_layer: bool = False, batch_size: int | None = None,
                  progress=None, cancel=None) -> tuple[dict, pd.DataFrame]:
    pooling = pooling or ("last" if loaded.kind == "causal" else "mean")
    summary, rows = {"tests": {}, "pooling": pooling}, []
    for number, test in enumerate(tests):
        if cancel is not None:
            cancel.check()
        sentences = {key: list(getattr(test, key)) for key in ("targ1", "targ2", "attr1", "attr2")}
        flat = [s for key in sentences for s in sentences[key]]
        embedded = embed(loaded, flat, pooling=pooling, batch_size=batch_size or 32, all_layers=per_layer)
        layers = embedded if per_layer else embedded[None]
        for layer_index, layer in enumerate(layers):
            vectors, start = {}, 0
            for key, group in sentences.items():
                vectors[key] = layer[start:start + len(group)]
                start += len(group)
            result = seat_test(vectors, samples=samples, seed=seed)
            layer_label = layer_index if per_layer else len(layers) - 1
            rows.append({"test": test.name, "layer": layer_label if per_layer else "last", **result})
        summary["tests"][test.name] = {k: rows[-1][k] for k in ("effect_size", "p_value", "n_target", "n_attribute")}
        if per_layer:
            summary["tests"][test.name]["per_layer_effect_size"] = [r["effect_size"] for r in rows[-len(layers):]]
        if progress is not None:
            progress(number + 1, len(tests), test.name)
    effects = [abs(t["effect_size"]) for t in summary["tests"].values()]
    summary["mean_abs_effect_size"] = float(np.mean(effects)) if effects else float("nan")
    return summary, pd.DataFrame(rows)
