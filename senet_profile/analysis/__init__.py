"""Analyzers: one tracer and its counts, exact memory, paired latency, and their explanations."""
