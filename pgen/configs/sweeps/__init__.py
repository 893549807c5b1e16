"""Sweep files that ship with pgen: `python -m pgen sweep --sweep NAME` or a path."""
