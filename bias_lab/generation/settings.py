"""Generation settings: FASP's defaults (prompt cut to 22 tokens, 40 new tokens, one sampled
continuation with transformers' default top-k 50, top-p 1, temperature 1)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import BiasLabError

TRUNCATION_SIDES = ("right", "left")


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 40
    max_prompt_tokens: int = 22
    samples: int = 1                 # continuations per prompt (num_return_sequences)
    do_sample: bool = True           # False: greedy
    top_k: int = 50                  # 0: no top-k filter
    top_p: float = 1.0
    temperature: float = 1.0
    seed: int = 0
    batch_size: int | None = None    # rows per batch; None: sized by free memory on a GPU, 32 on a CPU
    truncation_side: str = "right"   # 'right' keeps a long prompt's first tokens, 'left' its last ones

    def validate(self) -> None:
        for name in ("max_new_tokens", "max_prompt_tokens", "samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BiasLabError(f"{name.replace('_', '-')} {value!r} must be a whole number of at least 1")
        if self.batch_size is not None and self.batch_size < 1:
            raise BiasLabError(f"batch-size {self.batch_size} must be at least 1")
        if self.top_k < 0:
            raise BiasLabError(f"top-k {self.top_k} must be 0 (off) or more")
        if not 0 < self.top_p <= 1:
            raise BiasLabError(f"top-p {self.top_p} must be in (0, 1]")
        if not self.temperature > 0:
            raise BiasLabError(f"temperature {self.temperature} must be above 0 (greedy decoding: do_sample=False)")
        if self.truncation_side not in TRUNCATION_SIDES:
            raise BiasLabError(f"truncation side {self.truncation_side!r}: use {' or '.join(TRUNCATION_SIDES)}")

    def to_dict(self) -> dict:
        return asdict(self)
