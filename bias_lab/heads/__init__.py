"""Attention heads: per-head ablation scores, fairness-aware head pruning (FASP), Michel et al.'s
gradient importance, baselines and iterative pruning."""
