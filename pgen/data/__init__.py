"""Datasets (TFDS builders, prepared offline when needed) and the input pipeline."""
