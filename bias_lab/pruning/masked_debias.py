"""Masked debiasing (Meissner et al. 2022): search a mask of a fine-tuned classifier, weights
frozen, under a task loss that discounts what a weak "bias model" already gets right.

Data: one example per JSON line — ``{"text": …, "text_pair": … (optional), "label": int,
"bias_prob": p_bias(gold label)}`` and, for product of experts, ``"bias_probs": [p per class]``.
Losses: ``reweight`` — Σ w·CE / Σ w with w = 1 − p_bias(gold); ``focal`` — (1 − p_bias)^γ·CE;
``poe`` — cross-entropy of log-softmax(logits + log p_bias)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import BiasLabError

LOSSES = ("reweight", "focal", "poe")


@dataclass(frozen=True)
class Example:
    text: str
    text_pair: str | None
    label: int
    bias_prob: float
    bias_probs: tuple[float, ...] | None = None


def load_examples(path: str | Path) -> list[Example]:
    from ..data.common import read_jsonl

    path = Path(path)
    examples = []
    for number, record in read_jsonl(path, "masked-debias data", ("text", "label", "bias_prob")):
        probability = record["bias_prob"]
        if not isinstance(probability, (int, float)) or not 0 <= probability <= 1:
            raise BiasLabError(f"{path} line {number}: bias_prob {probability!r} must be a probability")
        probs = record.get("bias_probs")
        examples.append(Example(str(record["text"]), record.get("text_pair"), int(record["label"]), float(probability),
                                tuple(float(p) for p in probs) if probs is not None else None))
    if not examples:
        raise BiasLabError(f"{path} has no examples")
    return examples


class MaskedDebiasObjective:
    name = "masked-debias"

    def __init__(self, loaded, examples: list[Example], *, loss: str = "reweight", gamma: float = 2.0):
        if loaded.kind != "classifier":
            raise BiasLabError(f"masked debiasing needs a sequence classifier; {loaded.source!r} is {loaded.kind!r} "
                               "(load it with kind 'classifier')")
        if loss not in LOSSES:
            raise BiasLabError(f"unknown loss {loss!r}: use one of {', '.join(LOSSES)}")
        if loss == "poe" and any(e.bias_probs is None for e in examples):
            raise BiasLabError("the product-of-experts loss needs 'bias_probs' (the bias model's distribution) "
                               "in every example")
        self.loaded, self.examples, self.kind, self.gamma = loaded, examples, loss, gamma
        self.means = None

    def start_epoch(self) -> None:
        return None

    def batches(self, batch_size: int, generator: torch.Generator) -> list[list[Example]]:
        order = torch.randperm(len(self.examples), generator=generator).tolist()
        return [[self.examples[i] for i in order[s:s + batch_size]] for s in range(0, len(order), batch_size)]

    def logits(self, examples: list[Example]) -> torch.Tensor:
        pairs = [e.text_pair for e in examples]
        encoded = self.loaded.tokenizer([e.text for e in examples], pairs if all(p is not None for p in pairs) else None,
                                        return_tensors="pt", padding=True, truncation=True, max_length=128)
        return self.loaded.model(**{k: v.to(self.loaded.device) for k, v in encoded.items()}).logits

    def loss(self, batch: list[Example], original=None) -> dict[str, torch.Tensor]:
        logits = self.logits(batch)
        labels = torch.tensor([e.label for e in batch], device=logits.device)
        bias = torch.tensor([e.bias_prob for e in batch], device=logits.device, dtype=logits.dtype)
        if self.kind == "poe":
            prior = torch.tensor([e.bias_probs for e in batch], device=logits.device, dtype=logits.dtype)
            combined = logits.log_softmax(-1) + prior.clamp_min(1e-12).log()
            total = torch.nn.functional.cross_entropy(combined, labels)
        else:
            losses = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
            if self.kind == "reweight":
                weights = 1 - bias
                total = (weights * losses).sum() / weights.sum().clamp_min(1e-12)
            else:
                total = ((1 - bias) ** self.gamma * losses).mean()
        zero = torch.zeros((), device=logits.device)
        return {"loss": total, "debias": total.detach(), "regulariser": zero}
