"""Masked-LM loss: cross-entropy of 15 % of the tokens masked at random (fixed seed), one forward
pass per text, pooled over all masked tokens — the performance metric of head scoring on a masked
LM. The masked positions are drawn once (:func:`masked_items`), so repeated scoring under
different ablations compares like with like."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

import pandas as pd
import torch

from ..batching import length_batches, padded_inputs
from ..errors import BiasLabError
from ..forward import head_at_positions, log_softmax
from ..progress import CancelToken, report

if TYPE_CHECKING:
    from ..models import LoadedModel


@dataclass(frozen=True)
class MaskedText:
    input_ids: tuple[int, ...]   # with the chosen tokens replaced by the mask token
    positions: list[int]
    targets: list[int]           # the original tokens at those positions
    text: str


@dataclass(frozen=True)
class MaskedTexts:
    items: list[MaskedText]
    seed: int
    rate: float

    def __len__(self) -> int:
        return len(self.items)


def masked_items(loaded: LoadedModel, texts, *, seed: int = 0, rate: float = 0.15, max_length: int = 128, **_) -> MaskedTexts:
    """Per text, ``rate`` of its tokens masked at random (at least one); already masked texts are
    returned as they are."""
    if isinstance(texts, MaskedTexts):
        return texts
    if loaded.kind != "masked":
        raise BiasLabError(f"mlm-loss needs a masked LM; {loaded.source!r} is {loaded.kind!r}: use --perf perplexity")
    tokenizer = loaded.tokenizer
    special = set(tokenizer.all_special_ids)
    generator = torch.Generator().manual_seed(seed)
    items = []
    for text in texts:
        ids = tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
        candidates = [i for i, t in enumerate(ids) if t not in special]
        if not candidates:
            continue
        count = max(1, round(rate * len(candidates)))
        chosen = sorted(candidates[j] for j in torch.randperm(len(candidates), generator=generator)[:count].tolist())
        masked = list(ids)
        for position in chosen:
            masked[position] = loaded.mask_token_id
        items.append(MaskedText(tuple(masked), chosen, [ids[p] for p in chosen], text))
    if not items:
        raise BiasLabError("mlm-loss: the texts have no tokens to mask")
    return MaskedTexts(items, seed, rate)


def masked_token_log_probs(loaded: LoadedModel, items: list[MaskedText], batch_size: int | None = None
                           ) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Yield, per batch, the item indices, the log-probabilities of their masked tokens [rows, k]
    and the validity mask (inside autograd if the caller enables it)."""
    for batch in length_batches([len(item.input_ids) for item in items], batch_size, loaded.device):
        inputs = padded_inputs(loaded, [items[i].input_ids for i in batch])
        width = max(len(items[i].positions) for i in batch)
        positions = torch.zeros((len(batch), width), dtype=torch.long, device=loaded.device)
        targets = torch.zeros_like(positions)
        valid = torch.zeros_like(positions, dtype=torch.bool)
        for row, index in enumerate(batch):
            item = items[index]
            positions[row, : len(item.positions)] = torch.tensor(item.positions)
            targets[row, : len(item.targets)] = torch.tensor(item.targets)
            valid[row, : len(item.positions)] = True
        with head_at_positions(loaded, lambda: positions):
            log_probs = log_softmax(loaded.model(**inputs).logits)
        yield batch, log_probs.gather(2, targets[..., None])[..., 0], valid


def evaluate_mlm_loss(loaded: LoadedModel, texts, *, seed: int = 0, rate: float = 0.15, max_length: int = 128,
                      batch_size: int | None = None, naive: bool = False, progress: Callable | None = None,
                      cancel: CancelToken | None = None) -> tuple[dict, pd.DataFrame]:
    """``{"loss", "tokens", "texts"}`` and one row per text (its masked tokens' summed loss)."""
    prepared = masked_items(loaded, texts, seed=seed, rate=rate, max_length=max_length)
    total, count, done = 0.0, 0, 0
    per_text = [0.0] * len(prepared.items)
    with torch.no_grad():
        for batch, picked, valid in masked_token_log_probs(loaded, prepared.items, 1 if naive else batch_size):
            if cancel is not None:
                cancel.check()
            total -= float(picked[valid].double().sum())
            count += int(valid.sum())
            for row, index in enumerate(batch):
                per_text[index] = -float(picked[row][valid[row]].double().sum())
            done += len(batch)
            report(progress, done, len(prepared.items))
    items = pd.DataFrame({"text": [item.text[:80] for item in prepared.items],
                          "masked_tokens": [len(item.positions) for item in prepared.items], "loss_sum": per_text})
    return {"loss": total / count, "tokens": count, "texts": len(prepared.items), "seed": prepared.seed,
            "rate": prepared.rate}, items
