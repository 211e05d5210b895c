"""Classifier performance axes for masks: GLUE fine-tuning under a fixed mask, the weak bias model of
masked debiasing, and challenge-set accuracy."""
