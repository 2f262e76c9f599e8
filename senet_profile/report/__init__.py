"""Presentation: tables in every format, plots, and the paper's printed figures beside computed ones."""
