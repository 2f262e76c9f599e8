"""Results over time: machine description, run records, the bench's figures, baselines and regressions."""
