"""Evaluation: feature extractors, reference features, metrics, memorization, the command."""
