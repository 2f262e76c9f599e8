"""Runtime measurements: exact activation memory and paired latency of a model against another."""
