"""Compression and bias: knowledge distillation of a model (distill.py) and compressed models
compared side by side (compare.py)."""
