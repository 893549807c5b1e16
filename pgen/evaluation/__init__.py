"""Evaluation: feature extractors, sample-quality metrics, and the evaluate command."""
