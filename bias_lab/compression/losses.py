"""The distillation loss (DistilBERT / DistilGPT-2 recipe, DESIGN §6):

    α_ce · T² · KL(softmax(t/T) ‖ softmax(s/T))  +  α_lm · LM loss  +  α_cos · (1 − cos(h_s, h_t))

KL and the cosine term are averaged over the positions the loss reads (KL summed over the
vocabulary); the LM loss is the mean cross-entropy over the labelled positions (the masked tokens
of MLM, every next token of CLM)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import BiasLabError

IGNORE = -100


@dataclass(frozen=True)
class LossWeights:
    temperature: float = 2.0
    alpha_ce: float = 5.0
    alpha_lm: float = 2.0
    alpha_cos: float = 1.0

    def validate(self) -> None:
        if not self.temperature > 0:
            raise BiasLabError(f"temperature {self.temperature} must be positive")
        for name in ("alpha_ce", "alpha_lm", "alpha_cos"):
            if getattr(self, name) < 0:
                raise BiasLabError(f"{name.replace('_', '-')} {getattr(self, name)} must be at least 0")
        if self.alpha_ce == self.alpha_lm == self.alpha_cos == 0:
            raise BiasLabError("alpha-ce, alpha-lm and alpha-cos are all 0, so there is nothing to learn: "
                               "give at least one a positive weight (defaults 5, 2, 1)")


def softened_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL(teacher ‖ student) of the temperature-softened distributions, mean over positions
    (the rows of the [positions, vocabulary] logits)."""
    student_log = F.log_softmax(student_logits.float() / temperature, dim=-1)
    teacher_log = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    per_position = (teacher_log.exp() * (teacher_log - student_log)).sum(-1)
    return per_position.mean() * temperature ** 2


def lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the positions whose label is not ``IGNORE``."""
    return F.cross_entropy(logits.float(), labels, ignore_index=IGNORE)


def cosine_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor) -> torch.Tensor:
    """Mean of 1 − cos(student, teacher) over positions ([positions, hidden])."""
    return (1 - F.cosine_similarity(student_hidden.float(), teacher_hidden.float(), dim=-1)).mean()


def distillation_loss(weights: LossWeights, *, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      lm_logits: torch.Tensor, labels: torch.Tensor, student_hidden: torch.Tensor,
                      teacher_hidden: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{loss, ce, lm, cos}``: the weighted sum and each term. Logits are [positions, vocabulary] at
    the positions KL reads; ``lm_logits``/``labels`` are the student's logits and labels where the LM
    loss reads; hidden states are [positions, hidden]. A term whose weight is 0 is still reported
    (for the history) but computed without gradient."""
    terms = {}
    for name, weight, compute in (
            ("ce", weights.alpha_ce, lambda: softened_kl(student_logits, teacher_logits, weights.temperature)),
            ("lm", weights.alpha_lm, lambda: lm_loss(lm_logits, labels)),
            ("cos", weights.alpha_cos, lambda: cosine_loss(student_hidden, teacher_hidden))):
        if weight:
            terms[name] = compute()
        else:
            with torch.no_grad():
                terms[name] = compute()
    total = sum(getattr(weights, f"alpha_{name}") * value for name, value in terms.items()
                if getattr(weights, f"alpha_{name}"))
    return {"loss": total, **terms}
