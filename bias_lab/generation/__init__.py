"""Text generation for bias measured on what a causal LM writes: batched, left-padded, reproducible
per prompt, under any intervention (neurons, heads, a mask)."""

from .generate import GENERATION_COLUMNS, generate, prompt_records
from .settings import GenerationSettings

__all__ = ["GENERATION_COLUMNS", "GenerationSettings", "generate", "prompt_records"]
