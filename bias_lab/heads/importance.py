"""Michel et al. (2019) head importance: a gate ξ = 1 on every head, importance = Σ over batches of
|∂loss/∂ξ| (the gate's gradient zeroed between batches), normalised per layer (L2) and then
globally to [0, 1]; and iterative pruning of the least important heads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd
import torch

from ..errors import BiasLabError
from ..batching import length_batches, padded_inputs
from ..evaluation.mlm_loss import masked_items, masked_token_log_probs
from ..forward import frozen_parameters, head_columns, log_softmax, scaling_pre_hook
from ..interventions import HeadAblation, InterventionSpec, intervene
from ..progress import report
from .metrics import HeadMetric

if TYPE_CHECKING:
    from ..models import LoadedModel


def _gate_hooks(loaded, gates: torch.Tensor):
    size = loaded.head_size
    handles = []
    for layer in range(loaded.num_layers):
        gate = scaling_pre_hook(lambda hidden, layer=layer: head_columns(gates[layer].to(hidden.dtype), size))
        handles.append(loaded.adapter.attn_out(layer).register_forward_pre_hook(gate))
    return handles


def _losses(loaded, texts: list[str], batch_size: int | None, seed: int):
    """Yield one differentiable mean loss per batch: masked-token CE (masked LMs) or next-token CE."""
    if loaded.kind == "masked":
        for _, picked, valid in masked_token_log_probs(loaded, masked_items(loaded, texts, seed=seed).items, batch_size):
            yield -picked[valid].mean()
        return
    if loaded.kind != "causal":
        raise BiasLabError(f"head importance needs a masked or causal LM; {loaded.source!r} is {loaded.kind!r}")
    sequences = [tuple(loaded.tokenizer(t, truncation=True, max_length=128)["input_ids"]) for t in texts]
    sequences = [s for s in sequences if len(s) > 1]
    for batch in length_batches([len(s) for s in sequences], batch_size, loaded.device):
        inputs = padded_inputs(loaded, [sequences[i] for i in batch])
        log_probs = log_softmax(loaded.model(**inputs).logits[:, :-1])
        targets = inputs["input_ids"][:, 1:]
        valid = inputs["attention_mask"][:, 1:].bool()
        yield -log_probs.gather(2, targets[..., None])[..., 0][valid].mean()


def gradient_importance(loaded: LoadedModel, texts: list[str], *, pruned: list[tuple[int, int]] = (), batch_size: int | None = None,
                        seed: int = 0, normalize: bool = True) -> pd.DataFrame:
    """Table ``layer, head, importance`` (pruned heads get gate 0 and importance NaN)."""
    gates = torch.ones(loaded.num_layers, loaded.num_heads, device=loaded.device)
    for layer, head in pruned:
        gates[layer, head] = 0.0
    gates.requires_grad_(True)
    accumulated = torch.zeros_like(gates)
    with loaded.lock, frozen_parameters(loaded.model):
        handles = _gate_hooks(loaded, gates)
        try:
            for loss in _losses(loaded, texts, batch_size, seed):
                (gradient,) = torch.autograd.grad(loss, gates)
                accumulated += gradient.abs()  # a fresh gradient per batch: nothing carries over
        finally:
            for handle in handles:
                handle.remove()
    importance = accumulated.detach().double().cpu()
    pruned_mask = torch.zeros_like(importance, dtype=torch.bool)
    for layer, head in pruned:
        pruned_mask[layer, head] = True
    if normalize:
        norms = importance.norm(dim=1, keepdim=True).clamp_min(1e-20)
        importance = importance / norms
        live = importance[~pruned_mask]
        low, high = live.min(), live.max()
        importance = (importance - low) / (high - low) if high > low else torch.zeros_like(importance)
    importance[pruned_mask] = float("nan")
    layers, heads = torch.meshgrid(torch.arange(loaded.num_layers), torch.arange(loaded.num_heads), indexing="ij")
    return pd.DataFrame({"layer": layers.reshape(-1).numpy(), "head": heads.reshape(-1).numpy(),
                         "importance": importance.reshape(-1).numpy()})


def _ablation_importance(loaded, perf: HeadMetric, pruned: list[tuple[int, int]]) -> pd.DataFrame:
    """How much the performance metric worsens when each remaining head is removed as well."""
    from .ablation import ablated_value

    rows = []
    for layer in range(loaded.num_layers):
        for head in range(loaded.num_heads):
            if (layer, head) not in pruned:
                rows.append({"layer": layer, "head": head,
                             "importance": ablated_value(loaded, perf, pruned + [(layer, head)])})
    return pd.DataFrame(rows)


def iterative_pruning(loaded: LoadedModel, texts: list[str], perf: HeadMetric, bias: HeadMetric | None = None, *,
                      fraction: float = 0.1, steps: int = 5, batch_size: int | None = None, seed: int = 0,
                      scores: str = "gradient", progress: Callable | None = None, cancel=None) -> pd.DataFrame:
    """Remove the least important ``fraction`` of the heads, re-score the rest, repeat; the curve
    of performance and bias after every step (step 0 = the unpruned model). ``scores`` is
    ``gradient`` (Michel et al.) or ``ablation`` (the performance metric with the head removed)."""
    if not 0 < fraction < 1:
        raise BiasLabError(f"fraction {fraction} must be between 0 and 1")
    if scores not in ("gradient", "ablation"):
        raise BiasLabError(f"unknown importance scores {scores!r}: use 'gradient' or 'ablation'")
    total = loaded.num_layers * loaded.num_heads
    per_step = max(1, int(round(fraction * total)))
    pruned: list[tuple[int, int]] = []
    rows = []
    for step in range(steps + 1):
        if cancel is not None:
            cancel.check()
        spec = InterventionSpec(heads=tuple(HeadAblation(l, h) for l, h in pruned))
        with loaded.lock, intervene(loaded, spec):
            rows.append({"step": step, "pruned": len(pruned), "perf": perf(loaded),
                         "bias": bias(loaded) if bias is not None else np.nan, "heads": list(pruned)})
        report(progress, step, steps)
        if step == steps or len(pruned) + per_step >= total:
            break
        if scores == "gradient":
            table = gradient_importance(loaded, texts, pruned=pruned, batch_size=batch_size, seed=seed).dropna()
        else:
            with loaded.lock:
                table = _ablation_importance(loaded, perf, pruned)
        least = table.sort_values(["importance", "layer", "head"]).head(per_step)
        pruned.extend((int(r.layer), int(r.head)) for r in least.itertuples())
    return pd.DataFrame(rows)
