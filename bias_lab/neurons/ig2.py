"""Integrated Gap Gradients (Liu et al., ICLR 2024), two engines with identical results.

For layer l, the FFN activation vector w at the mask position (the input of the FFN output
projection) is scaled from a zero baseline, α·w, with every other position left as it is; the
attribution of neuron j is ``w_j · Σ_k step_k · ∂target(α_k·w)/∂w_j`` with the quadrature of
:mod:`.steps`. The target is ``|P(d1) − P(d2)|`` at the mask (``signed``: P(d1) − P(d2); ``d1`` /
``d2``: plain IG of one probability, for the Union_IG baseline).

``reference`` is the straightforward computation: per prompt and layer one batch of the scaled
copies through the full model and back. ``fast`` computes the same numbers with less work: all
layers of a group of prompts share one pass in which the rows of layer l join the batch at layer l
from cached hidden states (the layers below are unchanged), a group holds prompts of one length
(no padding), the LM head runs at the mask only, and the pass size follows free memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

import torch

from ..device import available_bytes, is_out_of_memory
from ..errors import BiasLabError
from ..families import linear_part
from ..forward import (expand_batch, frozen_parameters, head_at_positions, mask_positions, softmax, start_at_layer,
                       tokenize)
from ..progress import CancelToken, report
from .prompts import PreparedPrompt, Prompt
from .steps import integration_points

if TYPE_CHECKING:
    from ..models import LoadedModel

TARGETS = ("abs", "signed", "d1", "d2")
ENGINES = ("fast", "reference")


@dataclass(frozen=True)
class IG2Settings:
    steps: int = 20
    method: str = "riemann_right"
    target: str = "abs"
    engine: str = "fast"
    batch_size: int | None = None

    def validate(self) -> None:
        integration_points(self.method, self.steps)
        if self.target not in TARGETS:
            raise BiasLabError(f"unknown target {self.target!r}: use one of {', '.join(TARGETS)}")
        if self.engine not in ENGINES:
            raise BiasLabError(f"unknown engine {self.engine!r}: use one of {', '.join(ENGINES)}")
        if self.batch_size is not None and self.batch_size < 1:
            raise BiasLabError(f"batch size {self.batch_size} must be at least 1")

    def to_dict(self) -> dict:
        return {"steps": self.steps, "method": self.method, "target": self.target, "engine": self.engine}


@dataclass
class PromptAttribution:
    """IG2 of one prompt: ``scores`` [layers, neurons]; ``deltas`` [layers] is the convergence delta
    Σ_j scores[l, j] − (target(x) − target(x with layer l's mask activation zeroed))."""

    prompt: Prompt
    scores: torch.Tensor
    p_d1: float
    p_d2: float
    target_zeroed: torch.Tensor
    deltas: torch.Tensor

    @property
    def gap(self) -> float:
        return abs(self.p_d1 - self.p_d2)


def target_value(p1: torch.Tensor, p2: torch.Tensor, target: str) -> torch.Tensor:
    if target == "abs":
        return (p1 - p2).abs()
    if target == "signed":
        return p1 - p2
    return p1 if target == "d1" else p2


def _finish(prepared: PreparedPrompt, scores, p1: float, p2: float, zeroed, target: str) -> PromptAttribution:
    full = float(target_value(torch.tensor(p1, dtype=torch.float64), torch.tensor(p2, dtype=torch.float64), target))
    zeroed = zeroed.to(torch.float64)
    deltas = scores.to(torch.float64).sum(dim=1) - (full - zeroed)
    return PromptAttribution(prepared.prompt, scores.float(), p1, p2, zeroed, deltas)


# --- reference engine -------------------------------------------------------------------------

def _capture_mask_activations(loaded, batch, position: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unmodified forward: FFN activations at the mask for every layer [L, F], and the mask's
    probabilities over the vocabulary [V] (row 0 of the batch)."""
    adapter = loaded.adapter
    activations = [None] * adapter.num_layers
    handles = []
    for layer in range(adapter.num_layers):
        def grab(module, args, layer=layer):
            activations[layer] = args[0][0, position].detach().clone()
        handles.append(adapter.ffn_out(layer).register_forward_pre_hook(grab))
    try:
        with torch.no_grad():
            logits = loaded.model(**batch).logits[0, position]
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(activations), softmax(logits)


def reference_attribution(loaded: LoadedModel, prepared: PreparedPrompt, settings: IG2Settings, *,
                          pad_to: int | None = None, separate_demographics: bool = False,
                          head_at_mask_only: bool = False) -> PromptAttribution:
    """The straightforward IG2 of one prompt.

    ``pad_to`` and ``separate_demographics`` reproduce the cost pattern of the original code
    (inputs padded to a fixed length, P(d1) and P(d2) attributed in two runs and combined);
    ``head_at_mask_only`` adds one optimisation of the fast engine. They change the cost, not the
    result (the benchmark uses them to show what each step buys).
    """
    alphas, weights = integration_points(settings.method, settings.steps)
    m = len(alphas)
    tokenizer_kwargs = {"padding": "max_length", "max_length": pad_to, "truncation": True} if pad_to else {}
    encoded = loaded.tokenizer([prepared.text], return_tensors="pt", **tokenizer_kwargs)
    batch = {k: v.to(loaded.device) for k, v in encoded.items() if k in ("input_ids", "attention_mask")}
    position = int(mask_positions(loaded, batch["input_ids"])[0])
    activations, probabilities = _capture_mask_activations(loaded, batch, position)
    p1, p2 = float(probabilities[prepared.d1_id]), float(probabilities[prepared.d2_id])
    points = torch.cat([alphas, torch.zeros(1, dtype=alphas.dtype)]).to(loaded.device)
    rows = {key: value.expand(m + 1, -1) for key, value in batch.items()}
    scores = torch.zeros(loaded.num_layers, loaded.ffn_width, dtype=torch.float64)
    zeroed = torch.zeros(loaded.num_layers, dtype=torch.float64)
    objectives = ("d1", "d2") if separate_demographics else (settings.target,)

    for layer in range(loaded.num_layers):
        w = activations[layer]
        gradients, values = {}, {}
        for objective in objectives:
            scaled = (points[:, None].to(w.dtype) * w[None, :]).detach().requires_grad_(True)

            def replace(module, args, scaled=scaled):
                hidden = args[0].clone()
                hidden[:, position] = scaled.to(hidden.dtype)
                return (hidden,) + tuple(args[1:])

            handle = loaded.adapter.ffn_out(layer).register_forward_pre_hook(replace)
            try:
                if head_at_mask_only:
                    at_mask = torch.full((m + 1,), position, device=loaded.device)
                    with head_at_positions(loaded, lambda: at_mask):
                        logits = loaded.model(**rows).logits[:, 0]
                else:
                    logits = loaded.model(**rows).logits[:, position]
            finally:
                handle.remove()
            probs = softmax(logits)
            q1, q2 = probs[:, prepared.d1_id], probs[:, prepared.d2_id]
            value = target_value(q1, q2, objective)
            (gradient,) = torch.autograd.grad(value[:m].sum(), scaled)
            gradients[objective] = gradient[:m].double()
            values[objective] = (q1.detach().double(), q2.detach().double())
        if separate_demographics:
            q1, q2 = values["d1"]
            g1, g2 = gradients["d1"], gradients["d2"]
            if settings.target == "abs":
                sign = torch.sign(q1[:m] - q2[:m])[:, None]
                combined = sign * (g1 - g2)
            elif settings.target == "signed":
                combined = g1 - g2
            else:
                combined = g1 if settings.target == "d1" else g2
        else:
            combined = gradients[settings.target]
            q1, q2 = values[settings.target]
        scores[layer] = w.double().cpu() * (weights[:, None].to(combined.device) * combined).sum(dim=0).cpu()
        zeroed[layer] = float(target_value(q1[m], q2[m], settings.target))
    return _finish(prepared, scores, p1, p2, zeroed, settings.target)


# --- fast engine ------------------------------------------------------------------------------

def _bytes_per_row_layer(loaded, length: int) -> int:
    """Autograd memory of one sequence through one layer (activations kept for backward)."""
    hidden, ffn, heads = loaded.hidden_size, loaded.ffn_width, loaded.num_heads
    element = torch.finfo(loaded.dtype).bits // 8
    return length * (12 * hidden + 3 * ffn + 3 * heads * length) * element


@dataclass
class _Plan:
    prompts_per_group: int
    max_rows: int | None
    budget: int


def _layer_chunks(num_layers: int, rows_per_layer: int, per_row_layer: int, budget: int,
                  max_rows: int | None) -> list[tuple[int, int]]:
    """Split layers into consecutive chunks [a, b] whose staircase pass fits the budget."""
    chunks, b = [], num_layers - 1
    while b >= 0:
        a, cost, rows = b, 0, 0
        while a >= 0:
            add_cost = rows_per_layer * (num_layers - a) * per_row_layer
            if a < b and (cost + add_cost > budget or (max_rows is not None and rows + rows_per_layer > max_rows)):
                break
            cost += add_cost
            rows += rows_per_layer
            a -= 1
        chunks.append((a + 1, b))
        b = a
    return sorted(chunks)


_CPU_ROWS_PER_PASS = 256


class _FastEngine:
    def __init__(self, loaded, settings: IG2Settings):
        self.loaded = loaded
        self.settings = settings
        alphas, weights = integration_points(settings.method, settings.steps)
        self.alphas = alphas.to(loaded.device)
        self.zero = torch.zeros(1, dtype=alphas.dtype, device=loaded.device)
        self.weights = weights.to(loaded.device)
        self.budget = available_bytes(loaded.device)

    def _cache(self, batch, positions):
        """Unmodified pass: each layer's input hidden states, mask activations, probabilities."""
        adapter = self.loaded.adapter
        count = adapter.num_layers
        inputs, activations, handles = [None] * count, [None] * count, []
        rows = torch.arange(positions.shape[0], device=positions.device)
        for layer in range(count):
            def grab_input(module, args, kwargs, layer=layer):
                inputs[layer] = (args[0] if args else kwargs["hidden_states"]).detach()

            def grab_activation(module, args, layer=layer):
                activations[layer] = args[0][rows, positions].detach()

            handles.append(adapter.layer(layer).register_forward_pre_hook(grab_input, with_kwargs=True))
            handles.append(adapter.ffn_out(layer).register_forward_pre_hook(grab_activation))
        try:
            with torch.no_grad(), head_at_positions(self.loaded, lambda: positions):
                logits = self.loaded.model(**batch).logits[:, 0]
        finally:
            for handle in handles:
                handle.remove()
        return inputs, activations, softmax(logits)

    def _staircase(self, batch, positions, token_ids, inputs, activations, first: int, last: int,
                   points: torch.Tensor, with_gradient: bool):
        """One pass for layers first..last in which row (prompt i, layer l, point α_k) sees layer l's
        mask activation replaced by α_k·w. Rows of layer l join the batch at layer l from the cached
        hidden states, so nothing below layer l is recomputed.

        Returns per layer the target values [P, points] and, ``with_gradient``, the integral
        Σ_k weight_k · ∂target/∂activation [P, F] (weights used only then)."""
        loaded, adapter = self.loaded, self.loaded.adapter
        prompts = positions.shape[0]
        steps = len(points)
        per_layer = prompts * steps
        prompt_of_new_rows = torch.arange(prompts, device=positions.device).repeat_interleave(steps)
        new_row_positions = positions[prompt_of_new_rows]
        state = {"prompt_of_row": prompt_of_new_rows}
        leaves, offsets, handles = {}, {first: 0}, []

        def rows_for(layer):
            return inputs[layer].repeat_interleave(steps, dim=0)

        def enter_layer(module, args, kwargs, layer):
            hidden = args[0] if args else kwargs["hidden_states"]
            if first < layer <= last:
                offsets[layer] = hidden.shape[0]
                hidden = torch.cat([hidden, rows_for(layer)], dim=0)
                state["prompt_of_row"] = torch.cat([state["prompt_of_row"], prompt_of_new_rows])
            index = state["prompt_of_row"]
            args = tuple(expand_batch(a, index, prompts) for a in args[1:])
            kwargs = {k: expand_batch(v, index, prompts) for k, v in kwargs.items() if k != "hidden_states"}
            return (hidden,) + args, kwargs

        def scale_activation(module, args, output, layer):
            # The projection is affine, so adding W·(α·w − w) at the new rows' mask positions equals
            # projecting the scaled activation — and copies the narrow output instead of the
            # 4×-wider activation.
            start = offsets[layer]
            rows = torch.arange(start, start + per_layer, device=output.device)
            current = args[0][rows, new_row_positions].detach()
            correction = linear_part(module, leaves[layer].to(current.dtype) - current)
            return output.index_put((rows, new_row_positions), correction, accumulate=True)

        for layer in range(first, last + 1):
            scaled = points[None, :, None].to(activations[layer].dtype) * activations[layer][:, None, :]
            leaves[layer] = scaled.reshape(per_layer, -1).detach().requires_grad_(with_gradient)
        try:
            for layer in range(first, adapter.num_layers):
                handles.append(adapter.layer(layer).register_forward_pre_hook(
                    lambda module, args, kwargs, layer=layer: enter_layer(module, args, kwargs, layer), with_kwargs=True))
            for layer in range(first, last + 1):
                handles.append(adapter.ffn_out(layer).register_forward_hook(
                    lambda module, args, output, layer=layer: scale_activation(module, args, output, layer)))
            with torch.set_grad_enabled(with_gradient), start_at_layer(loaded, first, lambda embeddings: rows_for(first)), \
                    head_at_positions(loaded, lambda: positions[state["prompt_of_row"]]):
                logits = loaded.model(**batch).logits[:, 0]
        finally:
            for handle in handles:
                handle.remove()
        probabilities = softmax(logits)
        row_prompt = state["prompt_of_row"]
        p1 = probabilities.gather(1, token_ids[row_prompt, :1]).squeeze(1)
        p2 = probabilities.gather(1, token_ids[row_prompt, 1:]).squeeze(1)
        values = target_value(p1, p2, self.settings.target)
        layers = list(range(first, last + 1))
        gradients = torch.autograd.grad(values.sum(), [leaves[l] for l in layers]) if with_gradient else [None] * len(layers)
        results = {}
        for layer, gradient in zip(layers, gradients):
            start = offsets[layer]
            layer_values = values.detach()[start:start + per_layer].view(prompts, steps).double().cpu()
            integral = None
            if gradient is not None:
                gradient = gradient.view(prompts, steps, -1).double()
                integral = (self.weights[None, :, None] * gradient).sum(dim=1)
            results[layer] = (layer_values, integral)
        return results

    def _group(self, group: list[PreparedPrompt], max_rows: int | None, budget: int):
        loaded = self.loaded
        batch = tokenize(loaded, [p.text for p in group])
        positions = mask_positions(loaded, batch["input_ids"])
        token_ids = torch.tensor([[p.d1_id, p.d2_id] for p in group], device=loaded.device)
        inputs, activations, probabilities = self._cache(batch, positions)
        per_row_layer = _bytes_per_row_layer(loaded, batch["input_ids"].shape[1])
        chunks = _layer_chunks(loaded.num_layers, len(group) * len(self.alphas), per_row_layer, budget, max_rows)
        scores = torch.zeros(len(group), loaded.num_layers, loaded.ffn_width, dtype=torch.float64)
        zeroed = torch.zeros(len(group), loaded.num_layers, dtype=torch.float64)
        for first, last in chunks:
            integrals = self._staircase(batch, positions, token_ids, inputs, activations, first, last,
                                        self.alphas, with_gradient=True)
            for layer, (_, integral) in integrals.items():
                scores[:, layer] = activations[layer].double().cpu() * integral.cpu()
        # The target with each layer's mask activation zeroed, for the convergence delta: a
        # forward-only pass of one row per prompt and layer.
        for layer, (values, _) in self._staircase(batch, positions, token_ids, inputs, activations, 0,
                                                  loaded.num_layers - 1, self.zero, with_gradient=False).items():
            zeroed[:, layer] = values[:, 0]
        p = probabilities.gather(1, token_ids).double().cpu()
        return [_finish(prepared, scores[i], float(p[i, 0]), float(p[i, 1]), zeroed[i], self.settings.target)
                for i, prepared in enumerate(group)]

    def plan(self, lengths: list[int]) -> _Plan:
        """How many prompts share a pass: all layers of a group in one pass when memory allows.

        On a CPU a pass of ~256 sequences already keeps the cores busy, and bigger batches only
        cost cache misses (measured in bench/RESULTS.md); there, extra prompts per pass only pay
        for small models, where they save per-pass overhead."""
        longest = max(lengths)
        per_row_layer = _bytes_per_row_layer(self.loaded, longest)
        layers, steps = self.loaded.num_layers, len(self.alphas)
        full_pass = steps * per_row_layer * layers * (layers + 1) // 2
        group = max(1, min(64, self.budget // max(full_pass, 1)))
        if self.loaded.device.type == "cpu":
            group = max(1, min(group, _CPU_ROWS_PER_PASS // (steps * layers)))
        max_rows = self.settings.batch_size
        if max_rows is not None:
            group = max(1, min(group, max_rows // (steps * layers) or 1))
        return _Plan(group, max_rows, self.budget)

    @staticmethod
    def _groups(order: list[int], lengths: list[int], size: int) -> list[list[int]]:
        """Consecutive prompts of equal token length, at most ``size`` per group: no padding at all."""
        groups: list[list[int]] = []
        for index, length in zip(order, lengths):
            if groups and len(groups[-1]) < size and groups[-1][1] == length:
                groups[-1][0].append(index)
            else:
                groups.append([[index], length])
        return [members for members, _ in groups]

    def run(self, prompts: list[PreparedPrompt], progress, cancel) -> Iterator[tuple[int, PromptAttribution]]:
        token_counts = [len(self.loaded.tokenizer(p.text)["input_ids"]) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: token_counts[i])
        lengths = [token_counts[i] for i in order]
        plan = self.plan(lengths)
        done = 0
        budget, group_size = plan.budget, plan.prompts_per_group
        pending = self._groups(order, lengths, group_size)
        while pending:
            if cancel is not None:
                cancel.check()
            indices = pending.pop(0)
            try:
                results = self._group([prompts[i] for i in indices], plan.max_rows, budget)
            except (RuntimeError, torch.OutOfMemoryError) as error:
                if not is_out_of_memory(error):
                    raise
                if self.loaded.device.type == "cuda":
                    torch.cuda.empty_cache()
                tried = len(indices) * len(self.alphas)
                if len(indices) > 1:
                    half = len(indices) // 2
                    pending[:0] = [indices[:half], indices[half:]]
                    continue
                if budget > _bytes_per_row_layer(self.loaded, max(lengths)) * len(self.alphas) * self.loaded.num_layers:
                    budget //= 2
                else:
                    raise BiasLabError(
                        f"out of memory with {tried} rows per layer (1 prompt × {len(self.alphas)} steps): "
                        "use fewer steps or a device with more memory"
                    ) from None
                pending.insert(0, indices)
                continue
            for index, result in zip(indices, results):
                yield index, result
            done += len(indices)
            report(progress, done, len(prompts), f"{len(indices)} prompts/pass")


def attribute_ig2(loaded: LoadedModel, prompts: list[PreparedPrompt], settings: IG2Settings | None = None, *,
                  progress: Callable | None = None, cancel: CancelToken | None = None) -> list[PromptAttribution]:
    """IG2 of every prompt, in input order. See :func:`iter_ig2` for the streaming form."""
    results: list[PromptAttribution | None] = [None] * len(prompts)
    for index, result in iter_ig2(loaded, prompts, settings, progress=progress, cancel=cancel):
        results[index] = result
    return results


def iter_ig2(loaded: LoadedModel, prompts: list[PreparedPrompt], settings: IG2Settings | None = None, *,
             progress: Callable | None = None, cancel: CancelToken | None = None
             ) -> Iterator[tuple[int, PromptAttribution]]:
    """Yield (index in ``prompts``, attribution) as prompts finish (the fast engine reorders them)."""
    settings = settings or IG2Settings()
    settings.validate()
    if loaded.kind != "masked" or loaded.mask_token_id is None:
        raise BiasLabError(f"IG2 needs a masked language model; {loaded.source!r} is loaded as {loaded.kind!r}")
    if not prompts:
        return
    with loaded.lock, frozen_parameters(loaded.model):
        if settings.engine == "reference":
            for index, prepared in enumerate(prompts):
                if cancel is not None:
                    cancel.check()
                yield index, reference_attribution(loaded, prepared, settings)
                report(progress, index + 1, len(prompts))
        else:
            yield from _FastEngine(loaded, settings).run(prompts, progress, cancel)
