"""Labelled texts (one sentence or a pair) as every classifier task here reads them, tokenized once
and served as padded batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

import torch

from ..batching import length_batches, pad_id

if TYPE_CHECKING:
    from ..models import LoadedModel


@dataclass(frozen=True)
class LabelledText:
    """One example: a text, an optional second text (a pair task) and its label — a class index in
    the task's own label order, or a number for a regression task."""

    text: str
    text_pair: str | None
    label: int | float


def encode(loaded: LoadedModel, examples: Sequence[LabelledText], max_length: int) -> list[list[int]]:
    """Token ids of each example (pairs joined as the tokenizer joins them), cut to ``max_length``."""
    if not examples:
        return []
    texts = [e.text for e in examples]
    pairs = [e.text_pair for e in examples]
    has_pairs = any(p is not None for p in pairs)
    encoded = loaded.tokenizer(texts, [p or "" for p in pairs] if has_pairs else None, truncation=True,
                               max_length=max_length)
    return [list(ids) for ids in encoded["input_ids"]]


def token_type_ids(loaded: LoadedModel, ids: Sequence[int]) -> list[int] | None:
    """Segment ids of one encoded sequence (0 up to and including the first separator, then 1), for
    the models that take them (BERT); None for those that do not."""
    if "token_type_ids" not in getattr(loaded.tokenizer, "model_input_names", ()):
        return None
    separator = loaded.tokenizer.sep_token_id
    segments, segment = [], 0
    for token in ids:
        segments.append(segment)
        if token == separator and segment == 0:
            segment = 1
    return segments


def padded_batch(loaded: LoadedModel, sequences: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
    """Right-padded ids, attention mask and (where the model takes them) segment ids, on the model's device."""
    longest = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), longest), pad_id(loaded), dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    segments = None
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        mask[row, : len(sequence)] = 1
        types = token_type_ids(loaded, sequence)
        if types is not None:
            if segments is None:
                segments = torch.zeros((len(sequences), longest), dtype=torch.long)
            segments[row, : len(sequence)] = torch.tensor(types, dtype=torch.long)
    batch = {"input_ids": ids, "attention_mask": mask}
    if segments is not None:
        batch["token_type_ids"] = segments
    return {name: tensor.to(loaded.device) for name, tensor in batch.items()}


def inference_batches(loaded: LoadedModel, sequences: Sequence[Sequence[int]],
                      batch_size: int) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
    """(indices, padded batch) over all sequences, sorted by length so batches carry little padding."""
    for indices in length_batches([len(s) for s in sequences], batch_size, loaded.device):
        yield indices, padded_batch(loaded, [sequences[i] for i in indices])
