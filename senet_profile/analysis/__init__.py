"""Static analyzers: one tracer, one counting convention."""
