"""Inference time per token of a model under an intervention, for the comparison table.

How it is measured: one fixed batch of ``batch`` sequences × ``length`` tokens (``length`` capped at
the model's positions), the token ids drawn with a fixed seed from the model's vocabulary — the
same ids for every model that shares a vocabulary — and, for a masked LM, its mask token in the
middle of each sequence (so neuron edits at the mask act, as they do in a benchmark). The model
runs two untimed warm-up forward passes, then ``repeats`` timed forward passes (no gradient; a GPU is
synchronised before and after each), all under the intervention's hooks (a mask applied as in
every evaluation). The figure is the median pass time divided by the batch's tokens, in
milliseconds. It measures the model's forward pass only (no tokenisation, no LM-head gathering
tricks of the benchmarks): comparable between the models of one comparison on one machine, not
across machines."""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING

import torch

from ..errors import BiasLabError
from ..forward import model_max_length
from ..interventions import InterventionSpec, intervene

if TYPE_CHECKING:
    from ..models import LoadedModel

WARM_UP = 2


def timing_batch(loaded: LoadedModel, batch: int, length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """The fixed inputs the timing runs on (see the module's docstring)."""
    length = max(1, min(length, model_max_length(loaded)))
    vocabulary = min(len(loaded.tokenizer), int(loaded.model.config.vocab_size))
    ids = torch.randint(0, vocabulary, (batch, length), generator=torch.Generator().manual_seed(seed))
    if loaded.kind == "masked" and loaded.mask_token_id is not None:
        ids[:, length // 2] = loaded.mask_token_id
    return {"input_ids": ids.to(loaded.device), "attention_mask": torch.ones_like(ids).to(loaded.device)}


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def inference_ms_per_token(loaded: LoadedModel, spec: InterventionSpec | None = None, *, batch: int = 8,
                           length: int = 64, repeats: int = 5, seed: int = 0) -> float:
    """Milliseconds per token of a forward pass under ``spec`` (see the module's docstring); NaN
    when ``repeats`` is 0 (timing switched off)."""
    if batch < 1 or length < 1 or repeats < 0:
        raise BiasLabError(f"timing needs a batch and a length of at least 1 and repeats ≥ 0, got batch {batch}, "
                           f"length {length}, repeats {repeats}")
    if repeats == 0:
        return float("nan")
    inputs = timing_batch(loaded, batch, length, seed)
    tokens = inputs["input_ids"].numel()
    seconds = []
    with loaded.lock, intervene(loaded, spec), torch.no_grad():
        for _ in range(WARM_UP):  # lazy initialisation, allocation and kernel choice are not the model's speed
            loaded.model(**inputs)
        for _ in range(repeats):
            _synchronise(loaded.device)
            started = time.perf_counter()
            loaded.model(**inputs)
            _synchronise(loaded.device)
            seconds.append(time.perf_counter() - started)
    return 1000.0 * statistics.median(seconds) / tokens
