"""Batches of token sequences for every method: sorted by length so a batch carries little padding,
cut by a token budget (larger on a GPU) or a fixed size, padded on the right with an attention mask."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import torch

if TYPE_CHECKING:
    from .models import LoadedModel

CPU_TOKENS_PER_BATCH = 4096


def pad_id(loaded: LoadedModel) -> int:
    pad = loaded.tokenizer.pad_token_id
    return int(pad if pad is not None else 0)


def length_batches(lengths: list[int], batch_size: int | None, device: torch.device) -> Iterable[list[int]]:
    """Indices sorted by length, cut into batches of ``batch_size`` sequences (default: a token budget)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batch: list[int] = []
    for index in order:
        if batch_size is not None:
            full = len(batch) >= batch_size
        else:
            budget = CPU_TOKENS_PER_BATCH * (8 if device.type == "cuda" else 1)
            full = bool(batch) and (len(batch) + 1) * lengths[index] > budget
        if full:
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def padded_inputs(loaded: LoadedModel, sequences: list[tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """Token id sequences as one right-padded batch on the model's device."""
    longest = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), longest), pad_id(loaded), dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence)
        mask[row, : len(sequence)] = 1
    return {"input_ids": ids.to(loaded.device), "attention_mask": mask.to(loaded.device)}
